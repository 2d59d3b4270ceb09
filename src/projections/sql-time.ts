/**
 * Hot-path time conversions for the projector (called several times per event). Instants in events are
 * canonical ISO-8601 UTC with milliseconds (the domain asserts it when deciding); those convert by slicing.
 * Anything else takes the general, slower path and fails loudly if it is not an instant.
 */
import { isoToSqlTime } from '../db/pool.ts';
import { localDate, offsetMsAt } from '../domain/time.ts';

const CANONICAL_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const MS_PER_DAY = 86_400_000;
const DAY_CACHE_ENTRIES_MAX = 100_000;

export function isCanonicalInstantFast(iso: string): boolean {
  return CANONICAL_INSTANT.test(iso);
}

/** '2026-01-05T03:00:00.000Z' -> '2026-01-05 03:00:00.000' (DATETIME(3), UTC). */
export function sqlTime(iso: string): string {
  return CANONICAL_INSTANT.test(iso) ? `${iso.slice(0, 10)} ${iso.slice(11, 23)}` : isoToSqlTime(iso);
}

/**
 * The local calendar date of instants in one zone. Per UTC day it asks Intl for the local dates at the
 * day's first and last millisecond: when the zone's offset does not change within that UTC day (all but a
 * handful of days a year in zones with DST, every day in Asia/Shanghai), the local date of any instant of
 * the day follows from the offset; otherwise it asks Intl for the instant itself.
 */
export function localDayFunction(timeZone: string): (at: string) => string {
  const days = new Map<number, { offsetMs: number } | null>();
  return (at: string) => {
    const ms = Date.parse(at);
    if (!Number.isFinite(ms)) throw new Error(`not an instant: ${at}`);
    const utcDay = Math.floor(ms / MS_PER_DAY);
    let entry = days.get(utcDay);
    if (entry === undefined) {
      if (days.size >= DAY_CACHE_ENTRIES_MAX) days.clear();
      const startMs = utcDay * MS_PER_DAY;
      const startOffset = offsetMsAt(startMs, timeZone);
      const endOffset = offsetMsAt(startMs + MS_PER_DAY - 1, timeZone);
      entry = startOffset === endOffset ? { offsetMs: startOffset } : null;
      days.set(utcDay, entry);
    }
    if (entry === null) return localDate(new Date(ms).toISOString(), timeZone);
    return new Date(ms + entry.offsetMs).toISOString().slice(0, 10);
  };
}
