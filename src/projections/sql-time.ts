/**
 * Hot-path time conversions for the projector (called several times per event). Instants in events are
 * canonical ISO-8601 UTC with milliseconds (the domain asserts it when deciding); those convert by slicing.
 * Anything else takes the general, slower path and fails loudly if it is not an instant.
 */
import { isoToSqlTime } from '../db/pool.ts';
import { localDate } from '../domain/time.ts';

const CANONICAL_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const MS_PER_DAY = 86_400_000;
const DAY_CACHE_ENTRIES_MAX = 100_000;
/** Building a formatter costs far more than formatting; one per zone (a few hundred zones exist). */
const hourMinuteFormatters = new Map<string, Intl.DateTimeFormat>();

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

/** The zone's offset at an instant, from its local wall clock (whole minutes: offsets never carry seconds today). */
function offsetMsAt(ms: number, timeZone: string): number {
  const iso = new Date(ms).toISOString();
  const date = localDate(iso, timeZone);
  let formatter = hourMinuteFormatters.get(timeZone);
  if (formatter === undefined) {
    formatter = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      hour: 'numeric',
      minute: 'numeric',
    });
    hourMinuteFormatters.set(timeZone, formatter);
  }
  const parts = formatter.formatToParts(new Date(ms));
  const hour = Number(parts.find((part) => part.type === 'hour')?.value);
  const minute = Number(parts.find((part) => part.type === 'minute')?.value);
  const wallMs = Date.parse(`${date}T00:00:00.000Z`) + (hour * 60 + minute) * 60_000 + (ms % 60_000);
  return wallMs - ms;
}
