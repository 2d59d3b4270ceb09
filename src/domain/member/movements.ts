/**
 * Ledger entries: how each event moved the member's points, in the member's terms (the `member` side
 * of postingsFor, with a kind, the balance after, and what the till needs to recognise the entry).
 * A refund can move points twice (reversal, then restore), so it yields up to two movements; events
 * that move no points (registration, holds, tier changes, a purchase that earned nothing) yield none.
 */
import { assertNever } from '../assert.ts';
import type { MemberEvent } from './events.ts';

/** Every kind of movement, in the finance export's column order (balances.csv). */
export const MOVEMENT_KINDS = ['earned', 'redeemed', 'expired', 'adjusted', 'reversed', 'restored'] as const;
/** Named like the finance export's columns. */
export type MovementKind = (typeof MOVEMENT_KINDS)[number];

/**
 * The movements a store's figures add up (stores.csv, store_daily_totals): adjustments and expiries
 * belong to no store. A refund's reversal and restore count at the refunding store.
 */
export const STORE_MOVEMENT_KINDS = [
  'earned',
  'redeemed',
  'reversed',
  'restored',
] as const satisfies readonly MovementKind[];
export type StoreMovementKind = (typeof STORE_MOVEMENT_KINDS)[number];

export type Movement = Readonly<{
  kind: MovementKind;
  /** Signed: + credits the member, - debits. Never 0. */
  points: number;
  balanceAfter: number;
  /** '' for an event's first movement; a refund's restore is 'restored', so entry ids stay stable. */
  suffix: string;
  orderId?: string;
  storeId?: string;
  reason?: string;
}>;

export function movementsOf(event: MemberEvent): Movement[] {
  switch (event.type) {
    case 'MemberRegistered':
    case 'MemberProfileUpdated':
    case 'TierChanged':
    case 'PointsHeld':
    case 'HoldReleased':
      return [];
    case 'PurchaseRecorded': {
      const { points, balanceAfter, orderId, storeId } = event.data;
      return points === 0 ? [] : [{ kind: 'earned', points, balanceAfter, suffix: '', orderId, storeId }];
    }
    case 'HoldCaptured':
    case 'PointsRedeemed': {
      const { points, balanceAfter, orderId, storeId } = event.data;
      return [{ kind: 'redeemed', points: -points, balanceAfter, suffix: '', orderId, storeId }];
    }
    case 'PurchaseRefunded': {
      const { pointsReversed, pointsRestored, balanceAfter, orderId, storeId } = event.data;
      const movements: Movement[] = [];
      if (pointsReversed > 0) {
        movements.push({
          kind: 'reversed',
          points: -pointsReversed,
          balanceAfter: balanceAfter - pointsRestored,
          suffix: '',
          orderId,
          storeId,
        });
      }
      if (pointsRestored > 0) {
        movements.push({
          kind: 'restored',
          points: pointsRestored,
          balanceAfter,
          suffix: 'restored',
          orderId,
          storeId,
        });
      }
      return movements;
    }
    case 'PointsAdjusted': {
      const { points, balanceAfter, reason } = event.data;
      return [{ kind: 'adjusted', points, balanceAfter, suffix: '', reason }];
    }
    case 'LotsExpired': {
      const { points, balanceAfter } = event.data;
      return points === 0 ? [] : [{ kind: 'expired', points: -points, balanceAfter, suffix: '' }];
    }
    default:
      return assertNever(event, 'member event');
  }
}
