/**
 * Lots: where points sit and when they expire. Every debit (redemption, capture, debit adjustment,
 * reversal, expiry) consumes the soonest-expiring lot first, then the lowest lotId, so the points a
 * member keeps are the ones that last longest. Every credit first repays debt; only the rest makes an
 * open lot.
 */
import { assert, fail } from '../assert.ts';
import { invalidField, type DomainErrorOf } from '../errors.ts';
import { BALANCE_POINTS_MAX } from '../limits.ts';
import { assertNonNegativePoints, assertPositivePoints, debtOf, minPoints, sumBy } from '../points.ts';
import type { IsoInstant } from '../time.ts';
import type { LotCredit, LotDebit } from './events.ts';
import type { OpenLot } from './state.ts';
import { compareLots } from './state.ts';

/** Takes up to `points` from the lots in consumption order; the debits may sum to less. */
export function planConsumptionUpTo(lots: readonly OpenLot[], points: number): LotDebit[] {
  assertNonNegativePoints(points);
  const debits: LotDebit[] = [];
  let left = points;
  for (const lot of lots) {
    if (left === 0) break;
    const taken = minPoints(lot.remaining, left);
    debits.push({ lotId: lot.lotId, points: taken });
    left -= taken;
  }
  assert(sumBy(debits, (debit) => debit.points) === points - left, 'consumption plan does not add up');
  return debits;
}

/** Takes exactly `points`; the caller has checked that the lots cover them. */
export function planConsumption(lots: readonly OpenLot[], points: number): LotDebit[] {
  const debits = planConsumptionUpTo(lots, points);
  if (sumBy(debits, (debit) => debit.points) !== points) fail(`lots do not cover a debit of ${points}`);
  return debits;
}

/** Applies debits to the lots; a lot left empty is closed. Every debit must name an open lot with enough. */
export function applyLotDebits(lots: readonly OpenLot[], debits: readonly LotDebit[]): OpenLot[] {
  const taken = new Map<string, number>();
  for (const debit of debits) {
    assertPositivePoints(debit.points, 'debit.points');
    if (taken.has(debit.lotId)) fail(`lot ${debit.lotId} is debited twice in one event`);
    taken.set(debit.lotId, debit.points);
  }
  const next: OpenLot[] = [];
  for (const lot of lots) {
    const points = taken.get(lot.lotId);
    if (points === undefined) {
      next.push(lot);
      continue;
    }
    taken.delete(lot.lotId);
    if (!(points <= lot.remaining))
      fail(`lot ${lot.lotId} has ${lot.remaining} points, debit wants ${points}`);
    if (points < lot.remaining) next.push({ ...lot, remaining: lot.remaining - points });
  }
  if (taken.size !== 0) fail(`debit names lots that are not open: ${[...taken.keys()].join(', ')}`);
  return next;
}

/** The latest expiry among the lots debited (read before they are applied). */
export function latestExpiryOf(lots: readonly OpenLot[], debits: readonly LotDebit[]): IsoInstant | null {
  let latest: IsoInstant | null = null;
  for (const debit of debits) {
    const lot = lots.find((open) => open.lotId === debit.lotId);
    if (lot === undefined) fail(`debit names lot ${debit.lotId} which is not open`);
    if (latest === null || lot.expiresAt > latest) latest = lot.expiresAt;
  }
  return latest;
}

export function insertLot(lots: readonly OpenLot[], lot: OpenLot): OpenLot[] {
  if (lots.some((open) => open.lotId === lot.lotId)) fail(`lot ${lot.lotId} is already open`);
  const index = lots.findIndex((open) => compareLots(lot, open) < 0);
  return index === -1 ? [...lots, lot] : [...lots.slice(0, index), lot, ...lots.slice(index)];
}

export function isLotOpen(lots: readonly OpenLot[], lotId: string): boolean {
  return lots.some((lot) => lot.lotId === lotId);
}

export type CreditSplit = Readonly<{ debtRepaid: number; lotRemaining: number }>;

/**
 * A credit (purchase, credit adjustment, refund's restore) that would take the balance past
 * BALANCE_POINTS_MAX is refused, naming the request's field that asked for it; null when it fits.
 */
export function balanceLimitExceeded(
  balanceAfter: number,
  field: string,
): DomainErrorOf<'validation-failed'> | null {
  return balanceAfter > BALANCE_POINTS_MAX
    ? invalidField(field, `the balance would exceed ${BALANCE_POINTS_MAX} points`)
    : null;
}

/** How a credit of `points` divides between repaying the debt of `balance` and a new lot. */
export function splitCredit(balance: number, points: number): CreditSplit {
  assertNonNegativePoints(points);
  const debtRepaid = minPoints(points, debtOf(balance));
  return { debtRepaid, lotRemaining: points - debtRepaid };
}

/** The lot a credit makes, or null for a zero credit. */
export function lotCredit(lotId: string, points: number, expiresAt: IsoInstant): LotCredit | null {
  assertNonNegativePoints(points);
  return points === 0 ? null : { lotId, points, expiresAt };
}
