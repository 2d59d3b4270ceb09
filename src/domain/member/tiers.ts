/**
 * Tiers: by eligible spend over the last TIER_WINDOW_DAYS days ending now (by the ledger's recording
 * time, so a late upload cannot backdate spend), net of refunds, evaluated after each purchase. The
 * purchase itself earns at the multiplier of the tier held before it.
 */
import { TIER_WINDOW_DAYS } from '../limits.ts';
import { addPoints, mulDivFloor } from '../points.ts';
import type { Programme, Tier } from '../programme.ts';
import { tierFor, tierNamed } from '../programme.ts';
import type { IsoInstant } from '../time.ts';
import { addDaysIso } from '../time.ts';
import type { TierChanged } from './events.ts';
import type { RegisteredMember } from './state.ts';

/**
 * Eligible spend of purchases recorded after now - 365 days, each less its refunded share
 * floor(eligible x F / T). Order summaries are retained at least as long as the window, so the state
 * holds every purchase that counts.
 */
export function tierSpendFen(state: RegisteredMember, now: IsoInstant): number {
  const windowStart = addDaysIso(now, -TIER_WINDOW_DAYS);
  let spendFen = 0;
  for (const order of state.orders) {
    const purchase = order.purchase;
    if (purchase === null || purchase.at <= windowStart) continue;
    const refundedEligibleFen =
      purchase.totalFen === 0 ? 0 : mulDivFloor(purchase.eligibleFen, order.refundedFen, purchase.totalFen);
    spendFen = addPoints(spendFen, purchase.eligibleFen - refundedEligibleFen);
  }
  return spendFen;
}

/**
 * The tier whose multiplier a purchase earns at: the member's current tier. If a programme change has
 * removed that tier's name, the tier the member's current spend reaches stands in for it.
 */
export function tierBeforePurchase(state: RegisteredMember, programme: Programme, now: IsoInstant): Tier {
  return tierNamed(state.tier, programme) ?? tierFor(tierSpendFen(state, now), programme);
}

/** The TierChanged a purchase of `eligibleFen` leads to, if the tier moves (up or down). */
export function tierChangeAfterPurchase(
  state: RegisteredMember,
  eligibleFen: number,
  programme: Programme,
  now: IsoInstant,
): TierChanged | null {
  const spendFen = addPoints(tierSpendFen(state, now), eligibleFen);
  const to = tierFor(spendFen, programme).name;
  if (to === state.tier) return null;
  return { type: 'TierChanged', data: { from: state.tier, to, spendFen, at: now } };
}
