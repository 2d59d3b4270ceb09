/**
 * Redemption: points spent at the till without a hold. It may not take `available` below zero, and it
 * counts towards the order's R, which a later refund of that order restores in proportion.
 */
import type { Decision } from '../event.ts';
import { domainError } from '../errors.ts';
import { subtractPoints } from '../points.ts';
import { parseWith } from '../validation.ts';
import type { RedeemPoints } from './commands.ts';
import type { MemberContext } from './context.ts';
import type { MemberEvent } from './events.ts';
import { planConsumption } from './lots.ts';
import { redeemPointsSchema } from './schemas.ts';
import type { RegisteredMember } from './state.ts';
import { availablePoints } from './state.ts';

export function insufficientPoints(
  requestedPoints: number,
  availablePointsNow: number,
): Decision<MemberEvent> {
  return {
    ok: false,
    error: domainError(
      'insufficient-points',
      `${requestedPoints} points requested, ${Math.max(0, availablePointsNow)} available`,
      { requestedPoints, availablePoints: availablePointsNow },
    ),
  };
}

export function decideRedeemPoints(
  data: RedeemPoints['data'],
  state: RegisteredMember,
  ctx: MemberContext,
): Decision<MemberEvent> {
  const parsed = parseWith(redeemPointsSchema, data);
  if (!parsed.ok) return parsed;
  const available = availablePoints(state, ctx.now);
  if (data.points > available) return insufficientPoints(data.points, available);
  return {
    ok: true,
    events: [
      {
        type: 'PointsRedeemed',
        data: {
          orderId: data.orderId,
          storeId: data.storeId,
          points: data.points,
          consumed: planConsumption(state.lots, data.points),
          balanceAfter: subtractPoints(state.balance, data.points),
          at: ctx.now,
        },
      },
    ],
  };
}
