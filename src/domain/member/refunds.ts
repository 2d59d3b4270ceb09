/**
 * Refunds (CONTRACT.md "Default programme"): for an order of total T that earned P points and had R
 * points redeemed against it, after refunds totalling F the cumulative reversal is floor(P x F / T) and
 * the cumulative restore floor(R x F / T); each refund applies the difference, so repeated partial
 * refunds never drift from a single full one.
 *
 * Order of operations within one refund: the reversal consumes lots soonest-expiring first and, past
 * the lots, becomes debt (clawback 'debt'); then the restore is credited like any credit, repaying that
 * debt first and putting the rest in a lot that expires with the latest lot the redemptions used. With
 * clawback 'cap-at-zero' the reversal takes what the lots and this refund's own restore can cover and
 * waives the rest (waivedPoints), so a refund never leaves new debt but never gives away the restore.
 */
import { assert } from '../assert.ts';
import type { Decision } from '../event.ts';
import { domainError, invalidField } from '../errors.ts';
import { addPoints, maxPoints, mulDivFloor, subtractPoints, sumBy } from '../points.ts';
import type { Clawback } from '../programme.ts';
import { addDaysIso } from '../time.ts';
import { parseWith } from '../validation.ts';
import type { RefundPurchase } from './commands.ts';
import type { MemberContext } from './context.ts';
import type { MemberEvent, PurchaseRefunded } from './events.ts';
import { balanceLimitExceeded, isLotOpen, lotCredit, planConsumptionUpTo, splitCredit } from './lots.ts';
import { refundPurchaseSchema } from './schemas.ts';
import type { OpenLot, RegisteredMember } from './state.ts';
import { findRetainedOrder } from './state.ts';

export type ReversalPlan = Readonly<{
  pointsReversed: number;
  reversedConsumed: PurchaseRefunded['data']['reversedConsumed'];
  debtIncurred: number;
  waivedPoints: number;
}>;

/** How a reversal of `dueReversal` points is taken, given the lots and the restore that follows it. */
export function planReversal(
  lots: readonly OpenLot[],
  dueReversal: number,
  dueRestore: number,
  clawback: Clawback,
): ReversalPlan {
  const reversedConsumed = planConsumptionUpTo(lots, dueReversal);
  const uncovered = dueReversal - sumBy(reversedConsumed, (debit) => debit.points);
  const waivedPoints = clawback === 'cap-at-zero' ? maxPoints(0, uncovered - dueRestore) : 0;
  return {
    pointsReversed: dueReversal - waivedPoints,
    reversedConsumed,
    debtIncurred: uncovered - waivedPoints,
    waivedPoints,
  };
}

export function decideRefundPurchase(
  data: RefundPurchase['data'],
  state: RegisteredMember,
  ctx: MemberContext,
): Decision<MemberEvent> {
  const parsed = parseWith(refundPurchaseSchema, data);
  if (!parsed.ok) return parsed;
  const { now, tenant } = ctx;

  if (state.orders.some((order) => order.retainUntil > now && order.refundIds.includes(data.refundId))) {
    return {
      ok: false,
      error: domainError('refund-already-recorded', `refund ${data.refundId} is already recorded`, {
        refundId: data.refundId,
      }),
    };
  }
  const order = findRetainedOrder(state, data.orderId, now);
  const purchase = order?.purchase;
  if (order === undefined || purchase == null) {
    return {
      ok: false,
      error: domainError('order-not-found', `order ${data.orderId} has no recorded purchase`, {
        orderId: data.orderId,
      }),
    };
  }
  // The window in force when the purchase was recorded governs its refunds.
  if (now >= addDaysIso(purchase.at, purchase.refundWindowDays)) {
    return {
      ok: false,
      error: domainError(
        'order-not-found',
        `order ${data.orderId} is past its refund window of ${purchase.refundWindowDays} days`,
        { orderId: data.orderId },
      ),
    };
  }
  const refundedFenTotal = addPoints(order.refundedFen, data.amountFen);
  if (refundedFenTotal > purchase.totalFen) {
    return {
      ok: false,
      error: domainError(
        'refund-exceeds-order',
        `refunds would total ${refundedFenTotal} fen; order ${data.orderId} was ${purchase.totalFen} fen, ${purchase.totalFen - order.refundedFen} fen still refundable`,
        {
          orderId: data.orderId,
          totalFen: purchase.totalFen,
          refundableFen: purchase.totalFen - order.refundedFen,
        },
      ),
    };
  }

  // refundedFenTotal >= 1 and <= T, so T >= 1 here.
  const dueReversal = subtractPoints(
    mulDivFloor(purchase.pointsEarned, refundedFenTotal, purchase.totalFen),
    order.pointsReversed,
  );
  const dueRestore = subtractPoints(
    mulDivFloor(order.redeemedPoints, refundedFenTotal, purchase.totalFen),
    order.pointsRestored,
  );
  assert(dueReversal >= 0 && dueRestore >= 0, `refund ${data.refundId}: cumulative amounts went backwards`);

  const reversal = planReversal(state.lots, dueReversal, dueRestore, tenant.programme.clawback);
  const balanceReversed = subtractPoints(state.balance, reversal.pointsReversed);
  const restoredLotExpiresAt = order.redeemedLotExpiresAtMax;
  assert(dueRestore === 0 || restoredLotExpiresAt !== null, 'points to restore but no redeemed lot expiry');
  if (dueRestore > 0 && isLotOpen(state.lots, data.lotId)) {
    return { ok: false, error: invalidField('lotId', `lot ${data.lotId} already exists`) };
  }
  const balanceAfter = addPoints(balanceReversed, dueRestore);
  const overLimit = balanceLimitExceeded(balanceAfter, 'amountFen');
  if (overLimit !== null) return { ok: false, error: overLimit };
  const split = splitCredit(balanceReversed, dueRestore);
  return {
    ok: true,
    events: [
      {
        type: 'PurchaseRefunded',
        data: {
          refundId: data.refundId,
          orderId: data.orderId,
          storeId: data.storeId,
          amountFen: data.amountFen,
          refundedFenTotal,
          pointsReversed: reversal.pointsReversed,
          reversedConsumed: reversal.reversedConsumed,
          debtIncurred: reversal.debtIncurred,
          waivedPoints: reversal.waivedPoints,
          pointsRestored: dueRestore,
          restoredLot:
            restoredLotExpiresAt === null ? null : lotCredit(data.lotId, dueRestore, restoredLotExpiresAt),
          debtRepaid: split.debtRepaid,
          balanceAfter,
          at: now,
        },
      },
    ],
  };
}
