/**
 * The independent recomputation: the export's totals again, this time from the events themselves (the
 * event store's log, partition by partition in parallel, in position order), sharing nothing with the read
 * models or the projector: only the domain's movementsOf, which defines what an event moves. It also
 * gathers the tenant's expiry history for the breakage estimate, and proves that no event of the period
 * lies beyond the position the export is as of (a command that read the clock before `to` and committed
 * after the export fixed its heads would otherwise be missing from both computations alike).
 *
 * Cost: one read of the tenant's whole log (O(events), memory O(stores)). docs/finance.md discusses the
 * incremental alternative.
 */
import type { RowDataPacket } from 'mysql2/promise';
import { memberIdOfStream } from '../commands/streams.ts';
import { sqlInt, type Pool } from '../db/pool.ts';
import { addPoints } from '../domain/points.ts';
import { movementsOf, type LotCredit, type MemberEvent, type MovementKind } from '../domain/member/index.ts';
import type { PartitionHead } from '../eventstore/port.ts';
import { forEachLimited } from '../projections/engine.ts';
import { MOVEMENT_COLUMNS, STORE_COLUMNS, type StoreKind } from './ledger-pass.ts';
import type { Period } from './period.ts';

export const EVENT_PASS_PAGE_EVENTS = 5_000;
export const EVENT_PASS_CONCURRENCY = 4;
/** Event types that move points or credit lots; the rest are read as a position only (no JSON parsed). */
const MOVING_TYPES_SQL = [
  'PurchaseRecorded',
  'HoldCaptured',
  'PointsRedeemed',
  'PurchaseRefunded',
  'PointsAdjusted',
  'LotsExpired',
]
  .map((type) => `'${type}'`)
  .join(', ');

export interface EventTotals {
  opening: number;
  closing: number;
  movements: Record<MovementKind, number>;
  stores: Map<string, Record<StoreKind, number>>;
  /** Member events recorded in the period. */
  periodEvents: number;
  /** Breakage inputs: points put into lots that had expired by the end of the period, and points expired by then. */
  maturedCreditedPoints: number;
  expiredPoints: number;
  /** Events beyond the export's heads that the period would contain (must be 0). */
  lateEvents: { partition: number; position: number }[];
}

function zeroMovements(): Record<MovementKind, number> {
  return Object.fromEntries(MOVEMENT_COLUMNS.map((kind) => [kind, 0])) as Record<MovementKind, number>;
}

function creditedLots(event: MemberEvent): { lot: LotCredit; debtRepaid: number }[] {
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

export async function recomputeFromEvents(
  pool: Pool,
  tenantId: string,
  period: Period,
  heads: readonly PartitionHead[],
): Promise<EventTotals> {
  const totals: EventTotals = {
    opening: 0,
    closing: 0,
    movements: zeroMovements(),
    stores: new Map(),
    periodEvents: 0,
    maturedCreditedPoints: 0,
    expiredPoints: 0,
    lateEvents: [],
  };
  await forEachLimited(heads, EVENT_PASS_CONCURRENCY, async (head) => {
    let after = 0;
    for (;;) {
      const [rows] = await pool.query<RowDataPacket[]>(
        `SELECT position, stream_id, event_type, IF(event_type IN (${MOVING_TYPES_SQL}), data, NULL) AS data
         FROM events WHERE tenant_id = ? AND partition_no = ? AND position > ? ORDER BY position LIMIT ?`,
        [tenantId, head.partition, after, EVENT_PASS_PAGE_EVENTS],
      );
      for (const row of rows) {
        if (row['data'] === null || memberIdOfStream(String(row['stream_id'])) === null) continue;
        const event = {
          type: String(row['event_type']),
          data: JSON.parse(String(row['data'])) as unknown,
        } as MemberEvent;
        const at = event.data.at;
        if (at >= period.toAt) continue;
        const position = sqlInt(row['position']);
        if (position > head.position) {
          // Reading on past the heads only to prove the period is complete there.
          totals.lateEvents.push({ partition: head.partition, position });
          continue;
        }
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
            (STORE_COLUMNS as readonly string[]).includes(movement.kind)
          ) {
            let store = totals.stores.get(movement.storeId);
            if (store === undefined)
              totals.stores.set(
                movement.storeId,
                (store = { earned: 0, redeemed: 0, reversed: 0, restored: 0 }),
              );
            const kind = movement.kind as StoreKind;
            store[kind] = addPoints(store[kind], movement.points);
          }
        }
        // Breakage: of the points put into lots that have all reached their expiry by `to`, how many expired.
        for (const { lot, debtRepaid } of creditedLots(event)) {
          if (lot.expiresAt <= period.toAt)
            totals.maturedCreditedPoints = addPoints(totals.maturedCreditedPoints, lot.points - debtRepaid);
        }
        if (event.type === 'LotsExpired')
          totals.expiredPoints = addPoints(totals.expiredPoints, event.data.points);
      }
      if (rows.length < EVENT_PASS_PAGE_EVENTS) break;
      after = sqlInt(rows[rows.length - 1]!['position']);
    }
  });
  return totals;
}
