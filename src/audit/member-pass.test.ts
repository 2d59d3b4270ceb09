import { describe, expect, it } from 'vitest';
import { sqlTimeToIso } from '../db/pool.ts';
import { sqlTimeEqualsIso } from './member-pass.ts';

describe('sqlTimeEqualsIso', () => {
  it('agrees with converting the DATETIME(3) string to ISO and comparing', () => {
    const cases: [unknown, string][] = [
      ['2026-01-02 03:04:05.678', '2026-01-02T03:04:05.678Z'],
      ['2026-01-02 03:04:05.678', '2026-01-02T03:04:05.679Z'],
      ['2026-01-02 03:04:05.678', '2026-01-12T03:04:05.678Z'],
      ['2026-01-02 03:04:05', '2026-01-02T03:04:05.000Z'],
      ['2026-01-02 03:04:05.6', '2026-01-02T03:04:05.600Z'],
      ['2026-01-02T03:04:05.678', '2026-01-02T03:04:05.678Z'],
      ['2026-01-02 03:04:05.678', '2026-01-02 03:04:05.678Z'],
      ['2026-01-02 03:04:05.678', '2026-01-02T03:04:05.678+'],
      [null, '2026-01-02T03:04:05.678Z'],
    ];
    for (const [sql, iso] of cases) {
      const expected = typeof sql === 'string' && sqlTimeToIso(sql) === iso;
      expect(sqlTimeEqualsIso(sql, iso), `${String(sql)} vs ${iso}`).toBe(expected);
    }
  });
});
