/**
 * The export's figures from the read model's ledger_entries (one row per movement, `at` = recording time),
 * as of the event-store position the export fixed (position <= head of each partition), read in member id
 * order with keyset pagination: the server folds each member's entries into one row (GROUP BY member_id on
 * the primary key), so a page is EXPORT_MEMBERS_PER_PAGE members whatever their histories, and memory stays
 * one page for 20 million members.
 */
import type { RowDataPacket } from 'mysql2/promise';
import { isoToSqlTime, sqlInt, type Pool } from '../db/pool.ts';
import { STORE_MOVEMENT_KINDS, type MovementKind, type StoreMovementKind } from '../domain/member/index.ts';
import type { PartitionHead } from '../eventstore/port.ts';
import type { Period } from './period.ts';

export const EXPORT_MEMBERS_PER_PAGE = 10_000;
export const MOVEMENT_COLUMNS: readonly MovementKind[] = [
  'earned',
  'redeemed',
  'expired',
  'adjusted',
  'reversed',
  'restored',
];

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

/** Calls onRow for every member with a balance or a movement, in member id order. */
export async function forEachMemberRow(
  pool: Pool,
  tenantId: string,
  period: Period,
  heads: readonly PartitionHead[],
  onRow: (row: MemberRow) => Promise<void>,
): Promise<void> {
  const from = isoToSqlTime(period.fromAt);
  const to = isoToSqlTime(period.toAt);
  const bound = positionBound(heads);
  const kindSums = MOVEMENT_COLUMNS.map(
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
        ...MOVEMENT_COLUMNS.map(() => from),
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
      const member: MemberRow = {
        memberId: String(row['member_id']),
        opening: sqlInt(row['opening']),
        movements: Object.fromEntries(MOVEMENT_COLUMNS.map((kind) => [kind, sqlInt(row[kind])])) as Record<
          MovementKind,
          number
        >,
        closing: sqlInt(row['closing']),
        periodEntries: sqlInt(row['period_entries']),
      };
      if (member.opening === 0 && member.closing === 0 && member.periodEntries === 0) continue;
      await onRow(member);
    }
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
