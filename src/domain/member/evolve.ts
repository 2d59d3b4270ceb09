/**
 * evolve: applies one event to the state. It is total over valid events and is what replay and audit
 * run, so it recomputes every balance and checks it against the event (TigerBeetle's paired
 * assertions: decide asserted before writing, evolve asserts after reading). A failed assertion means
 * the stream and the rules disagree, which is a bug to stop at, never to paper over.
 */
import { assert, assertNever, fail } from '../assert.ts';
import { ADJUSTMENT_IDS_RETENTION_DAYS, ORDER_RETENTION_DAYS_MIN } from '../limits.ts';
import {
  addPoints,
  assertNonNegativePoints,
  assertPositivePoints,
  mulDivFloor,
  subtractPoints,
  sumBy,
} from '../points.ts';
import type { IsoInstant } from '../time.ts';
import { addDaysIso, isCanonicalIsoInstant, maxIso } from '../time.ts';
import type {
  HoldCaptured,
  LotCredit,
  LotDebit,
  LotsExpired,
  MemberEvent,
  PointsAdjusted,
  PointsRedeemed,
  PurchaseRecorded,
  PurchaseRefunded,
} from './events.ts';
import { applyLotDebits, insertLot, latestExpiryOf, splitCredit } from './lots.ts';
import { isNormalizedPhone } from './phone.ts';
import type { MemberState, OrderSummary, RegisteredMember } from './state.ts';
import { assertMemberInvariants, findOrder, orderRetentionDays } from './state.ts';

export function evolveMember(state: MemberState, event: MemberEvent): MemberState {
  if (!isCanonicalIsoInstant(event.data.at))
    fail(`event ${event.type} has a non-canonical at: ${event.data.at}`);
  if (event.type === 'MemberRegistered') {
    assert(!state.registered, 'MemberRegistered on a registered member');
    const data = event.data;
    assert(isNormalizedPhone(data.phone), 'MemberRegistered carries a phone that is not normalised');
    const next: MemberState = {
      registered: true,
      memberId: data.memberId,
      phone: data.phone,
      name: data.name ?? null,
      tier: data.tier,
      balance: 0,
      lots: [],
      holds: [],
      orders: [],
      adjustments: [],
    };
    assertMemberInvariants(next);
    return next;
  }
  if (!state.registered) fail(`${event.type} on an unregistered member`);
  const next = apply(prune(state, event.data.at), event);
  assertMemberInvariants(next);
  return next;
}

/**
 * Drops what no later decision may need, measured by the event's own `at` so replay prunes exactly as
 * the live stream did: order summaries past their retention and adjustmentIds past theirs.
 */
function prune(state: RegisteredMember, at: IsoInstant): RegisteredMember {
  // Most events prune nothing: check before allocating, and compute the adjustment cutoff only when there
  // are adjustments to compare with it.
  const ordersExpire = state.orders.some((order) => !(order.retainUntil > at));
  const adjustmentCutoff =
    state.adjustments.length === 0 ? null : addDaysIso(at, -ADJUSTMENT_IDS_RETENTION_DAYS);
  const adjustmentsExpire =
    adjustmentCutoff !== null && state.adjustments.some((adjustment) => !(adjustment.at > adjustmentCutoff));
  if (!ordersExpire && !adjustmentsExpire) return state;
  const orders = ordersExpire ? state.orders.filter((order) => order.retainUntil > at) : state.orders;
  const adjustments = adjustmentsExpire
    ? state.adjustments.filter((adjustment) => adjustment.at > adjustmentCutoff!)
    : state.adjustments;
  return { ...state, orders, adjustments };
}

function apply(
  state: RegisteredMember,
  event: Exclude<MemberEvent, { type: 'MemberRegistered' }>,
): RegisteredMember {
  switch (event.type) {
    case 'MemberProfileUpdated': {
      const { name, phone } = event.data;
      assert(phone === undefined || isNormalizedPhone(phone), 'MemberProfileUpdated phone is not normalised');
      return { ...state, name: name ?? state.name, phone: phone ?? state.phone };
    }
    case 'PurchaseRecorded':
      return applyPurchase(state, event);
    case 'TierChanged':
      if (event.data.from !== state.tier)
        fail(`TierChanged from ${event.data.from} but tier is ${state.tier}`);
      assert(event.data.from !== event.data.to, 'TierChanged to the same tier');
      return { ...state, tier: event.data.to };
    case 'PointsHeld': {
      const data = event.data;
      assertPositivePoints(data.points, 'hold points');
      if (!(data.expiresAt > data.at)) fail(`hold ${data.holdId} expires before it is placed`);
      if (state.holds.some((hold) => hold.holdId === data.holdId)) fail(`hold ${data.holdId} placed twice`);
      if (state.orders.some((order) => order.holdIds.includes(data.holdId)))
        fail(`hold ${data.holdId} was placed before`);
      const hold = {
        holdId: data.holdId,
        orderId: data.orderId,
        storeId: data.storeId,
        points: data.points,
        expiresAt: data.expiresAt,
        at: data.at,
      };
      const order = orderOrNew(state, data.orderId, data.at);
      return {
        ...state,
        holds: [...state.holds, hold],
        orders: upsertOrder(state.orders, { ...order, holdIds: [...order.holdIds, data.holdId] }),
      };
    }
    case 'HoldCaptured':
      return applyCapture(state, event);
    case 'HoldReleased': {
      const data = event.data;
      const hold = state.holds.find((held) => held.holdId === data.holdId);
      if (hold === undefined) fail(`HoldReleased for hold ${data.holdId} which is not in state`);
      if (hold.points !== data.points)
        fail(`HoldReleased ${data.points} points but hold ${hold.holdId} has ${hold.points}`);
      return { ...state, holds: state.holds.filter((held) => held.holdId !== data.holdId) };
    }
    case 'PointsRedeemed':
      return applyRedemption(state, event);
    case 'PurchaseRefunded':
      return applyRefund(state, event);
    case 'PointsAdjusted':
      return applyAdjustment(state, event);
    case 'LotsExpired':
      return applyExpiry(state, event);
    default:
      return assertNever(event, 'member event');
  }
}

// ---- points movements ---------------------------------------------------------------------------

/** A credit of `points`: repays debt first, then opens `lot` with the rest. */
function applyCredit(
  state: RegisteredMember,
  points: number,
  lot: LotCredit | null,
  debtRepaid: number,
  at: IsoInstant,
): RegisteredMember {
  assertNonNegativePoints(points, 'credit');
  if (points === 0) {
    assert(lot === null && debtRepaid === 0, 'a zero credit makes no lot and repays nothing');
    return state;
  }
  if (!(lot !== null && lot.points === points)) fail(`a credit of ${points} must make a lot of ${points}`);
  const split = splitCredit(state.balance, points);
  if (debtRepaid !== split.debtRepaid) fail(`debtRepaid ${debtRepaid}, expected ${split.debtRepaid}`);
  const lots =
    split.lotRemaining === 0
      ? state.lots
      : insertLot(state.lots, {
          lotId: lot.lotId,
          points,
          remaining: split.lotRemaining,
          expiresAt: lot.expiresAt,
          earnedAt: at,
        });
  return { ...state, balance: addPoints(state.balance, points), lots };
}

/** A debit that lots must cover in full (all but reversals). */
function applyDebit(
  state: RegisteredMember,
  points: number,
  consumed: readonly LotDebit[],
): RegisteredMember {
  assertPositivePoints(points, 'debit');
  if (sumBy(consumed, (debit) => debit.points) !== points) fail(`consumed lots do not add up to ${points}`);
  if (!(state.balance >= points)) fail(`debit of ${points} exceeds balance ${state.balance}`);
  return {
    ...state,
    balance: subtractPoints(state.balance, points),
    lots: applyLotDebits(state.lots, consumed),
  };
}

function assertBalanceAfter(state: RegisteredMember, balanceAfter: number, type: MemberEvent['type']): void {
  if (state.balance !== balanceAfter)
    fail(`${type}: recomputed balance ${state.balance} != balanceAfter ${balanceAfter}`);
}

// ---- orders -------------------------------------------------------------------------------------

/** The order's summary, or a new one kept ORDER_RETENTION_DAYS_MIN from `at` (a hold or redemption first). */
function orderOrNew(state: RegisteredMember, orderId: string, at: IsoInstant): OrderSummary {
  return (
    findOrder(state, orderId) ?? {
      orderId,
      purchase: null,
      redeemedPoints: 0,
      redeemedLotExpiresAtMax: null,
      refundedFen: 0,
      pointsReversed: 0,
      pointsRestored: 0,
      refundIds: [],
      holdIds: [],
      retainUntil: addDaysIso(at, ORDER_RETENTION_DAYS_MIN),
    }
  );
}

function upsertOrder(orders: readonly OrderSummary[], order: OrderSummary): OrderSummary[] {
  const index = orders.findIndex((existing) => existing.orderId === order.orderId);
  if (index === -1) return [...orders, order];
  const next = [...orders];
  next[index] = order;
  return next;
}

/** R grows by a redemption or capture naming the order; restored points will expire no sooner than these lots. */
function withRedemption(
  state: RegisteredMember,
  orderId: string,
  points: number,
  consumed: readonly LotDebit[],
  at: IsoInstant,
): OrderSummary[] {
  const order = orderOrNew(state, orderId, at);
  const latest = latestExpiryOf(state.lots, consumed);
  assert(latest !== null, 'a redemption consumed no lots');
  return upsertOrder(state.orders, {
    ...order,
    redeemedPoints: addPoints(order.redeemedPoints, points),
    redeemedLotExpiresAtMax:
      order.redeemedLotExpiresAtMax === null ? latest : maxIso(order.redeemedLotExpiresAtMax, latest),
  });
}

// ---- per event ----------------------------------------------------------------------------------

function applyPurchase(state: RegisteredMember, event: PurchaseRecorded): RegisteredMember {
  const data = event.data;
  if (!(data.eligibleFen <= data.totalFen)) fail(`order ${data.orderId}: eligible exceeds total`);
  if ((data.points === 0) !== (data.lot === null))
    fail(`order ${data.orderId}: a lot iff points were earned`);
  const existing = findOrder(state, data.orderId);
  if (existing?.purchase != null) fail(`order ${data.orderId} recorded twice`);
  const credited = applyCredit(state, data.points, data.lot, data.debtRepaid, data.at);
  assertBalanceAfter(credited, data.balanceAfter, event.type);
  const order = orderOrNew(state, data.orderId, data.at);
  const retainUntil = addDaysIso(data.at, orderRetentionDays(data.refundWindowDays));
  return {
    ...credited,
    orders: upsertOrder(state.orders, {
      ...order,
      purchase: {
        storeId: data.storeId,
        totalFen: data.totalFen,
        eligibleFen: data.eligibleFen,
        pointsEarned: data.points,
        refundWindowDays: data.refundWindowDays,
        at: data.at,
      },
      retainUntil: maxIso(order.retainUntil, retainUntil),
    }),
  };
}

function applyCapture(state: RegisteredMember, event: HoldCaptured): RegisteredMember {
  const data = event.data;
  const hold = state.holds.find((held) => held.holdId === data.holdId);
  if (hold === undefined) fail(`HoldCaptured for hold ${data.holdId} which is not in state`);
  if (!(hold.orderId === data.orderId && hold.storeId === data.storeId))
    fail(`HoldCaptured ${hold.holdId} names another order`);
  assertNonNegativePoints(data.releasedPoints, 'releasedPoints');
  if (data.points + data.releasedPoints !== hold.points)
    fail(`capture of ${hold.holdId} does not add up to the hold`);
  const orders = withRedemption(state, data.orderId, data.points, data.consumed, data.at);
  const debited = applyDebit(state, data.points, data.consumed);
  assertBalanceAfter(debited, data.balanceAfter, event.type);
  return { ...debited, holds: state.holds.filter((held) => held.holdId !== data.holdId), orders };
}

function applyRedemption(state: RegisteredMember, event: PointsRedeemed): RegisteredMember {
  const data = event.data;
  const orders = withRedemption(state, data.orderId, data.points, data.consumed, data.at);
  const debited = applyDebit(state, data.points, data.consumed);
  assertBalanceAfter(debited, data.balanceAfter, event.type);
  return { ...debited, orders };
}

function applyRefund(state: RegisteredMember, event: PurchaseRefunded): RegisteredMember {
  const data = event.data;
  const order = findOrder(state, data.orderId);
  if (order?.purchase == null)
    fail(`refund ${data.refundId} of order ${data.orderId} which has no purchase in state`);
  const purchase = order.purchase;
  if (state.orders.some((known) => known.refundIds.includes(data.refundId)))
    fail(`refund ${data.refundId} recorded twice`);
  assertPositivePoints(data.amountFen, 'refund amountFen');
  const refundedFen = addPoints(order.refundedFen, data.amountFen);
  if (data.refundedFenTotal !== refundedFen)
    fail(`refund ${data.refundId}: refundedFenTotal does not add up`);
  if (!(refundedFen <= purchase.totalFen)) fail(`refund ${data.refundId} exceeds the order`);

  // The contract's formula, checked on replay: cumulative reversal floor(P x F / T), restore floor(R x F / T).
  const pointsReversedTotal = addPoints(
    addPoints(order.pointsReversed, data.pointsReversed),
    data.waivedPoints,
  );
  const pointsRestoredTotal = addPoints(order.pointsRestored, data.pointsRestored);
  if (pointsReversedTotal !== mulDivFloor(purchase.pointsEarned, refundedFen, purchase.totalFen))
    fail(`refund ${data.refundId}: cumulative reversal is not floor(P x F / T)`);
  if (pointsRestoredTotal !== mulDivFloor(order.redeemedPoints, refundedFen, purchase.totalFen))
    fail(`refund ${data.refundId}: cumulative restore is not floor(R x F / T)`);

  // Reversal: lots first, the rest is debt.
  assertNonNegativePoints(data.pointsReversed, 'pointsReversed');
  assertNonNegativePoints(data.debtIncurred, 'debtIncurred');
  assertNonNegativePoints(data.waivedPoints, 'waivedPoints');
  const covered = sumBy(data.reversedConsumed, (debit) => debit.points);
  if (covered + data.debtIncurred !== data.pointsReversed)
    fail(`refund ${data.refundId}: reversal does not add up`);
  const lots = applyLotDebits(state.lots, data.reversedConsumed);
  if (!(data.debtIncurred === 0 || lots.length === 0))
    fail(`refund ${data.refundId} made debt while lots were open`);
  const reversed: RegisteredMember = {
    ...state,
    balance: subtractPoints(state.balance, data.pointsReversed),
    lots,
  };

  // Restore: a credit like any other, expiring no sooner than the lots the redemption used.
  if (!(data.restoredLot === null || data.restoredLot.expiresAt === order.redeemedLotExpiresAtMax))
    fail(`refund ${data.refundId}: restored lot must expire with the latest lot redeemed`);
  const restored = applyCredit(reversed, data.pointsRestored, data.restoredLot, data.debtRepaid, data.at);
  assertBalanceAfter(restored, data.balanceAfter, event.type);

  return {
    ...restored,
    orders: upsertOrder(state.orders, {
      ...order,
      refundedFen,
      pointsReversed: pointsReversedTotal,
      pointsRestored: pointsRestoredTotal,
      refundIds: [...order.refundIds, data.refundId],
    }),
  };
}

function applyAdjustment(state: RegisteredMember, event: PointsAdjusted): RegisteredMember {
  const data = event.data;
  if (data.points === 0) fail(`adjustment ${data.adjustmentId} of zero points`);
  if (state.adjustments.some((known) => known.adjustmentId === data.adjustmentId))
    fail(`adjustment ${data.adjustmentId} recorded twice`);
  let adjusted: RegisteredMember;
  if (data.points > 0) {
    assert(data.consumed.length === 0, 'a credit adjustment consumes no lots');
    adjusted = applyCredit(state, data.points, data.lot, data.debtRepaid, data.at);
  } else {
    assert(data.lot === null && data.debtRepaid === 0, 'a debit adjustment makes no lot');
    adjusted = applyDebit(state, -data.points, data.consumed);
  }
  assertBalanceAfter(adjusted, data.balanceAfter, event.type);
  return {
    ...adjusted,
    adjustments: [...state.adjustments, { adjustmentId: data.adjustmentId, at: data.at }],
  };
}

function applyExpiry(state: RegisteredMember, event: LotsExpired): RegisteredMember {
  const data = event.data;
  assert(data.asOf <= data.at, 'lots expired as of a time after the recording time');
  for (const debit of data.lots) {
    const lot = state.lots.find((open) => open.lotId === debit.lotId);
    if (!(lot !== undefined && lot.expiresAt <= data.asOf))
      fail(`lot ${debit.lotId} is not due as of ${data.asOf}`);
  }
  const expired = applyDebit(state, data.points, data.lots);
  assertBalanceAfter(expired, data.balanceAfter, event.type);
  return expired;
}
