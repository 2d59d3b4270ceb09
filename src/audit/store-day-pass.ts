/**
 * Pass C, per-store daily totals, one range of the tenant's local days inside one consistent snapshot:
 * every `store_daily_totals` row equals the sum of the `ledger_entries` of its store, local day and log
 * partition (earned, redeemed, reversed and restored points, and the number of those entries), with no row
 * missing and none extra. Pass B proves each ledger entry against the member's events (store, kind, points,
 * `at`), so together they prove the store totals against the events.
 *
 * The projector writes a batch's entries and store totals in one transaction with its checkpoint, so inside
 * one snapshot the two tables agree whatever the lag. Days are walked in order, jumping over days with
 * neither entries nor rows; each day is one aggregate read from the entries' time index alone (it carries
 * store, kind, partition and points: migration 006) and one read of that day's rows by primary key.
 * Memory: one day's stores x partitions, whatever the history's length.
 */
import type { RowDataPacket } from 'mysql2/promise';
import { isoToSqlTime, sqlInt, sqlTimeToIso, type Pool, type PoolConnection } from '../db/pool.ts';
import { STORE_MOVEMENT_KINDS } from '../domain/member/index.ts';
import { addDaysToLocalDate, localDate, startOfLocalDateIso, type LocalDate } from '../domain/time.ts';
import type { DiscrepancyLog } from './report.ts';
import { withSnapshot } from './snapshot.ts';

const STORE_KINDS_SQL = STORE_MOVEMENT_KINDS.map((kind) => `'${kind}'`).join(', ');
const COLUMNS = [...STORE_MOVEMENT_KINDS.map((kind) => `${kind}_points`), 'movements'] as const;

/** Local days [fromDay, toDay) of one tenant; null is open-ended. */
export interface StoreDayRange {
  timeZone: string;
  fromDay: LocalDate | null;
  toDay: LocalDate | null;
}

export interface StoreDayPassInput {
  pool: Pool;
  tenantId: string;
  range: StoreDayRange;
}

export interface StoreDayPassResult {
  /** Days with entries or rows compared. */
  days: number;
}

/**
 * The ranges the audit splits a tenant's store days into: one per local month from the first day with an
 * entry or a row to the last, the first and last open-ended (entries projected meanwhile land in one).
 */
export async function storeDayRanges(
  pool: Pool,
  tenantId: string,
  timeZone: string,
): Promise<StoreDayRange[]> {
  const [[entries], [rows]] = await Promise.all([
    pool.query<RowDataPacket[]>(
      'SELECT MIN(at) AS first, MAX(at) AS last FROM ledger_entries WHERE tenant_id = ?',
      [tenantId],
    ),
    pool.query<RowDataPacket[]>(
      'SELECT MIN(day) AS first, MAX(day) AS last FROM store_daily_totals WHERE tenant_id = ?',
      [tenantId],
    ),
  ]);
  const days: LocalDate[] = [];
  for (const at of [entries[0]?.['first'], entries[0]?.['last']]) {
    if (at !== null && at !== undefined) days.push(localDate(sqlTimeToIso(String(at)), timeZone));
  }
  for (const day of [rows[0]?.['first'], rows[0]?.['last']]) {
    if (day !== null && day !== undefined) days.push(String(day));
  }
  if (days.length === 0) return [{ timeZone, fromDay: null, toDay: null }];
  days.sort();
  const starts: LocalDate[] = [];
  for (let month = `${days[0]!.slice(0, 7)}-01`; month <= days[days.length - 1]!; month = nextMonth(month)) {
    starts.push(month);
  }
  return starts.map((start, index) => ({
    timeZone,
    fromDay: index === 0 ? null : start,
    toDay: index === starts.length - 1 ? null : starts[index + 1]!,
  }));
}

function nextMonth(monthStart: LocalDate): LocalDate {
  const year = Number(monthStart.slice(0, 4));
  const month = Number(monthStart.slice(5, 7));
  return month === 12
    ? `${String(year + 1).padStart(4, '0')}-01-01`
    : `${monthStart.slice(0, 5)}${String(month + 1).padStart(2, '0')}-01`;
}

export async function auditStoreDays(
  input: StoreDayPassInput,
  log: DiscrepancyLog,
): Promise<StoreDayPassResult> {
  return withSnapshot(input.pool, (connection) => walkDays(connection, input, log));
}

async function walkDays(
  connection: PoolConnection,
  { tenantId, range }: StoreDayPassInput,
  log: DiscrepancyLog,
): Promise<StoreDayPassResult> {
  const { timeZone } = range;
  const dayStart = (day: LocalDate) => isoToSqlTime(startOfLocalDateIso(day, timeZone));
  const endAt = range.toDay === null ? null : dayStart(range.toDay);
  const query = async (sql: string, params: unknown[]) =>
    (await connection.query<RowDataPacket[]>(sql, params))[0];
  let days = 0;
  let from: LocalDate | null = range.fromDay;
  for (;;) {
    // The next day on or after `from` with an entry or a row, inside the range.
    const [[entry], [row]] = await Promise.all([
      query(
        `SELECT at FROM ledger_entries WHERE tenant_id = ? ${from === null ? '' : 'AND at >= ?'} ${endAt === null ? '' : 'AND at < ?'}
         ORDER BY at LIMIT 1`,
        [tenantId, ...(from === null ? [] : [dayStart(from)]), ...(endAt === null ? [] : [endAt])],
      ),
      query(
        `SELECT day FROM store_daily_totals WHERE tenant_id = ? ${from === null ? '' : 'AND day >= ?'} ${range.toDay === null ? '' : 'AND day < ?'}
         ORDER BY day LIMIT 1`,
        [tenantId, ...(from === null ? [] : [from]), ...(range.toDay === null ? [] : [range.toDay])],
      ),
    ]);
    const candidates: LocalDate[] = [];
    if (entry !== undefined) candidates.push(localDate(sqlTimeToIso(String(entry['at'])), timeZone));
    if (row !== undefined) candidates.push(String(row['day']));
    if (candidates.length === 0) return { days };
    const day = candidates.sort()[0]!;
    await compareDay(connection, tenantId, day, dayStart(day), dayStart(addDaysToLocalDate(day, 1)), log);
    days += 1;
    from = addDaysToLocalDate(day, 1);
  }
}

type Sums = [earned: number, redeemed: number, reversed: number, restored: number, movements: number];

/** One day's rows keyed by store and partition, as arrays (no object per row: a day may hold many stores). */
async function sumsByStore(
  connection: PoolConnection,
  sql: string,
  params: unknown[],
): Promise<Map<string, Sums>> {
  const [rows] = await connection.query<RowDataPacket[]>({ sql, rowsAsArray: true }, params);
  const sums = new Map<string, Sums>();
  for (const row of rows as unknown as unknown[][]) {
    sums.set(storeKey(String(row[0]), sqlInt(row[1])), row.slice(2).map(sqlInt) as Sums);
  }
  return sums;
}

/** The day's expected sums per store and partition, from the ledger entries (columns as COLUMNS). */
const ENTRY_SUMS_SQL = `SELECT store_id, partition_no,
    ${STORE_MOVEMENT_KINDS.map((kind) => `SUM(CASE WHEN kind = '${kind}' THEN points ELSE 0 END) AS ${kind}_points`).join(', ')},
    COUNT(*) AS movements
  FROM ledger_entries
  WHERE tenant_id = ? AND at >= ? AND at < ? AND store_id IS NOT NULL AND kind IN (${STORE_KINDS_SQL})
  GROUP BY store_id, partition_no ORDER BY NULL`;

/** Compares one day: the entries' sums and the rows, store by store, as arrays. */
async function compareDay(
  connection: PoolConnection,
  tenantId: string,
  day: LocalDate,
  startAt: string,
  endAt: string,
  log: DiscrepancyLog,
): Promise<void> {
  const [expected, actual] = await Promise.all([
    sumsByStore(connection, ENTRY_SUMS_SQL, [tenantId, startAt, endAt]),
    sumsByStore(
      connection,
      `SELECT store_id, partition_no, ${COLUMNS.join(', ')} FROM store_daily_totals WHERE tenant_id = ? AND day = ?`,
      [tenantId, day],
    ),
  ]);
  for (const [key, want] of expected) {
    const have = actual.get(key);
    if (have === undefined) report(log, tenantId, day, key, want, null);
    else if (want.some((value, index) => value !== have[index])) report(log, tenantId, day, key, want, have);
  }
  for (const [key, have] of actual) if (!expected.has(key)) report(log, tenantId, day, key, null, have);
}

function report(
  log: DiscrepancyLog,
  tenantId: string,
  day: LocalDate,
  key: string,
  want: Sums | null,
  have: Sums | null,
): void {
  const [storeId, partition] = key.split('\u0000') as [string, string];
  const place = {
    kind: 'read-model' as const,
    tenantId,
    partition: Number(partition),
    table: 'store_daily_totals',
  };
  if (want === null || have === null) {
    log.add({
      ...place,
      field: `${day} store ${storeId}`,
      expected: want === null ? null : describe(want),
      actual: have === null ? null : describe(have),
      detail:
        want === null
          ? 'a row for a store and day without ledger entries'
          : 'no row for a store and day with ledger entries',
    });
    return;
  }
  COLUMNS.forEach((column, index) => {
    if (want[index] === have[index]) return;
    log.add({
      ...place,
      field: `${day} store ${storeId} ${column}`,
      expected: want[index]!,
      actual: have[index]!,
      detail: "the store's day differs from the sum of its ledger entries",
    });
  });
}

function storeKey(storeId: string, partition: number): string {
  return `${storeId}\u0000${partition}`;
}

function describe(sums: Sums): string {
  return COLUMNS.map((column, index) => `${column} ${sums[index]!}`).join(', ');
}
