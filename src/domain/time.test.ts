import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  addDaysIso,
  addDaysToLocalDate,
  addSecondsIso,
  canonicalTimeZone,
  isCanonicalIsoInstant,
  isoToMs,
  isValidTimeZone,
  localDate,
  localYear,
  msToIso,
  normalizeIsoInstant,
  parseIsoInstantMs,
  startOfLocalDateIso,
  startOfLocalYearIso,
} from './time.ts';
import { YEAR_MAX, YEAR_MIN } from './limits.ts';

describe('ISO instants', () => {
  it('normalises offsets and fractions to canonical UTC with milliseconds', () => {
    expect(normalizeIsoInstant('2026-01-01T08:00:00+08:00')).toBe('2026-01-01T00:00:00.000Z');
    expect(normalizeIsoInstant('2026-01-01T00:00:00Z')).toBe('2026-01-01T00:00:00.000Z');
    expect(normalizeIsoInstant('2025-12-31T19:00:00.5-05:00')).toBe('2026-01-01T00:00:00.500Z');
    expect(normalizeIsoInstant('2026-01-01T00:00:00.123456789Z')).toBe('2026-01-01T00:00:00.123Z');
  });

  it('rejects what is not an unambiguous instant', () => {
    for (const text of [
      '2026-02-29T00:00:00Z', // not a leap year
      '2026-13-01T00:00:00Z',
      '2026-01-01T24:00:00Z',
      '2026-01-01T00:00:60Z',
      '2026-01-01T00:00:00', // no offset: local to whom?
      '2026-01-01',
      'Thu, 01 Jan 2026 00:00:00 GMT',
      '',
    ]) {
      expect(normalizeIsoInstant(text), text).toBeNull();
    }
    expect(normalizeIsoInstant('2024-02-29T00:00:00Z')).toBe('2024-02-29T00:00:00.000Z');
  });

  it('knows canonical instants', () => {
    expect(isCanonicalIsoInstant('2026-01-01T00:00:00.000Z')).toBe(true);
    expect(isCanonicalIsoInstant('2026-01-01T00:00:00Z')).toBe(false);
    expect(isCanonicalIsoInstant(42)).toBe(false);
  });

  it('adds seconds and 86,400-second days', () => {
    expect(addSecondsIso('2026-01-01T00:00:00.000Z', 900)).toBe('2026-01-01T00:15:00.000Z');
    expect(addDaysIso('2024-02-28T12:00:00.000Z', 1)).toBe('2024-02-29T12:00:00.000Z');
    expect(addDaysIso('2026-03-01T00:00:00.000Z', -365)).toBe('2025-03-01T00:00:00.000Z');
    expect(addDaysIso('2025-03-01T00:00:00.000Z', -365)).toBe('2024-03-01T00:00:00.000Z');
    expect(addDaysIso('2025-01-01T00:00:00.000Z', -365)).toBe('2024-01-02T00:00:00.000Z');
  });
});

describe('local calendar in a time zone', () => {
  it('puts the year boundary at local midnight in Asia/Shanghai', () => {
    expect(startOfLocalYearIso(2026, 'Asia/Shanghai')).toBe('2025-12-31T16:00:00.000Z');
    expect(localYear('2025-12-31T15:59:59.999Z', 'Asia/Shanghai')).toBe(2025);
    expect(localYear('2025-12-31T16:00:00.000Z', 'Asia/Shanghai')).toBe(2026);
    expect(localDate('2025-12-31T15:59:59.999Z', 'Asia/Shanghai')).toBe('2025-12-31');
  });

  it('handles America/New_York standard and daylight time', () => {
    expect(startOfLocalYearIso(2026, 'America/New_York')).toBe('2026-01-01T05:00:00.000Z');
    // DST starts 2026-03-08 at 02:00 local: that day starts in EST, the next in EDT.
    expect(startOfLocalDateIso('2026-03-08', 'America/New_York')).toBe('2026-03-08T05:00:00.000Z');
    expect(startOfLocalDateIso('2026-03-09', 'America/New_York')).toBe('2026-03-09T04:00:00.000Z');
    // DST ends 2026-11-01 at 02:00 local.
    expect(startOfLocalDateIso('2026-11-01', 'America/New_York')).toBe('2026-11-01T04:00:00.000Z');
    expect(startOfLocalDateIso('2026-11-02', 'America/New_York')).toBe('2026-11-02T05:00:00.000Z');
    expect(localYear('2026-01-01T04:59:59.999Z', 'America/New_York')).toBe(2025);
  });

  it('finds the first instant of a day whose midnight a DST change skips', () => {
    // Chile springs forward at 24:00 on 2025-09-06: 00:00 on the 7th never shows; the day starts at 01:00 -03.
    expect(startOfLocalDateIso('2025-09-07', 'America/Santiago')).toBe('2025-09-07T04:00:00.000Z');
    expect(localDate('2025-09-07T04:00:00.000Z', 'America/Santiago')).toBe('2025-09-07');
    expect(localDate('2025-09-07T03:59:59.999Z', 'America/Santiago')).toBe('2025-09-06');
  });

  it('takes the second midnight when a fall-back at midnight repeats the previous evening', () => {
    // Brazil ended DST at 00:00 on 2018-02-18, going back to 23:00 on the 17th.
    expect(startOfLocalDateIso('2018-02-18', 'America/Sao_Paulo')).toBe('2018-02-18T03:00:00.000Z');
    expect(startOfLocalDateIso('2018-02-17', 'America/Sao_Paulo')).toBe('2018-02-17T02:00:00.000Z');
  });

  it('survives a skipped day (Samoa, 30 December 2011)', () => {
    const start = startOfLocalDateIso('2011-12-30', 'Pacific/Apia');
    expect(localDate(start, 'Pacific/Apia')).toBe('2011-12-31');
    expect(start).toBe(startOfLocalDateIso('2011-12-31', 'Pacific/Apia'));
  });

  it('does calendar arithmetic across leap days', () => {
    expect(addDaysToLocalDate('2024-02-28', 1)).toBe('2024-02-29');
    expect(addDaysToLocalDate('2023-02-28', 1)).toBe('2023-03-01');
    expect(addDaysToLocalDate('2024-12-31', 1)).toBe('2025-01-01');
    expect(addDaysToLocalDate('2024-03-01', -1)).toBe('2024-02-29');
  });

  it('validates IANA time zones through Intl', () => {
    expect(isValidTimeZone('Asia/Shanghai')).toBe(true);
    expect(isValidTimeZone('America/Argentina/Buenos_Aires')).toBe(true);
    expect(isValidTimeZone('UTC')).toBe(true);
    expect(isValidTimeZone('Mars/Olympus_Mons')).toBe(false);
    expect(isValidTimeZone('+08:00')).toBe(false);
    expect(isValidTimeZone('')).toBe(false);
    expect(canonicalTimeZone('asia/shanghai')).toBe('Asia/Shanghai');
  });

  it('finds the start of every day of a year in several zones (the first instant reads that date)', () => {
    for (const zone of ['Asia/Shanghai', 'America/New_York', 'Europe/London', 'Australia/Lord_Howe', 'UTC']) {
      let date = '2024-01-01';
      for (let day = 0; day < 366; day += 1) {
        const start = startOfLocalDateIso(date, zone);
        expect(localDate(start, zone)).toBe(date);
        expect(localDate(addSecondsIso(start, -1), zone)).toBe(addDaysToLocalDate(date, -1));
        date = addDaysToLocalDate(date, 1);
      }
    }
  });
});

describe('the fast path for canonical instants', () => {
  it('agrees with the general parser, in range and out of it', () => {
    const pad = (n: number, width: number) => String(n).padStart(width, '0');
    const fieldsArb = fc.tuple(
      fc.integer({ min: 0, max: 9999 }),
      fc.integer({ min: 0, max: 13 }),
      fc.integer({ min: 0, max: 32 }),
      fc.integer({ min: 0, max: 24 }),
      fc.integer({ min: 0, max: 60 }),
      fc.integer({ min: 0, max: 60 }),
      fc.integer({ min: 0, max: 999 }),
    );
    fc.assert(
      fc.property(fieldsArb, ([year, month, day, hour, minute, second, ms]) => {
        const wall = `${pad(year, 4)}-${pad(month, 2)}-${pad(day, 2)}T${pad(hour, 2)}:${pad(minute, 2)}:${pad(second, 2)}.${pad(ms, 3)}`;
        const canonical = `${wall}Z`;
        // The same instant with a '+00:00' offset is not the canonical shape: the regular expression parses it.
        const general = parseIsoInstantMs(`${wall}+00:00`);
        expect(parseIsoInstantMs(canonical)).toBe(general);
        expect(isCanonicalIsoInstant(canonical)).toBe(general !== null);
      }),
      { numRuns: 2_000 },
    );
  });
  it('checks the calendar itself: leap years by the Gregorian rule, month lengths', () => {
    for (const [text, valid] of [
      ['2000-02-29T00:00:00.000Z', true], // divisible by 400
      ['2024-02-29T23:59:59.999Z', true],
      ['1900-02-29T00:00:00.000Z', false], // divisible by 100, not by 400
      ['2100-02-29T00:00:00.000Z', false],
      ['2026-02-29T00:00:00.000Z', false],
      ['2026-04-31T00:00:00.000Z', false],
      ['2026-12-31T00:00:00.000Z', true],
      ['2026-00-10T00:00:00.000Z', false],
      ['2026-01-00T00:00:00.000Z', false],
    ] as const) {
      expect(isCanonicalIsoInstant(text), text).toBe(valid);
    }
  });

  it('writes instants exactly as Date.prototype.toISOString does, over the whole supported range', () => {
    const min = Date.UTC(YEAR_MIN, 0, 1);
    const max = Date.UTC(YEAR_MAX, 11, 31, 23, 59, 59, 999);
    fc.assert(
      fc.property(fc.integer({ min, max }), (ms) => {
        const iso = msToIso(ms);
        expect(iso).toBe(new Date(ms).toISOString());
        expect(isoToMs(iso)).toBe(ms);
      }),
      { numRuns: 5_000 },
    );
    for (const ms of [min, max, 0, -1, Date.UTC(2000, 1, 29), Date.UTC(1900, 2, 1) - 1, Date.UTC(2100, 2, 1)])
      expect(msToIso(ms)).toBe(new Date(ms).toISOString());
    expect(() => msToIso(min - 1)).toThrow(/out of range/);
    expect(() => msToIso(max + 1)).toThrow(/out of range/);
    expect(() => msToIso(0.5)).toThrow(/integer/);
  });

  it('adds days across leap days, centuries and the epoch like Date arithmetic', () => {
    const min = Date.UTC(YEAR_MIN, 0, 1);
    const max = Date.UTC(YEAR_MAX, 0, 1);
    fc.assert(
      fc.property(fc.integer({ min, max }), fc.integer({ min: -800, max: 800 }), (ms, days) => {
        const iso = new Date(ms).toISOString();
        const later = ms + days * 86_400_000;
        if (later < min || later > max) return;
        expect(addDaysIso(iso, days)).toBe(new Date(later).toISOString());
      }),
      { numRuns: 5_000 },
    );
  });
});
