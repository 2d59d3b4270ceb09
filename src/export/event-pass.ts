/**
 * The independent recomputation: the export's totals again, this time from the events themselves (the
 * event store's log, partition by partition in parallel, in position order), sharing nothing with the read
 * models or the projector: only the domain's movementsOf, which defines what an event moves. It also
 * gathers the tenant's expiry history for the breakage estimate, and proves that no event of the period
 * lies beyond the position the export is as of (a command that read the clock before `to` and committed
 * after the export fixed its heads would otherwise be missing from both computations alike).
 *
 * Cost. The first export of a tenant reads its whole log. Each export then hands the next period a carry
 * (EventPassCarry, kept in export_carries): its running totals from the events, and for each partition
 * the position from which an event could still belong to a later period. The export of the next period
 * starts there, so a monthly close reads about a month of events, not the tenant's whole history; its
 * totals are the ones a read from the log's start would give (tested: export.integration.test.ts).
 * Memory O(stores + the distinct expiry instants of lots not yet expired).
 */
import type { RowDataPacket } from 'mysql2/promise';
import { z } from 'zod';
import { memberIdOfStream } from '../commands/streams.ts';
import { sqlInt, type Pool } from '../db/pool.ts';
import { addPoints } from '../domain/points.ts';
import {
  MOVEMENT_KINDS,
  movementsOf,
  POSTING_EVENT_TYPES_SQL,
  STORE_MOVEMENT_KINDS,
  type LotCredit,
  type MemberEvent,
  type MovementKind,
  type StoreMovementKind,
} from '../domain/member/index.ts';
import type { PartitionHead } from '../eventstore/port.ts';
import { forEachLimited } from '../projections/engine.ts';
import type { Period } from './period.ts';

export const EVENT_PASS_PAGE_EVENTS = 5_000;
export const EVENT_PASS_CONCURRENCY = 4;
/**
 * A carry holds the points of lots not yet expired by expiry instant; expiries fall on local midnights,
 * so a programme has a few hundred or thousand such instants. Past this many the export hands on no carry
 * and the next one reads the log from its start (slower, never wrong).
 */
export const CARRY_EXPIRY_INSTANTS_MAX = 100_000;

const points = z.number().int().refine(Number.isSafeInteger);
/**
 * What one export's independent pass hands the export of the next period (export_carries), as of the end
 * of its period (`toAt`) and its heads. For every event at or before `head` recorded before `toAt` it has
 * already counted; `resumeFrom` is the first position at which an event recorded at or after `toAt` may
 * lie (positions follow commit order, and an event's time is taken before its commit, so it is the
 * first such event the pass met, or the first position it did not read).
 */
export const eventPassCarrySchema = z.strictObject({
  toAt: z.string(),
  partitions: z.array(
    z.strictObject({
      partition: z.number().int().min(0),
      head: z.number().int().min(0),
      headHash: z.string(),
      resumeFrom: z.number().int().min(1),
    }),
  ),
  /** Every movement counted: the closing of the period from the events. */
  closing: points,
  /** Breakage inputs as of toAt (EventTotals). */
  expiredPoints: points,
  maturedCreditedPoints: points,
  /** Points credited to lots that expire after toAt, by expiry instant (ascending). */
  pendingCredits: z.array(z.tuple([z.string(), points])),
});
export type EventPassCarry = z.infer<typeof eventPassCarrySchema>;

export interface EventTotals {
  opening: number;
  closing: number;
  movements: Record<MovementKind, number>;
  stores: Map<string, Record<StoreMovementKind, number>>;
  /** Member events recorded in the period. */
  periodEvents: number;
  /** Breakage inputs: points put into lots that had expired by the end of the period, and points expired by then. */
  maturedCreditedPoints: number;
  expiredPoints: number;
  /** Events beyond the export's heads that the period would contain (must be 0). */
  lateEvents: { partition: number; position: number }[];
  /** Events the pass read (from the log's start, or from the previous export's carry). */
  eventsRead: number;
  /** For the next period's export; null when there is too much to carry (CARRY_EXPIRY_INSTANTS_MAX). */
  carry: EventPassCarry | null;
}

function zeroMovements(): Record<MovementKind, number> {
  return Object.fromEntries(MOVEMENT_KINDS.map((kind) => [kind, 0])) as Record<MovementKind, number>;
}

/** The lots an event credits, and how much of each went to repaying debt (not credited to the lot). */
export function creditedLots(event: MemberEvent): { lot: LotCredit; debtRepaid: number }[] {
  switch (event.type) {
    case 'PurchaseRecorded':
      return event.data.lot === null ? [] : [{ lot: event.data.lot, debtRepaid: event.data.debtRepaid }];
    case 'PurchaseRefunded':
      return event.data.restoredLot === null
        ? []
        : [{ lot: event.data.restoredLot, debtRepaid: event.data.debtRepaid }];
    case 'PointsAdjusted':
      return event.data.lot === null ? [] : [{ lot: event.data.lot, debtRepaid: event.data.debtRepaid }];
    default:
      return [];
  }
}

/**
 * The totals of `period` as of `heads`, from the events. With `carry` (the previous period's export, whose
 * `toAt` is this period's `fromAt`), each partition is read from the carry's `resumeFrom` and the events
 * the carry already counted are skipped; without, from the log's start.
 */
export async function recomputeFromEvents(
  pool: Pool,
  tenantId: string,
  period: Period,
  heads: readonly PartitionHead[],
  carry: EventPassCarry | null = null,
): Promise<EventTotals> {
  if (carry !== null && carry.toAt !== period.fromAt)
    throw new Error(`a carry as of ${carry.toAt} cannot start the period from ${period.fromAt}`);
  const totals: EventTotals = {
    opening: carry?.closing ?? 0,
    closing: carry?.closing ?? 0,
    movements: zeroMovements(),
    stores: new Map(),
    periodEvents: 0,
    maturedCreditedPoints: carry?.maturedCreditedPoints ?? 0,
    expiredPoints: carry?.expiredPoints ?? 0,
    lateEvents: [],
    eventsRead: 0,
    carry: null,
  };
  // Credits of lots that expire after `to` go on to the next period; those that expire by `to` mature now.
  const pending = new Map<string, number>();
  let pendingOverflow = false;
  const credit = (expiresAt: string, creditedPoints: number) => {
    if (expiresAt <= period.toAt) {
      totals.maturedCreditedPoints = addPoints(totals.maturedCreditedPoints, creditedPoints);
    } else if (!pendingOverflow) {
      pending.set(expiresAt, addPoints(pending.get(expiresAt) ?? 0, creditedPoints));
      if (pending.size > CARRY_EXPIRY_INSTANTS_MAX) pendingOverflow = true;
    }
  };
  for (const [expiresAt, creditedPoints] of carry?.pendingCredits ?? []) credit(expiresAt, creditedPoints);

  const carried = new Map((carry?.partitions ?? []).map((p) => [p.partition, p]));
  const next: EventPassCarry['partitions'] = [];
  await forEachLimited(heads, EVENT_PASS_CONCURRENCY, async (head) => {
    const previous = carried.get(head.partition);
    // Events at or before the previous head recorded before this period are in the carry's totals.
    const countedUpTo = previous?.head ?? 0;
    let after = (previous?.resumeFrom ?? 1) - 1;
    let firstOfLaterPeriod: number | null = null;
    for (;;) {
      const [rows] = await pool.query<RowDataPacket[]>(
        `SELECT position, stream_id, event_type, IF(event_type IN (${POSTING_EVENT_TYPES_SQL}), data, NULL) AS data
         FROM events WHERE tenant_id = ? AND partition_no = ? AND position > ? ORDER BY position LIMIT ?`,
        [tenantId, head.partition, after, EVENT_PASS_PAGE_EVENTS],
      );
      totals.eventsRead += rows.length;
      for (const row of rows) {
        if (row['data'] === null || memberIdOfStream(String(row['stream_id'])) === null) continue;
        const event = {
          type: String(row['event_type']),
          data: JSON.parse(String(row['data'])) as unknown,
        } as MemberEvent;
        const at = event.data.at;
        const position = sqlInt(row['position']);
        if (at >= period.toAt) {
          firstOfLaterPeriod ??= position;
          continue;
        }
        if (position > head.position) {
          // Reading on past the heads only to prove the period is complete there.
          totals.lateEvents.push({ partition: head.partition, position });
          continue;
        }
        if (at < period.fromAt && position <= countedUpTo) continue;
        const inPeriod = at >= period.fromAt;
        if (inPeriod) totals.periodEvents += 1;
        for (const movement of movementsOf(event)) {
          totals.closing = addPoints(totals.closing, movement.points);
          if (!inPeriod) {
            totals.opening = addPoints(totals.opening, movement.points);
            continue;
          }
          totals.movements[movement.kind] = addPoints(totals.movements[movement.kind], movement.points);
          if (
            movement.storeId !== undefined &&
            (STORE_MOVEMENT_KINDS as readonly string[]).includes(movement.kind)
          ) {
            let store = totals.stores.get(movement.storeId);
            if (store === undefined)
              totals.stores.set(
                movement.storeId,
                (store = { earned: 0, redeemed: 0, reversed: 0, restored: 0 }),
              );
            const kind = movement.kind as StoreMovementKind;
            store[kind] = addPoints(store[kind], movement.points);
          }
        }
        // Breakage: of the points put into lots that have all reached their expiry by `to`, how many expired.
        for (const { lot, debtRepaid } of creditedLots(event)) credit(lot.expiresAt, lot.points - debtRepaid);
        if (event.type === 'LotsExpired')
          totals.expiredPoints = addPoints(totals.expiredPoints, event.data.points);
      }
      if (rows.length > 0) after = sqlInt(rows[rows.length - 1]!['position']);
      if (rows.length < EVENT_PASS_PAGE_EVENTS) break;
    }
    next.push({
      partition: head.partition,
      head: head.position,
      headHash: head.lastHash,
      resumeFrom: firstOfLaterPeriod ?? after + 1,
    });
  });
  if (!pendingOverflow) {
    totals.carry = {
      toAt: period.toAt,
      partitions: next.sort((a, b) => a.partition - b.partition),
      closing: totals.closing,
      expiredPoints: totals.expiredPoints,
      maturedCreditedPoints: totals.maturedCreditedPoints,
      pendingCredits: [...pending].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
    };
  }
  return totals;
}

/**
 * The carry counted every event up to its heads: each must still be in the log at its position with the
 * hash the previous export saw, below the heads this export is as of (a cut tail or a rewritten head would
 * otherwise go unnoticed by a pass that starts after it; the audit checks the whole chains). Returns what
 * differs, empty when all is there.
 */
export async function carryHeadsMissing(
  pool: Pool,
  tenantId: string,
  carry: EventPassCarry,
  heads: readonly PartitionHead[],
): Promise<string[]> {
  const current = new Map(heads.map((h) => [h.partition, h.position]));
  const missing: string[] = [];
  for (const { partition, head, headHash } of carry.partitions) {
    if (head === 0) continue;
    const now = current.get(partition);
    if (now === undefined || now < head) {
      missing.push(
        `partition ${partition}: the log's head is ${now ?? 'gone'}, the previous export counted to ${head}`,
      );
      continue;
    }
    const [rows] = await pool.query<RowDataPacket[]>(
      'SELECT partition_hash FROM events WHERE tenant_id = ? AND partition_no = ? AND position = ?',
      [tenantId, partition, head],
    );
    const found = rows[0] === undefined ? null : String(rows[0]['partition_hash']);
    if (found !== headHash)
      missing.push(
        `partition ${partition} position ${head}: ${found === null ? 'no event' : `hash ${found}`}, expected ${headHash}`,
      );
  }
  return missing;
}
