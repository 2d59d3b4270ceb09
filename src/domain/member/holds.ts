/**
 * Holds: points promised to a checkout. A hold reduces `available` at once and counts only while
 * expiresAt > now, so an expired hold frees its points the moment it expires, whether or not an event
 * says so. Any successful command first releases the expired holds it finds (HoldReleased 'expired'),
 * which keeps the state's holds bounded by HOLDS_ACTIVE_MAX.
 */
import type { Decision } from '../event.ts';
import { domainError, invalidField } from '../errors.ts';
import { HOLD_TTL_SECONDS_DEFAULT, HOLDS_ACTIVE_MAX } from '../limits.ts';
import { subtractPoints } from '../points.ts';
import type { IsoInstant } from '../time.ts';
import { addSecondsIso } from '../time.ts';
import { parseWith } from '../validation.ts';
import type { CaptureHold, PlaceHold, ReleaseHold } from './commands.ts';
import type { MemberContext } from './context.ts';
import type { HoldReleased, MemberEvent } from './events.ts';
import { planConsumption } from './lots.ts';
import { captureHoldSchema, placeHoldSchema, releaseHoldSchema } from './schemas.ts';
import type { ActiveHold, RegisteredMember } from './state.ts';
import { activeHolds, availablePoints, isHoldActive } from './state.ts';
import { insufficientPoints } from './redemption.ts';

export function expiredHoldReleases(state: RegisteredMember, now: IsoInstant): HoldReleased[] {
  return state.holds
    .filter((hold) => !isHoldActive(hold, now))
    .map((hold) => ({
      type: 'HoldReleased',
      data: { holdId: hold.holdId, points: hold.points, reason: 'expired', at: now },
    }));
}

function holdNotActive(holdId: string): Decision<MemberEvent> {
  return {
    ok: false,
    error: domainError(
      'hold-not-active',
      `hold ${holdId} is not active (unknown, already captured or released, or expired)`,
      { holdId },
    ),
  };
}

function findActiveHold(state: RegisteredMember, holdId: string, now: IsoInstant): ActiveHold | undefined {
  return state.holds.find((hold) => hold.holdId === holdId && isHoldActive(hold, now));
}

/** A holdId is taken while its hold is in state or its order summary remembers it. */
function isHoldIdKnown(state: RegisteredMember, holdId: string, now: IsoInstant): boolean {
  return (
    state.holds.some((hold) => hold.holdId === holdId) ||
    state.orders.some((order) => order.retainUntil > now && order.holdIds.includes(holdId))
  );
}

export function decidePlaceHold(
  data: PlaceHold['data'],
  state: RegisteredMember,
  ctx: MemberContext,
): Decision<MemberEvent> {
  const parsed = parseWith(placeHoldSchema, data);
  if (!parsed.ok) return parsed;
  const { now } = ctx;
  if (isHoldIdKnown(state, data.holdId, now)) {
    return {
      ok: false,
      error: domainError('hold-already-exists', `hold ${data.holdId} already exists`, {
        holdId: data.holdId,
      }),
    };
  }
  if (activeHolds(state, now).length >= HOLDS_ACTIVE_MAX) {
    return {
      ok: false,
      error: domainError('too-many-holds', `a member may have at most ${HOLDS_ACTIVE_MAX} active holds`, {
        holdsActiveMax: HOLDS_ACTIVE_MAX,
      }),
    };
  }
  const available = availablePoints(state, now);
  if (data.points > available) return insufficientPoints(data.points, available);
  const ttlSeconds = data.ttlSeconds ?? HOLD_TTL_SECONDS_DEFAULT;
  return {
    ok: true,
    events: [
      {
        type: 'PointsHeld',
        data: {
          holdId: data.holdId,
          orderId: data.orderId,
          storeId: data.storeId,
          points: data.points,
          expiresAt: addSecondsIso(now, ttlSeconds),
          at: now,
        },
      },
    ],
  };
}

/**
 * A capture ends its hold: it redeems `points` (default all held) and returns the rest to available.
 * It cannot take the balance below zero: points beyond the balance (possible only after a reversal
 * took held points) are insufficient-points.
 */
export function decideCaptureHold(
  data: CaptureHold['data'],
  state: RegisteredMember,
  ctx: MemberContext,
): Decision<MemberEvent> {
  const parsed = parseWith(captureHoldSchema, data);
  if (!parsed.ok) return parsed;
  const hold = findActiveHold(state, data.holdId, ctx.now);
  if (hold === undefined) return holdNotActive(data.holdId);
  const points = data.points ?? hold.points;
  if (points > hold.points) {
    return { ok: false, error: invalidField('points', `must not exceed the ${hold.points} points held`) };
  }
  if (points > state.balance) return insufficientPoints(points, state.balance);
  return {
    ok: true,
    events: [
      {
        type: 'HoldCaptured',
        data: {
          holdId: hold.holdId,
          orderId: hold.orderId,
          storeId: hold.storeId,
          points,
          releasedPoints: hold.points - points,
          consumed: planConsumption(state.lots, points),
          balanceAfter: subtractPoints(state.balance, points),
          at: ctx.now,
        },
      },
    ],
  };
}

export function decideReleaseHold(
  data: ReleaseHold['data'],
  state: RegisteredMember,
  ctx: MemberContext,
): Decision<MemberEvent> {
  const parsed = parseWith(releaseHoldSchema, data);
  if (!parsed.ok) return parsed;
  const hold = findActiveHold(state, data.holdId, ctx.now);
  if (hold === undefined) return holdNotActive(data.holdId);
  return {
    ok: true,
    events: [
      {
        type: 'HoldReleased',
        data: { holdId: hold.holdId, points: hold.points, reason: 'released', at: ctx.now },
      },
    ],
  };
}
