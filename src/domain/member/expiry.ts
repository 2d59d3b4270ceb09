/**
 * Expiry: lots due by `asOf` lose their remaining points, soonest first. Points promised to an active
 * hold are not expired from under a checkout: at most balance - held(now) points go, and what is left
 * stays due for a later run. Running it again for the same asOf finds nothing and emits nothing.
 */
import type { Decision } from '../event.ts';
import { invalidField } from '../errors.ts';
import { LOTS_EXPIRED_PER_EVENT_MAX } from '../limits.ts';
import { maxPoints, minPoints, subtractPoints, sumBy } from '../points.ts';
import { normalizeIsoInstant } from '../time.ts';
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

  let allowed = maxPoints(0, state.balance - heldPoints(state, now));
  const expiring: LotDebit[] = [];
  // Lots are in consumption order, so the due ones come first among equals of expiry.
  for (const lot of state.lots) {
    if (allowed === 0 || lot.expiresAt > asOf) break;
    const points = minPoints(lot.remaining, allowed);
    expiring.push({ lotId: lot.lotId, points });
    allowed -= points;
  }

  const events: LotsExpired[] = [];
  let balance = state.balance;
  for (let start = 0; start < expiring.length; start += LOTS_EXPIRED_PER_EVENT_MAX) {
    const lots = expiring.slice(start, start + LOTS_EXPIRED_PER_EVENT_MAX);
    const points = sumBy(lots, (lot) => lot.points);
    balance = subtractPoints(balance, points);
    events.push({ type: 'LotsExpired', data: { asOf, lots, points, balanceAfter: balance, at: now } });
  }
  return { ok: true, events };
}
