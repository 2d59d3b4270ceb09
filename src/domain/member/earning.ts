/**
 * Earning: a purchase's eligible amount (lines outside excludedCategories, less what insurance paid)
 * times pointsPerYuan times the tier multiplier, floored once per order. The lot's expiry runs from the
 * ledger's recording time (ctx.now), not the POS's occurredAt, so an offline upload cannot backdate it.
 */
import { FEN_PER_YUAN, OCCURRED_AT_FUTURE_SKEW_SECONDS_MAX, PERMILLE } from '../limits.ts';
import type { Decision } from '../event.ts';
import { domainError, invalidField } from '../errors.ts';
import { addPoints, assertFen, mulDivFloor, sumBy } from '../points.ts';
import type { Programme } from '../programme.ts';
import { lotExpiresAt } from '../programme.ts';
import { addSecondsIso, normalizeIsoInstant } from '../time.ts';
import { parseWith } from '../validation.ts';
import type { RecordPurchase, PurchaseLine } from './commands.ts';
import type { MemberContext } from './context.ts';
import type { MemberEvent, PurchaseRecorded } from './events.ts';
import { balanceLimitExceeded, isLotOpen, lotCredit, splitCredit } from './lots.ts';
import { recordPurchaseSchema } from './schemas.ts';
import type { RegisteredMember } from './state.ts';
import { findRetainedOrder } from './state.ts';
import { tierBeforePurchase, tierChangeAfterPurchase } from './tiers.ts';

/** T: the sum of all lines' amountFen (what a refund is measured against). */
export function totalFenOf(lines: readonly PurchaseLine[]): number {
  const totalFen = sumBy(lines, (line) => line.amountFen);
  assertFen(totalFen, 'totalFen');
  return totalFen;
}

export function eligibleFenOf(lines: readonly PurchaseLine[], programme: Programme): number {
  const excluded = new Set(programme.excludedCategories);
  const eligibleFen = sumBy(
    lines.filter((line) => !excluded.has(line.category)),
    (line) => line.amountFen - (line.insuranceFen ?? 0),
  );
  assertFen(eligibleFen, 'eligibleFen');
  return eligibleFen;
}

/** floor(eligibleFen x pointsPerYuan x multiplierPermille / 100000), exact. */
export function pointsForEligible(
  eligibleFen: number,
  pointsPerYuan: number,
  multiplierPermille: number,
): number {
  return mulDivFloor(eligibleFen, pointsPerYuan * multiplierPermille, FEN_PER_YUAN * PERMILLE);
}

export function decideRecordPurchase(
  data: RecordPurchase['data'],
  state: RegisteredMember,
  ctx: MemberContext,
): Decision<MemberEvent> {
  const parsed = parseWith(recordPurchaseSchema, data);
  if (!parsed.ok) return parsed;
  const { now, tenant } = ctx;
  const programme = tenant.programme;

  let occurredAt: string | undefined;
  if (data.occurredAt !== undefined) {
    occurredAt = normalizeIsoInstant(data.occurredAt) ?? undefined;
    if (occurredAt === undefined || occurredAt > addSecondsIso(now, OCCURRED_AT_FUTURE_SKEW_SECONDS_MAX)) {
      return {
        ok: false,
        error: invalidField(
          'occurredAt',
          `must not be more than ${OCCURRED_AT_FUTURE_SKEW_SECONDS_MAX} seconds after the ledger's time ${now}`,
        ),
      };
    }
  }
  if (findRetainedOrder(state, data.orderId, now)?.purchase != null) {
    return {
      ok: false,
      error: domainError('order-already-recorded', `order ${data.orderId} is already recorded`, {
        orderId: data.orderId,
      }),
    };
  }
  if (isLotOpen(state.lots, data.lotId)) {
    return { ok: false, error: invalidField('lotId', `lot ${data.lotId} already exists`) };
  }

  const totalFen = totalFenOf(data.lines);
  const eligibleFen = eligibleFenOf(data.lines, programme);
  const tier = tierBeforePurchase(state, programme, now);
  const points = pointsForEligible(eligibleFen, programme.pointsPerYuan, tier.multiplierPermille);
  const balanceAfter = addPoints(state.balance, points);
  const overLimit = balanceLimitExceeded(balanceAfter, 'lines');
  if (overLimit !== null) return { ok: false, error: overLimit };
  const split = splitCredit(state.balance, points);
  const categories = [...new Set(data.lines.map((line) => line.category))].sort();

  const recorded: PurchaseRecorded = {
    type: 'PurchaseRecorded',
    data: {
      orderId: data.orderId,
      storeId: data.storeId,
      ...(occurredAt === undefined ? {} : { occurredAt }),
      totalFen,
      eligibleFen,
      categories,
      tier: tier.name,
      multiplierPermille: tier.multiplierPermille,
      pointsPerYuan: programme.pointsPerYuan,
      programmeVersion: programme.version,
      refundWindowDays: programme.refundWindowDays,
      points,
      lot: lotCredit(data.lotId, points, lotExpiresAt(now, programme, tenant.timeZone)),
      debtRepaid: split.debtRepaid,
      balanceAfter,
      at: now,
    },
  };
  const tierChanged = tierChangeAfterPurchase(state, eligibleFen, programme, now);
  return { ok: true, events: tierChanged === null ? [recorded] : [recorded, tierChanged] };
}
