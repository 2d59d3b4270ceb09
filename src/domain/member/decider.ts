/**
 * The member decider (Emmett style): decideMember(command, state, ctx) -> events or an error value;
 * evolveMember(state, event) -> state; initialMemberState(). Each rule lives in its own file (earning,
 * tiers, holds, redemption, refunds, adjustments, expiry, lots); this file only routes and checks the
 * postconditions every decision must meet before its events may be written.
 */
import { assert, assertNever } from '../assert.ts';
import type { Decision } from '../event.ts';
import { domainError } from '../errors.ts';
import { isCanonicalIsoInstant, isValidTimeZone, type IsoInstant } from '../time.ts';
import { decideAdjustPoints } from './adjustments.ts';
import type { MemberCommand } from './commands.ts';
import type { MemberContext } from './context.ts';
import { decideRecordPurchase } from './earning.ts';
import type { MemberEvent } from './events.ts';
import { evolveMember } from './evolve.ts';
import { decideExpireLots, dueLotExpiries } from './expiry.ts';
import { decideCaptureHold, decidePlaceHold, decideReleaseHold, expiredHoldReleases } from './holds.ts';
import { memberPointsDelta } from './postings.ts';
import { decideRedeemPoints } from './redemption.ts';
import { decideRefundPurchase } from './refunds.ts';
import { decideRegisterMember, decideUpdateProfile } from './registration.ts';
import type { MemberState, RegisteredMember } from './state.ts';
import { availablePoints } from './state.ts';

export { evolveMember } from './evolve.ts';
export { initialMemberState } from './state.ts';

export function decideMember(
  command: MemberCommand,
  state: MemberState,
  ctx: MemberContext,
): Decision<MemberEvent> {
  assertContext(ctx);
  if (command.type === 'RegisterMember') {
    const decision = decideRegisterMember(command.data, state, ctx);
    if (decision.ok) assertPostconditions(command, state, decision.events, state, ctx);
    return decision;
  }
  if (!state.registered) {
    return { ok: false, error: domainError('member-not-found', 'member is not registered') };
  }
  // ExpireLots expires as of its own asOf, so it skips the housekeeping's expiry.
  const chores = housekeeping(state, ctx.now, { expireLots: command.type !== 'ExpireLots' });
  const working = chores.state;
  const decision = decideRegistered(command, working, ctx);
  if (!decision.ok) return decision;
  const events = [...chores.events, ...decision.events];
  // Housekeeping may lower `available` (an expiry); the command's own events are held to the rule.
  assertPostconditions(command, state, events, working, ctx);
  return { ok: true, events };
}

/**
 * What every command records before it decides, and the state it then decides on. Expired holds are
 * released first, so the command sees only live holds and the state's holds stay bounded (their points
 * were available already; the events only make that visible in the ledger). Then lots past their expiry
 * are expired, so no command spends or counts points the programme has already taken back ("usable
 * through 31 December of the following year"), whether or not the nightly `ledger expire` has run; the
 * points a live hold counts on stay until the hold ends (expiry.ts). The member view shows the state after
 * it (src/queries/members.ts): what the next command will find.
 */
export function housekeeping(
  state: RegisteredMember,
  now: IsoInstant,
  options: { expireLots: boolean } = { expireLots: true },
): { events: MemberEvent[]; state: RegisteredMember } {
  const releases = expiredHoldReleases(state, now);
  const released = releases.reduce<MemberState>(evolveMember, state);
  assert(released.registered, 'releasing holds unregistered the member');
  const expiries = options.expireLots ? dueLotExpiries(released, now, now) : [];
  const after = expiries.reduce<MemberState>(evolveMember, released);
  assert(after.registered, 'expiring lots unregistered the member');
  return { events: [...releases, ...expiries], state: after };
}

function decideRegistered(
  command: Exclude<MemberCommand, { type: 'RegisterMember' }>,
  state: RegisteredMember,
  ctx: MemberContext,
): Decision<MemberEvent> {
  switch (command.type) {
    case 'UpdateProfile':
      return decideUpdateProfile(command.data, state, ctx);
    case 'RecordPurchase':
      return decideRecordPurchase(command.data, state, ctx);
    case 'PlaceHold':
      return decidePlaceHold(command.data, state, ctx);
    case 'CaptureHold':
      return decideCaptureHold(command.data, state, ctx);
    case 'ReleaseHold':
      return decideReleaseHold(command.data, state, ctx);
    case 'RedeemPoints':
      return decideRedeemPoints(command.data, state, ctx);
    case 'RefundPurchase':
      return decideRefundPurchase(command.data, state, ctx);
    case 'AdjustPoints':
      return decideAdjustPoints(command.data, state, ctx);
    case 'ExpireLots':
      return decideExpireLots(command.data, state, ctx);
    default:
      return assertNever(command, 'member command');
  }
}

function assertContext(ctx: MemberContext): void {
  assert(isCanonicalIsoInstant(ctx.now), `ctx.now must be a canonical ISO instant, got ${ctx.now}`);
  assert(
    isValidTimeZone(ctx.tenant.timeZone),
    `ctx.tenant.timeZone is not a time zone: ${ctx.tenant.timeZone}`,
  );
  assert(ctx.tenant.programme.tiers[0]?.minSpendFen === 0, 'ctx.tenant.programme has no tier starting at 0');
}

/**
 * The paired check before writing: applying the events must succeed (evolve asserts every balance and
 * lot), every event is stamped now and its postings move the balance as it moves, and no command but a
 * refund lowers the balance below zero or `available` below where it stood after the housekeeping
 * (released holds, expired lots) that preceded it (never below zero if it was not already).
 */
function assertPostconditions(
  command: MemberCommand,
  initial: MemberState,
  events: readonly MemberEvent[],
  before: MemberState,
  ctx: MemberContext,
): void {
  let after = initial;
  let balance = initial.registered ? initial.balance : 0;
  for (const event of events) {
    assert(event.data.at === ctx.now, `${event.type} is not stamped with ctx.now`);
    balance += memberPointsDelta(event);
    after = evolveMember(after, event);
    assert(
      after.registered && after.balance === balance,
      `${event.type}: postings disagree with the balance`,
    );
  }
  // Invariant 2 through the housekeeping: releasing holds only frees points, and expiry takes none a live
  // hold counts on, so `available` may fall to zero there but never below where it stood.
  if (initial.registered && before.registered) {
    const availableInitially = availablePoints(initial, ctx.now);
    assert(
      availablePoints(before, ctx.now) >= Math.min(0, availableInitially),
      `releasing holds and expiring lots took available below ${Math.min(0, availableInitially)}`,
    );
  }
  if (command.type === 'RefundPurchase' || !before.registered || !after.registered) return;
  const availableBefore = availablePoints(before, ctx.now);
  const availableAfter = availablePoints(after, ctx.now);
  assert(
    availableAfter >= Math.min(0, availableBefore),
    `${command.type} took available from ${availableBefore} to ${availableAfter}`,
  );
  assert(
    after.balance >= Math.min(0, before.balance),
    `${command.type} took the balance from ${before.balance} to ${after.balance}`,
  );
}
