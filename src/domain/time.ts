/**
 * Pure time arithmetic. Instants are canonical ISO-8601 UTC strings with milliseconds
 * ('2026-01-01T00:00:00.000Z', what Date.prototype.toISOString returns): fixed width, so comparing two
 * of them as strings compares them in time, which the domain relies on. Local calendar dates are
 * 'YYYY-MM-DD' strings in an IANA time zone. Time-zone math uses Intl only (the runtime's tz database).
 * Nothing here reads the clock.
 */
import { assert, fail } from './assert.ts';
import { MS_PER_SECOND, SECONDS_PER_DAY, YEAR_MAX, YEAR_MIN } from './limits.ts';

export type IsoInstant = string;
/** 'YYYY-MM-DD' in some time zone. */
export type LocalDate = string;

const MS_PER_DAY = SECONDS_PER_DAY * MS_PER_SECOND;
const ISO_INSTANT_PATTERN =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:[.,](\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/;
const LOCAL_DATE_PATTERN = /^(\d{4})-(\d{2})-(\d{2})$/;
/** IANA names ('Asia/Shanghai', 'America/Argentina/Buenos_Aires', 'UTC', 'Etc/GMT+8'). */
const TIME_ZONE_PATTERN = /^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+)*$/;
const TIME_ZONE_CHARS_MAX = 64;
/** Formatters are costly to build; there are a few hundred zones, so the cache is bounded by that. */
const FORMATTERS_CACHED_MAX = 1_000;

function isYearInRange(year: number): boolean {
  return year >= YEAR_MIN && year <= YEAR_MAX;
}

/**
 * Parses an ISO-8601 instant with an explicit offset ('Z' or '+08:00'); fractions beyond milliseconds
 * are truncated. Returns null for anything else (no locale-dependent Date.parse fallbacks).
 */
export function parseIsoInstantMs(text: string): number | null {
  const canonical = canonicalInstantMs(text);
  if (canonical !== undefined) return canonical;
  const match = ISO_INSTANT_PATTERN.exec(text);
  if (match === null) return null;
  const [, y, mo, d, h, mi, s, fraction, offset] = match;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  const second = Number(s);
  const ms = fraction === undefined ? 0 : Number(fraction.slice(0, 3).padEnd(3, '0'));
  if (!isYearInRange(year) || hour > 23 || minute > 59 || second > 59) return null;
  const wallMs = Date.UTC(year, month - 1, day, hour, minute, second, ms);
  const wall = new Date(wallMs);
  // Date.UTC rolls 31 February over into March; a round trip of the fields catches that.
  if (wall.getUTCFullYear() !== year || wall.getUTCMonth() !== month - 1 || wall.getUTCDate() !== day) {
    return null;
  }
  let offsetMs = 0;
  if (offset !== undefined && offset !== 'Z') {
    const offsetHours = Number(offset.slice(1, 3));
    const offsetMinutes = Number(offset.slice(4, 6));
    if (offsetHours > 23 || offsetMinutes > 59) return null;
    offsetMs = (offset.startsWith('-') ? -1 : 1) * (offsetHours * 60 + offsetMinutes) * 60 * MS_PER_SECOND;
  }
  const instantMs = wallMs - offsetMs;
  if (!isYearInRange(new Date(instantMs).getUTCFullYear())) return null;
  return instantMs;
}

const DIGIT_0 = 48;
/** The digit at index i, or -1. */
function digitAt(text: string, i: number): number {
  const d = text.charCodeAt(i) - DIGIT_0;
  return d >= 0 && d <= 9 ? d : -1;
}

function twoDigitsAt(text: string, i: number): number {
  const a = digitAt(text, i);
  const b = digitAt(text, i + 1);
  return a < 0 || b < 0 ? -1 : a * 10 + b;
}

/**
 * The canonical shape 'YYYY-MM-DDTHH:MM:SS.mmmZ' (what every stored instant is) parsed without a regex or a
 * Date round trip through strings: ms, null when the shape is right but a field is out of range, undefined
 * when the text has another shape (the general parser decides).
 */
function canonicalInstantMs(text: string): number | null | undefined {
  if (text.length !== 24) return undefined;
  if (
    text.charCodeAt(4) !== 45 ||
    text.charCodeAt(7) !== 45 ||
    text.charCodeAt(10) !== 84 ||
    text.charCodeAt(13) !== 58 ||
    text.charCodeAt(16) !== 58 ||
    text.charCodeAt(19) !== 46 ||
    text.charCodeAt(23) !== 90
  ) {
    return undefined;
  }
  let year = 0;
  for (let i = 0; i < 4; i++) {
    const d = digitAt(text, i);
    if (d < 0) return undefined;
    year = year * 10 + d;
  }
  const month = twoDigitsAt(text, 5);
  const day = twoDigitsAt(text, 8);
  const hour = twoDigitsAt(text, 11);
  const minute = twoDigitsAt(text, 14);
  const second = twoDigitsAt(text, 17);
  const m0 = digitAt(text, 20);
  const m1 = digitAt(text, 21);
  const m2 = digitAt(text, 22);
  if (month < 0 || day < 0 || hour < 0 || minute < 0 || second < 0 || m0 < 0 || m1 < 0 || m2 < 0)
    return undefined;
  if (!isYearInRange(year) || hour > 23 || minute > 59 || second > 59) return null;
  // The calendar is checked field by field (no Date built and read back: the fold checks every event's time).
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return null;
  return Date.UTC(year, month - 1, day, hour, minute, second, m0 * 100 + m1 * 10 + m2);
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function daysInMonth(year: number, month: number): number {
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  return month === 2 && leap ? 29 : DAYS_IN_MONTH[month - 1]!;
}

/** Any accepted ISO instant to the canonical UTC form, or null if it is not one. */
export function normalizeIsoInstant(text: string): IsoInstant | null {
  const ms = parseIsoInstantMs(text);
  return ms === null ? null : msToIso(ms);
}

export function isCanonicalIsoInstant(text: unknown): text is IsoInstant {
  if (typeof text !== 'string') return false;
  // The canonical shape with valid fields is its own normal form (toISOString writes exactly that shape for
  // years 1000-9999); any other shape is not canonical, whatever it normalises to.
  const canonical = canonicalInstantMs(text);
  return canonical === undefined ? false : canonical !== null;
}

// The functions below run several times per event in a replay: their checks build a message only when they
// fail (assert.ts).

/** Milliseconds since the epoch of a canonical instant; anything else is a bug upstream. */
export function isoToMs(iso: IsoInstant): number {
  const ms = parseIsoInstantMs(iso);
  if (ms === null) fail(`not an ISO instant: ${iso}`);
  return ms;
}

export function msToIso(ms: number): IsoInstant {
  if (!Number.isSafeInteger(ms)) fail(`instant ms must be an integer, got ${ms}`);
  const days = Math.floor(ms / MS_PER_DAY);
  let rest = ms - days * MS_PER_DAY;
  const date = civilFromDays(days);
  if (!isYearInRange(date.year)) fail(`instant out of range: ${ms}`);
  const hour = Math.floor(rest / 3_600_000);
  rest -= hour * 3_600_000;
  const minute = Math.floor(rest / 60_000);
  rest -= minute * 60_000;
  const second = Math.floor(rest / MS_PER_SECOND);
  const milli = rest - second * MS_PER_SECOND;
  // Date.prototype.toISOString writes the same string, at several times the cost.
  return `${date.year}-${TWO_DIGITS[date.month]}-${TWO_DIGITS[date.day]}T${TWO_DIGITS[hour]}:${TWO_DIGITS[minute]}:${TWO_DIGITS[second]}.${THREE_DIGITS[milli]}Z`;
}

const TWO_DIGITS = Array.from({ length: 100 }, (_, n) => String(n).padStart(2, '0'));
const THREE_DIGITS = Array.from({ length: 1000 }, (_, n) => String(n).padStart(3, '0'));

/** The proleptic Gregorian date of a day number (days since 1970-01-01); H. Hinnant's civil_from_days. */
function civilFromDays(dayNumber: number): { year: number; month: number; day: number } {
  const z = dayNumber + 719_468;
  const era = Math.floor(z / 146_097);
  const dayOfEra = z - era * 146_097;
  const yearOfEra = Math.floor(
    (dayOfEra -
      Math.floor(dayOfEra / 1_460) +
      Math.floor(dayOfEra / 36_524) -
      Math.floor(dayOfEra / 146_096)) /
      365,
  );
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100));
  const monthIndex = Math.floor((5 * dayOfYear + 2) / 153); // March = 0
  const day = dayOfYear - Math.floor((153 * monthIndex + 2) / 5) + 1;
  const month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9;
  return { year: yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day };
}

export function addSecondsIso(iso: IsoInstant, seconds: number): IsoInstant {
  if (!Number.isSafeInteger(seconds)) fail(`seconds must be an integer, got ${seconds}`);
  return msToIso(isoToMs(iso) + seconds * MS_PER_SECOND);
}

/** Adds days of exactly 86,400 seconds (elapsed time, not calendar days in a zone). */
export function addDaysIso(iso: IsoInstant, days: number): IsoInstant {
  if (!Number.isSafeInteger(days)) fail(`days must be an integer, got ${days}`);
  return msToIso(isoToMs(iso) + days * MS_PER_DAY);
}

/** The later of two canonical instants. */
export function maxIso(a: IsoInstant, b: IsoInstant): IsoInstant {
  return a > b ? a : b;
}

// ---- time zones ---------------------------------------------------------------------------------

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let formatter = formatters.get(timeZone);
  if (formatter === undefined) {
    // Throws RangeError for an unknown zone; callers validate with isValidTimeZone first.
    formatter = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      era: 'short',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    if (formatters.size >= FORMATTERS_CACHED_MAX) formatters.clear();
    formatters.set(timeZone, formatter);
  }
  return formatter;
}

/** True for a time zone name the runtime's tz database knows (IANA names, not '+08:00'). */
export function isValidTimeZone(timeZone: unknown): timeZone is string {
  if (typeof timeZone !== 'string' || timeZone.length > TIME_ZONE_CHARS_MAX) return false;
  if (!TIME_ZONE_PATTERN.test(timeZone)) return false;
  try {
    formatterFor(timeZone);
    return true;
  } catch {
    return false;
  }
}

/** The runtime's canonical spelling of a valid zone ('asia/shanghai' -> 'Asia/Shanghai'). */
export function canonicalTimeZone(timeZone: string): string {
  assert(isValidTimeZone(timeZone), `invalid time zone: ${timeZone}`);
  return formatterFor(timeZone).resolvedOptions().timeZone;
}

type WallClock = { year: number; month: number; day: number; hour: number; minute: number; second: number };

function wallClockAt(ms: number, timeZone: string): WallClock {
  const fields: Record<string, number> = {};
  let bc = false;
  for (const part of formatterFor(timeZone).formatToParts(new Date(ms))) {
    if (part.type === 'era') bc = part.value === 'BC' || part.value === 'B';
    else if (part.type !== 'literal') fields[part.type] = Number(part.value);
  }
  const { year, month, day, hour, minute, second } = fields;
  assert(
    year !== undefined &&
      month !== undefined &&
      day !== undefined &&
      hour !== undefined &&
      minute !== undefined &&
      second !== undefined,
    `Intl did not format ${ms} in ${timeZone}`,
  );
  assert(!bc, `instant before year 1: ${ms}`);
  return { year, month, day, hour, minute, second };
}

/** The local wall-clock reading at an instant, expressed as if it were UTC, in ms. */
function wallClockMs(ms: number, timeZone: string): number {
  const wall = wallClockAt(ms, timeZone);
  const msOfSecond = ((ms % MS_PER_SECOND) + MS_PER_SECOND) % MS_PER_SECOND;
  return Date.UTC(wall.year, wall.month - 1, wall.day, wall.hour, wall.minute, wall.second, msOfSecond);
}

/** The zone's offset from UTC at an instant, in ms (local wall clock minus UTC). */
export function offsetMsAt(ms: number, timeZone: string): number {
  return wallClockMs(ms, timeZone) - ms;
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

export function localYear(atIso: IsoInstant, timeZone: string): number {
  return wallClockAt(isoToMs(atIso), timeZone).year;
}

export function localDate(atIso: IsoInstant, timeZone: string): LocalDate {
  const wall = wallClockAt(isoToMs(atIso), timeZone);
  return `${pad(wall.year, 4)}-${pad(wall.month, 2)}-${pad(wall.day, 2)}`;
}

function parseLocalDateMs(date: LocalDate): number | null {
  const match = LOCAL_DATE_PATTERN.exec(date);
  if (match === null) return null;
  const year = Number(match[1]);
  const month = Number(match[2]);
  const day = Number(match[3]);
  if (!isYearInRange(year)) return null;
  const ms = Date.UTC(year, month - 1, day);
  const check = new Date(ms);
  if (check.getUTCFullYear() !== year || check.getUTCMonth() !== month - 1 || check.getUTCDate() !== day) {
    return null;
  }
  return ms;
}

export function isLocalDate(text: unknown): text is LocalDate {
  return typeof text === 'string' && parseLocalDateMs(text) !== null;
}

/** Calendar arithmetic on a local date (no zone involved: a calendar day is a calendar day). */
export function addDaysToLocalDate(date: LocalDate, days: number): LocalDate {
  const ms = parseLocalDateMs(date);
  assert(ms !== null, `not a local date: ${date}`);
  assert(Number.isSafeInteger(days), `days must be an integer, got ${days}`);
  const result = new Date(ms + days * MS_PER_DAY);
  assert(isYearInRange(result.getUTCFullYear()), `local date out of range: ${date} + ${days}`);
  return result.toISOString().slice(0, 10);
}

/**
 * The first instant at which the wall clock in `timeZone` reads `date` 00:00 or later. Usually that is
 * local midnight; where a DST change skips midnight (or, as in Samoa in 2011, a whole day) it is the
 * instant of the change; where midnight occurs twice it is the earlier one.
 */
export function startOfLocalDateIso(date: LocalDate, timeZone: string): IsoInstant {
  // A pure function of its arguments that costs several Intl calls; a purchase asks it for its year's
  // start, so the same few answers are asked for over and over.
  const key = `${timeZone}\u0000${date}`;
  let start = startsOfLocalDates.get(key);
  if (start === undefined) {
    start = computeStartOfLocalDateIso(date, timeZone);
    if (startsOfLocalDates.size >= STARTS_CACHED_MAX) startsOfLocalDates.clear();
    startsOfLocalDates.set(key, start);
  }
  return start;
}

const STARTS_CACHED_MAX = 10_000;
const startsOfLocalDates = new Map<string, IsoInstant>();

function computeStartOfLocalDateIso(date: LocalDate, timeZone: string): IsoInstant {
  const wallMs = parseLocalDateMs(date);
  assert(wallMs !== null, `not a local date: ${date}`);
  // Offsets in force a day either side bracket every transition near midnight (zones move at most a
  // day, and never twice within two days).
  const offsetBeforeMs = offsetMsAt(wallMs - MS_PER_DAY, timeZone);
  const offsetAfterMs = offsetMsAt(wallMs + MS_PER_DAY, timeZone);
  const candidates = [wallMs - offsetBeforeMs, wallMs - offsetAfterMs].sort((a, b) => a - b);
  let resultMs: number | undefined = candidates.find((ms) => wallClockMs(ms, timeZone) === wallMs);
  if (resultMs === undefined) {
    // Midnight does not exist that day: find the transition by bisection. The wall clock is before
    // midnight at `low` and at or past it at `high`.
    let low = candidates[0] as number;
    let high = candidates[1] as number;
    assert(
      wallClockMs(low, timeZone) < wallMs && wallClockMs(high, timeZone) >= wallMs,
      `no transition around ${date} in ${timeZone}`,
    );
    while (high - low > 1) {
      const middle = Math.floor((low + high) / 2);
      if (wallClockMs(middle, timeZone) >= wallMs) high = middle;
      else low = middle;
    }
    resultMs = high;
  }
  assert(
    wallClockMs(resultMs, timeZone) >= wallMs && wallClockMs(resultMs - 1, timeZone) < wallMs,
    `start of ${date} in ${timeZone} is not the first instant of that date`,
  );
  return msToIso(resultMs);
}

/** First instant of local year `year` in `timeZone` as UTC, e.g. 2026 in Asia/Shanghai -> 2025-12-31T16:00:00.000Z. */
export function startOfLocalYearIso(year: number, timeZone: string): IsoInstant {
  assert(Number.isSafeInteger(year) && isYearInRange(year), `year out of range: ${year}`);
  return startOfLocalDateIso(`${pad(year, 4)}-01-01`, timeZone);
}
