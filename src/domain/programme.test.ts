import { describe, expect, it } from 'vitest';
import { defaultProgramme, lotExpiresAt, programmeSchema, tierFor } from './programme.ts';

describe('programme', () => {
  it('has the contract defaults', () => {
    expect(defaultProgramme()).toEqual({
      version: 1,
      pointsPerYuan: 1,
      excludedCategories: [],
      tiers: [
        { name: 'standard', minSpendFen: 0, multiplierPermille: 1000 },
        { name: 'silver', minSpendFen: 200_000, multiplierPermille: 1200 },
        { name: 'gold', minSpendFen: 1_000_000, multiplierPermille: 1500 },
      ],
      expiry: { kind: 'end-of-following-year' },
      pointValueFen: 1,
      refundWindowDays: 365,
      clawback: 'debt',
    });
  });

  it('does not share default arrays between programmes', () => {
    const a = defaultProgramme();
    const b = defaultProgramme();
    expect(a.tiers).not.toBe(b.tiers);
    expect(a.excludedCategories).not.toBe(b.excludedCategories);
  });

  it('rejects tiers that do not start at 0, are not strictly increasing, or repeat a name', () => {
    const issues = (tiers: unknown) =>
      programmeSchema.safeParse({ tiers }).error?.issues.map((issue) => issue.path.join('.'));
    expect(issues([{ name: 'a', minSpendFen: 5, multiplierPermille: 1000 }])).toEqual([
      'tiers.0.minSpendFen',
    ]);
    expect(
      issues([
        { name: 'a', minSpendFen: 0, multiplierPermille: 1000 },
        { name: 'b', minSpendFen: 0, multiplierPermille: 1000 },
      ]),
    ).toEqual(['tiers.1.minSpendFen']);
    expect(
      issues([
        { name: 'a', minSpendFen: 0, multiplierPermille: 1000 },
        { name: 'a', minSpendFen: 10, multiplierPermille: 1000 },
      ]),
    ).toEqual(['tiers.1.name']);
    expect(issues([])).toEqual(['tiers']);
  });

  it('rejects out-of-range and unknown fields', () => {
    expect(programmeSchema.safeParse({ pointsPerYuan: 0 }).success).toBe(false);
    expect(programmeSchema.safeParse({ pointsPerYuan: 101 }).success).toBe(false);
    expect(programmeSchema.safeParse({ pointsPerYuan: 1.5 }).success).toBe(false);
    expect(programmeSchema.safeParse({ expiry: { kind: 'days', days: 0 } }).success).toBe(false);
    expect(programmeSchema.safeParse({ expiry: { kind: 'days', days: 3651 } }).success).toBe(false);
    expect(programmeSchema.safeParse({ clawback: 'forgive' }).success).toBe(false);
    expect(programmeSchema.safeParse({ version: 0 }).success).toBe(false);
    expect(programmeSchema.safeParse({ multiplier: 1.5 }).success).toBe(false);
    expect(programmeSchema.parse({ expiry: { kind: 'days', days: 30 } }).expiry).toEqual({
      kind: 'days',
      days: 30,
    });
  });

  it('finds the tier a spend reaches', () => {
    const programme = defaultProgramme();
    expect(tierFor(0, programme).name).toBe('standard');
    expect(tierFor(199_999, programme).name).toBe('standard');
    expect(tierFor(200_000, programme).name).toBe('silver');
    expect(tierFor(999_999, programme).name).toBe('silver');
    expect(tierFor(1_000_000, programme).name).toBe('gold');
    expect(tierFor(Number.MAX_SAFE_INTEGER, programme).name).toBe('gold');
  });
});

describe('lotExpiresAt, end-of-following-year', () => {
  const programme = defaultProgramme();

  it('expires at the first instant of year Y+2 in Asia/Shanghai', () => {
    expect(lotExpiresAt('2026-06-15T04:00:00.000Z', programme, 'Asia/Shanghai')).toBe(
      '2027-12-31T16:00:00.000Z',
    );
  });

  it('counts 23:59:59 on 31 December local as the old year, and midnight as the new one', () => {
    // 2025-12-31 23:59:59.999 in Shanghai is 15:59:59.999Z; earned in 2025, usable through 2026.
    expect(lotExpiresAt('2025-12-31T15:59:59.999Z', programme, 'Asia/Shanghai')).toBe(
      '2026-12-31T16:00:00.000Z',
    );
    expect(lotExpiresAt('2025-12-31T15:59:59.000Z', programme, 'Asia/Shanghai')).toBe(
      '2026-12-31T16:00:00.000Z',
    );
    // One millisecond later it is 2026 locally (though still 2025 in UTC).
    expect(lotExpiresAt('2025-12-31T16:00:00.000Z', programme, 'Asia/Shanghai')).toBe(
      '2027-12-31T16:00:00.000Z',
    );
  });

  it('handles leap years', () => {
    expect(lotExpiresAt('2024-02-29T08:00:00.000Z', programme, 'Asia/Shanghai')).toBe(
      '2025-12-31T16:00:00.000Z',
    );
    expect(lotExpiresAt('2024-12-31T15:59:59.999Z', programme, 'Asia/Shanghai')).toBe(
      '2025-12-31T16:00:00.000Z',
    );
  });

  it('uses the local year in a DST zone (America/New_York)', () => {
    // 23:59:59.999 on 31 Dec 2025 in New York is already 2026 in UTC.
    expect(lotExpiresAt('2026-01-01T04:59:59.999Z', programme, 'America/New_York')).toBe(
      '2027-01-01T05:00:00.000Z',
    );
    expect(lotExpiresAt('2026-01-01T05:00:00.000Z', programme, 'America/New_York')).toBe(
      '2028-01-01T05:00:00.000Z',
    );
    // Earned in summer time, expires in winter time.
    expect(lotExpiresAt('2026-07-04T16:00:00.000Z', programme, 'America/New_York')).toBe(
      '2028-01-01T05:00:00.000Z',
    );
  });
});

describe('lotExpiresAt, days', () => {
  const programme = programmeSchema.parse({ expiry: { kind: 'days', days: 30 } });

  it('is usable through the whole local day `days` after earning', () => {
    // Earned 2026-03-10 local; usable through 2026-04-09; expires at local midnight starting 04-10.
    expect(lotExpiresAt('2026-03-10T01:00:00.000Z', programme, 'Asia/Shanghai')).toBe(
      '2026-04-09T16:00:00.000Z',
    );
    expect(lotExpiresAt('2026-03-10T15:59:59.999Z', programme, 'Asia/Shanghai')).toBe(
      '2026-04-09T16:00:00.000Z',
    );
  });

  it('crosses a DST change at local midnight', () => {
    // Earned 2026-02-20 in New York (EST); expires at 00:00 EDT on 2026-03-23.
    expect(lotExpiresAt('2026-02-20T17:00:00.000Z', programme, 'America/New_York')).toBe(
      '2026-03-23T04:00:00.000Z',
    );
  });

  it('crosses a leap day', () => {
    const oneDay = programmeSchema.parse({ expiry: { kind: 'days', days: 1 } });
    expect(lotExpiresAt('2024-02-28T04:00:00.000Z', oneDay, 'Asia/Shanghai')).toBe(
      '2024-02-29T16:00:00.000Z',
    );
  });
});
