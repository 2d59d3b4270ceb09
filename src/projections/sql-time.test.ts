import { describe, expect, it } from 'vitest';
import { localDate } from '../domain/time.ts';
import { localDayFunction, sqlTime } from './sql-time.ts';

describe('projector time helpers', () => {
  it.each([
    'Asia/Shanghai',
    'America/New_York',
    'Europe/London',
    'Australia/Lord_Howe',
    'Asia/Kathmandu',
    'Pacific/Apia',
    'UTC',
  ])('local days in %s equal the domain localDate, DST days included', (zone) => {
    const localDay = localDayFunction(zone);
    // Every 36 minutes 53 seconds over two years: lands on both sides of every transition.
    for (let ms = Date.UTC(2011, 0, 1); ms < Date.UTC(2013, 0, 1); ms += 2_213_000) {
      const iso = new Date(ms).toISOString();
      if (localDay(iso) !== localDate(iso, zone))
        expect(`${iso}: ${localDay(iso)}`).toBe(`${iso}: ${localDate(iso, zone)}`);
    }
  });

  it('converts canonical instants to DATETIME(3) text by slicing, others through the general path', () => {
    expect(sqlTime('2026-01-05T03:00:00.123Z')).toBe('2026-01-05 03:00:00.123');
    expect(sqlTime('2026-01-05T11:00:00+08:00')).toBe('2026-01-05 03:00:00.000');
  });
});
