/**
 * The export's figures from the read models, as of the event-store position the export fixed (position <=
 * head of each partition). Member rows come one of two ways, which give the same rows (the export tests run
 * both over random histories); `memberRowsPlan` picks the one that reads less:
 *
 * - **whole-history**: ledger_entries in member id order (keyset pages of EXPORT_MEMBERS_PER_PAGE members),
 *   the database folding each member's entries recorded before `to` into one row. It reads every entry the
 *   tenant recorded before the period's end, so it grows with history; with a short history it is the cheaper.
 * - **since-period**: every account with its entries recorded since `from`. A member's closing is its
 *   lifetime total in member_accounts (the six lifetime columns: the sum of all its ledger entries) minus its
 *   entries recorded at or after `to` or lying beyond the heads; the period's movements are its entries
 *   recorded in [from, to) within the heads; opening = closing - movements. It reads the accounts and the
 *   entries since `from` (through the time index, which covers them: migration 006), whatever the history's
 *   length, but pays the database a temporary table grouping those entries by member. One statement: one
 *   consistent read, in which each account and its entries agree (the projector writes them in one
 *   transaction), whatever the projector applied after the heads; its rows stream in member id order with
 *   backpressure. Not seen by it: an entry beyond the heads recorded before `from` (a command that committed
 *   more than a period late). Its event is late for this period too, and the independent pass refuses the
 *   export (export.ts, check period-complete-at-heads), so no export is written from rows that miss one.
 *
 * Either way memory is a page or a stream buffer, for 20 million members.
 */
import type { Connection as CoreConnection } from 'mysql2';
import type { RowDataPacket } from 'mysql2/promise';
import { isoToSqlTime, sqlInt, sqlTimeToIso, type Pool } from '../db/pool.ts';
import { addPoints, subtractPoints } from '../domain/points.ts';
import {
  MOVEMENT_KINDS,
  STORE_MOVEMENT_KINDS,
  type MovementKind,
  type StoreMovementKind,
} from '../domain/member/index.ts';
import { isoToMs } from '../domain/time.ts';
import type { PartitionHead } from '../eventstore/port.ts';
import type { Period } from './period.ts';

export const EXPORT_MEMBERS_PER_PAGE = 10_000;
/** Rows the since-period stream buffers before it pauses the connection. */
export const EXPORT_MEMBER_ROWS_BUFFERED = 2_000;
/**
 * since-period is chosen when the time since `from` is at most this share of the time since the tenant's
 * first entry. Measured (BENCHMARKS.md): on bench:export's two-month history, where most entries lie since
 * `from`, since-period took 2.1-2.6 times as long as whole-history; on bench:export-rows' three-year history,
 * a twelfth for its last month and 60 to 100 times as long for its first.
 */
export const SINCE_PERIOD_TIME_SHARE_MAX = 0.25;

export type MemberRowsPlan = 'whole-history' | 'since-period';

export interface MemberRow {
  memberId: string;
  opening: number;
  movements: Record<MovementKind, number>;
  closing: number;
  /** Ledger entries recorded in the period (a member whose period movements net to zero still has a row). */
  periodEntries: number;
}

export interface StoreRow {
  storeId: string;
  movements: Record<StoreMovementKind, number>;
}

/** `position <= head of its partition`, as one CASE over the partition number (16 placeholders). */
export function positionBound(heads: readonly PartitionHead[]): { sql: string; params: number[] } {
  const sorted = [...heads].sort((a, b) => a.partition - b.partition);
  // A tenant without a log has no heads: CASE needs one WHEN, and every position is then out of bounds.
  if (sorted.length === 0) return { sql: 'position <= 0', params: [] };
  return {
    sql: `position <= CASE partition_no ${sorted.map(() => 'WHEN ? THEN ?').join(' ')} ELSE 0 END`,
    params: sorted.flatMap((head) => [head.partition, head.position]),
  };
}

/**
 * The plan that reads less, judged by time (one index lookup: the tenant's first entry): since-period when
 * the time since `from` is a small share of the tenant's recorded history, so that its entries are too.
 */
export async function memberRowsPlan(
  pool: Pool,
  tenantId: string,
  period: Period,
  now: string,
): Promise<MemberRowsPlan> {
  const [rows] = await pool.query<RowDataPacket[]>(
    'SELECT MIN(at) AS first FROM ledger_entries WHERE tenant_id = ?',
    [tenantId],
  );
  const first = rows[0]?.['first'];
  if (first === null || first === undefined) return 'whole-history';
  const history = isoToMs(now) - isoToMs(sqlTimeToIso(String(first)));
  const sincePeriod = isoToMs(now) - isoToMs(period.fromAt);
  return sincePeriod <= history * SINCE_PERIOD_TIME_SHARE_MAX ? 'since-period' : 'whole-history';
}

/** Calls onRow for every member with a balance or a movement, in member id order. */
export async function forEachMemberRow(
  pool: Pool,
  tenantId: string,
  period: Period,
  heads: readonly PartitionHead[],
  plan: MemberRowsPlan,
  onRow: (row: MemberRow) => Promise<void>,
): Promise<void> {
  const emit = async (row: MemberRow) => {
    if (row.opening === 0 && row.closing === 0 && row.periodEntries === 0) return;
    await onRow(row);
  };
  if (plan === 'whole-history') await wholeHistoryRows(pool, tenantId, period, heads, emit);
  else await sincePeriodRows(pool, tenantId, period, heads, emit);
}

async function wholeHistoryRows(
  pool: Pool,
  tenantId: string,
  period: Period,
  heads: readonly PartitionHead[],
  emit: (row: MemberRow) => Promise<void>,
): Promise<void> {
  const from = isoToSqlTime(period.fromAt);
  const to = isoToSqlTime(period.toAt);
  const bound = positionBound(heads);
  const kindSums = MOVEMENT_KINDS.map(
    (kind) => `SUM(CASE WHEN at >= ? AND kind = '${kind}' THEN points ELSE 0 END) AS ${kind}`,
  ).join(',\n ');
  const page = async (after: string | null): Promise<RowDataPacket[]> => {
    const [rows] = await pool.query<RowDataPacket[]>(
      `SELECT member_id,
         SUM(CASE WHEN at < ? THEN points ELSE 0 END) AS opening,
         ${kindSums},
         SUM(points) AS closing,
         SUM(CASE WHEN at >= ? THEN 1 ELSE 0 END) AS period_entries
       FROM ledger_entries
       WHERE tenant_id = ? ${after === null ? '' : 'AND member_id > ?'} AND at < ? AND ${bound.sql}
       GROUP BY member_id ORDER BY member_id LIMIT ?`,
      [
        from,
        ...MOVEMENT_KINDS.map(() => from),
        from,
        tenantId,
        ...(after === null ? [] : [after]),
        to,
        ...bound.params,
        EXPORT_MEMBERS_PER_PAGE,
      ],
    );
    return rows;
  };
  // The next page is asked for as soon as this one arrives, so the database folds it while these rows are
  // written: two pages in memory at most.
  let next: Promise<RowDataPacket[]> | null = page(null);
  while (next !== null) {
    const rows: RowDataPacket[] = await next;
    next = rows.length < EXPORT_MEMBERS_PER_PAGE ? null : page(String(rows[rows.length - 1]!['member_id']));
    next?.catch(() => undefined);
    for (const row of rows) {
      await emit({
        memberId: String(row['member_id']),
        opening: sqlInt(row['opening']),
        movements: Object.fromEntries(MOVEMENT_KINDS.map((kind) => [kind, sqlInt(row[kind])])) as Record<
          MovementKind,
          number
        >,
        closing: sqlInt(row['closing']),
        periodEntries: sqlInt(row['period_entries']),
      });
    }
  }
}

async function sincePeriodRows(
  pool: Pool,
  tenantId: string,
  period: Period,
  heads: readonly PartitionHead[],
  emit: (row: MemberRow) => Promise<void>,
): Promise<void> {
  const bound = positionBound(heads);
  const lifetime = MOVEMENT_KINDS.map((kind) => `a.${kind}_points`).join(' + ');
  const periodSums = MOVEMENT_KINDS.map(
    (kind) => `SUM(CASE WHEN in_period = 1 AND kind = '${kind}' THEN points ELSE 0 END) AS ${kind}`,
  ).join(',\n ');
  // Columns by index (rowsAsArray): member_id, lifetime total, the six period sums, period entries, later.
  const sql = `SELECT a.member_id, ${lifetime}, ${MOVEMENT_KINDS.map((kind) => `s.${kind}`).join(', ')},
       s.period_entries, s.later
     FROM member_accounts a
     LEFT JOIN (
       SELECT member_id, ${periodSums},
         SUM(in_period) AS period_entries,
         SUM(CASE WHEN in_period = 1 THEN 0 ELSE points END) AS later
       FROM (
         SELECT member_id, kind, points, CASE WHEN at < ? AND ${bound.sql} THEN 1 ELSE 0 END AS in_period
         FROM ledger_entries WHERE tenant_id = ? AND at >= ?
       ) e
       GROUP BY member_id
     ) s ON s.member_id = a.member_id
     WHERE a.tenant_id = ?
     ORDER BY a.member_id`;
  const params = [
    isoToSqlTime(period.toAt),
    ...bound.params,
    tenantId,
    isoToSqlTime(period.fromAt),
    tenantId,
  ];

  const connection = await pool.getConnection();
  // The core connection streams; the promise wrapper would hold every row in memory.
  const stream = (connection.connection as unknown as CoreConnection)
    .query({ sql, rowsAsArray: true }, params)
    .stream({ highWaterMark: EXPORT_MEMBER_ROWS_BUFFERED });
  try {
    for await (const row of stream as AsyncIterable<unknown[]>) {
      // A member with no entry since the period's start has no `s` row: its sums are NULL, i.e. 0.
      const sum = (index: number) => (row[index] === null ? 0 : sqlInt(row[index]));
      const movements = {} as Record<MovementKind, number>;
      let moved = 0;
      MOVEMENT_KINDS.forEach((kind, index) => {
        movements[kind] = sum(2 + index);
        moved = addPoints(moved, movements[kind]);
      });
      const closing = subtractPoints(sqlInt(row[1]), sum(9));
      await emit({
        memberId: String(row[0]),
        opening: subtractPoints(closing, moved),
        movements,
        closing,
        periodEntries: sum(8),
      });
    }
    connection.release();
  } catch (error) {
    // Closing the connection ends the statement; handed back, it would first read and drop every row left.
    stream.destroy();
    connection.destroy();
    throw error;
  }
}

/** Signed movements per store over the period (a refund counts at the refunding store). Stores are few. */
export async function storeRows(
  pool: Pool,
  tenantId: string,
  period: Period,
  heads: readonly PartitionHead[],
): Promise<StoreRow[]> {
  const bound = positionBound(heads);
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT store_id, ${STORE_MOVEMENT_KINDS.map((kind) => `SUM(CASE WHEN kind = '${kind}' THEN points ELSE 0 END) AS ${kind}`).join(', ')}
     FROM ledger_entries
     WHERE tenant_id = ? AND at >= ? AND at < ? AND store_id IS NOT NULL AND kind IN (${STORE_MOVEMENT_KINDS.map((k) => `'${k}'`).join(', ')}) AND ${bound.sql}
     GROUP BY store_id ORDER BY store_id`,
    [tenantId, isoToSqlTime(period.fromAt), isoToSqlTime(period.toAt), ...bound.params],
  );
  return rows.map((row) => ({
    storeId: String(row['store_id']),
    movements: Object.fromEntries(STORE_MOVEMENT_KINDS.map((kind) => [kind, sqlInt(row[kind])])) as Record<
      StoreMovementKind,
      number
    >,
  }));
}

/** The same per store from the store_daily_totals read model (local days of the period): a second read model to agree with. */
export async function storeDailyTotals(
  pool: Pool,
  tenantId: string,
  period: Period,
): Promise<Map<string, Record<StoreMovementKind, number>>> {
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT store_id, ${STORE_MOVEMENT_KINDS.map((kind) => `SUM(${kind}_points) AS ${kind}`).join(', ')}
     FROM store_daily_totals WHERE tenant_id = ? AND day >= ? AND day < ? GROUP BY store_id`,
    [tenantId, period.from, period.to],
  );
  return new Map(
    rows.map((row) => [
      String(row['store_id']),
      Object.fromEntries(STORE_MOVEMENT_KINDS.map((kind) => [kind, sqlInt(row[kind])])) as Record<
        StoreMovementKind,
        number
      >,
    ]),
  );
}
