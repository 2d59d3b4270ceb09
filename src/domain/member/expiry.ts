/**
 * Expiry: lots due by `asOf` lose their remaining points, soonest first. Points promised to an active
 * hold are not expired from under a checkout. A capture takes the soonest lots first, so the points a hold
 * counts on are those of the first lots in consumption order: they stay until the hold ends (captured,
 * they are spent; released or lapsed, a later run expires what is due), and only due points beyond them
 * go. The outcome does not depend on whether the capture or the run comes first. Running it again for
 * the same asOf finds nothing and emits nothing.
 */
import type { Decision } from '../event.ts';
import { invalidField } from '../errors.ts';
import { LOTS_EXPIRED_PER_EVENT_MAX } from '../limits.ts';
import { maxPoints, minPoints, subtractPoints, sumBy } from '../points.ts';
import { normalizeIsoInstant, type IsoInstant } from '../time.ts';
import { parseWith } from '../validation.ts';
import type { ExpireLots } from './commands.ts';
import type { MemberContext } from './context.ts';
import type { LotDebit, LotsExpired, MemberEvent } from './events.ts';
import { expireLotsSchema } from './schemas.ts';
import type { RegisteredMember } from './state.ts';
import { heldPoints } from './state.ts';

export function decideExpireLots(
  data: ExpireLots['data'],
  state: RegisteredMember,
  ctx: MemberContext,
): Decision<MemberEvent> {
  const parsed = parseWith(expireLotsSchema, data);
  if (!parsed.ok) return parsed;
  const { now } = ctx;
  const asOf = normalizeIsoInstant(data.asOf);
  if (asOf === null || asOf > now) {
    return { ok: false, error: invalidField('asOf', `must not be after the ledger's time ${now}`) };
  }

  return { ok: true, events: dueLotExpiries(state, asOf, now) };
}

/**
 * The LotsExpired events that take the lots due by `asOf` at `now`, except the points live holds count on
 * (none when nothing is due). ExpireLots records them for its asOf; every other command records them for
 * its own time before it decides (decider.ts, housekeeping, which the member view also applies), so
 * nothing past its expiry is spent or shown as spendable, whether or not `ledger expire` has run.
 */
export function dueLotExpiries(state: RegisteredMember, asOf: IsoInstant, now: IsoInstant): LotsExpired[] {
  // Lots are in consumption order (soonest expiry first), so the due ones come first, and so do the ones
  // a capture of the held points would take.
  let reserved = maxPoints(0, heldPoints(state, now));
  const expiring: LotDebit[] = [];
  for (const lot of state.lots) {
    if (lot.expiresAt > asOf) break;
    const covered = minPoints(lot.remaining, reserved);
    reserved = subtractPoints(reserved, covered);
    const points = subtractPoints(lot.remaining, covered);
    if (points > 0) expiring.push({ lotId: lot.lotId, points });
  }

  const events: LotsExpired[] = [];
  let balance = state.balance;
  for (let start = 0; start < expiring.length; start += LOTS_EXPIRED_PER_EVENT_MAX) {
    const lots = expiring.slice(start, start + LOTS_EXPIRED_PER_EVENT_MAX);
    const points = sumBy(lots, (lot) => lot.points);
    balance = subtractPoints(balance, points);
    events.push({ type: 'LotsExpired', data: { asOf, lots, points, balanceAfter: balance, at: now } });
  }
  return events;
}
