/**
 * The command-side state of a member: everything a decision needs and nothing that grows with history.
 * Its size is bounded by activity inside the retention windows (see limits.ts):
 * - lots: open lots only (a lot leaves when consumed or expired), so at most the credits of the last
 *   expiry horizon (about two years with the default programme);
 * - holds: at most HOLDS_ACTIVE_MAX (expired holds are released by the next command);
 * - orders: orders with a purchase, hold or redemption in the last max(refundWindowDays, 365) days;
 *   they carry the refund counters, the holdIds and refundIds kept for dedup, and the tier spend;
 * - adjustments: adjustmentIds of the last ADJUSTMENT_IDS_RETENTION_DAYS days, for dedup.
 * Older ids are deduplicated by the store's unique keys alone (DESIGN.md invariant 1).
 * Plain arrays and objects only, so the state serialises to a snapshot row and back without loss.
 */
import { fail } from '../assert.ts';
import { BALANCE_POINTS_MAX, HOLDS_ACTIVE_MAX, ORDER_RETENTION_DAYS_MIN } from '../limits.ts';
import { assertPoints, sumBy } from '../points.ts';
import type { IsoInstant } from '../time.ts';

export type OpenLot = Readonly<{
  lotId: string;
  /** Points credited when the lot was made. */
  points: number;
  /** Points still in the lot: 1..points. */
  remaining: number;
  expiresAt: IsoInstant;
  earnedAt: IsoInstant;
}>;

export type ActiveHold = Readonly<{
  holdId: string;
  orderId: string;
  storeId: string;
  points: number;
  expiresAt: IsoInstant;
  at: IsoInstant;
}>;

/** The purchase facts a refund needs (T, P, eligible spend) and the tier window reads. */
export type OrderPurchase = Readonly<{
  storeId: string;
  totalFen: number;
  eligibleFen: number;
  pointsEarned: number;
  refundWindowDays: number;
  at: IsoInstant;
}>;

export type OrderSummary = Readonly<{
  orderId: string;
  /** Null while only holds or redemptions name the order (a purchase may be uploaded late). */
  purchase: OrderPurchase | null;
  /** R: points redeemed and captured naming this order. */
  redeemedPoints: number;
  /** Latest expiry among the lots R came from; restored points expire then. */
  redeemedLotExpiresAtMax: IsoInstant | null;
  /** F: cumulative refunded fen. */
  refundedFen: number;
  /** Cumulative reversal settled so far, floor(P x F / T), including any waived part. */
  pointsReversed: number;
  /** Cumulative restore so far, floor(R x F / T) as of each refund. */
  pointsRestored: number;
  refundIds: readonly string[];
  holdIds: readonly string[];
  /** Evolve drops the summary once an event's `at` reaches this. */
  retainUntil: IsoInstant;
}>;

export type RecentAdjustment = Readonly<{ adjustmentId: string; at: IsoInstant }>;

export type UnregisteredMember = Readonly<{ registered: false }>;

export type RegisteredMember = Readonly<{
  registered: true;
  memberId: string;
  phone: string;
  name: string | null;
  tier: string;
  /** Negative only through a refund's reversal (debt). */
  balance: number;
  /** Sorted by expiresAt, then lotId: the consumption order. */
  lots: readonly OpenLot[];
  holds: readonly ActiveHold[];
  /** In order of first appearance. */
  orders: readonly OrderSummary[];
  adjustments: readonly RecentAdjustment[];
}>;

export type MemberState = UnregisteredMember | RegisteredMember;

export function initialMemberState(): MemberState {
  return { registered: false };
}

/** A hold counts while it is in state and not yet expired; expiry needs no event to take effect. */
export function isHoldActive(hold: ActiveHold, now: IsoInstant): boolean {
  return hold.expiresAt > now;
}

export function activeHolds(state: RegisteredMember, now: IsoInstant): ActiveHold[] {
  return state.holds.filter((hold) => isHoldActive(hold, now));
}

export function heldPoints(state: RegisteredMember, now: IsoInstant): number {
  return sumBy(activeHolds(state, now), (hold) => hold.points);
}

/** balance - held; negative only after a reversal took points that were held or owed. */
export function availablePoints(state: RegisteredMember, now: IsoInstant): number {
  return state.balance - heldPoints(state, now);
}

export function lotsPoints(lots: readonly OpenLot[]): number {
  return sumBy(lots, (lot) => lot.remaining);
}

export function findOrder(state: RegisteredMember, orderId: string): OrderSummary | undefined {
  return state.orders.find((order) => order.orderId === orderId);
}

/** An order summary whose retention has run out is gone, whether or not an event has pruned it yet. */
export function findRetainedOrder(
  state: RegisteredMember,
  orderId: string,
  now: IsoInstant,
): OrderSummary | undefined {
  const order = findOrder(state, orderId);
  return order !== undefined && order.retainUntil > now ? order : undefined;
}

/** How long a purchased order's summary stays in state: the refund window, but never less than the tier window. */
export function orderRetentionDays(refundWindowDays: number): number {
  return Math.max(refundWindowDays, ORDER_RETENTION_DAYS_MIN);
}

export function compareLots(
  a: Pick<OpenLot, 'expiresAt' | 'lotId'>,
  b: Pick<OpenLot, 'expiresAt' | 'lotId'>,
): number {
  if (a.expiresAt !== b.expiresAt) return a.expiresAt < b.expiresAt ? -1 : 1;
  if (a.lotId !== b.lotId) return a.lotId < b.lotId ? -1 : 1;
  return 0;
}

/**
 * DESIGN.md invariant 4 and the shape rules every state must satisfy; evolve runs it after every event,
 * so it is one pass over the state with no allocation. Uniqueness of lot and order ids is kept by
 * construction (insertLot and upsertOrder assert it where ids enter). A failure is a bug.
 */
// Local predicates: the invariant check runs over every lot and order after every event, so it
// avoids cross-module calls and message building in its loops.
function isPositive(n: number): boolean {
  return Number.isSafeInteger(n) && n > 0;
}

function isNonNegative(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0;
}

export function assertMemberInvariants(state: MemberState): void {
  if (!state.registered) return;
  assertPoints(state.balance, 'balance');
  if (state.balance > BALANCE_POINTS_MAX) fail(`balance ${state.balance} exceeds BALANCE_POINTS_MAX`);

  let lotsTotal = 0;
  let previous: OpenLot | undefined;
  for (const lot of state.lots) {
    if (!isPositive(lot.points) || !isPositive(lot.remaining)) fail(`lot ${lot.lotId} has a bad point count`);
    if (lot.remaining > lot.points) fail(`lot ${lot.lotId} has more remaining than it was credited`);
    if (previous !== undefined && compareLots(previous, lot) >= 0)
      fail('open lots are not in consumption order');
    lotsTotal += lot.remaining;
    previous = lot;
  }
  assertPoints(lotsTotal, 'open lots total');
  if (state.balance >= 0 && lotsTotal !== state.balance) {
    fail(`open lots hold ${lotsTotal} points but the balance is ${state.balance}`);
  }
  if (state.balance < 0 && state.lots.length > 0)
    fail(`balance ${state.balance} is in debt but lots are open`);

  if (state.holds.length > HOLDS_ACTIVE_MAX) fail(`${state.holds.length} holds exceed HOLDS_ACTIVE_MAX`);
  for (const hold of state.holds)
    if (!isPositive(hold.points)) fail(`hold ${hold.holdId} has a bad point count`);

  for (const order of state.orders) {
    if (
      !isNonNegative(order.redeemedPoints) ||
      !isNonNegative(order.pointsReversed) ||
      !isNonNegative(order.pointsRestored) ||
      !isNonNegative(order.refundedFen)
    ) {
      fail(`order ${order.orderId} has a bad counter`);
    }
    if (order.pointsRestored > order.redeemedPoints)
      fail(`order ${order.orderId} restored more than redeemed`);
    if ((order.redeemedPoints === 0) !== (order.redeemedLotExpiresAtMax === null)) {
      fail(`order ${order.orderId}: redeemedLotExpiresAtMax must be set iff points were redeemed`);
    }
    const purchase = order.purchase;
    if (purchase === null) {
      if (order.refundedFen !== 0 || order.pointsReversed !== 0 || order.pointsRestored !== 0) {
        fail(`order ${order.orderId} was refunded without a purchase`);
      }
      if (order.refundIds.length !== 0) fail(`order ${order.orderId} has refunds without a purchase`);
    } else {
      if (
        !isNonNegative(purchase.totalFen) ||
        !isNonNegative(purchase.eligibleFen) ||
        !isNonNegative(purchase.pointsEarned)
      ) {
        fail(`order ${order.orderId} has a bad purchase amount`);
      }
      if (purchase.eligibleFen > purchase.totalFen) fail(`order ${order.orderId}: eligible exceeds total`);
      if (order.refundedFen > purchase.totalFen) fail(`order ${order.orderId}: refunded exceeds total`);
      if (order.pointsReversed > purchase.pointsEarned)
        fail(`order ${order.orderId}: reversed exceeds earned`);
    }
  }
}
