/**
 * Adjustments: a support agent's signed correction, with a reason and the actor on record. A debit may
 * not take `available` below zero and consumes lots like a redemption; a credit repays debt first and
 * otherwise makes a lot that expires like points earned now.
 */
import type { Decision } from '../event.ts';
import { domainError, invalidField } from '../errors.ts';
import { ADJUSTMENT_IDS_RETENTION_DAYS } from '../limits.ts';
import { addPoints } from '../points.ts';
import { lotExpiresAt } from '../programme.ts';
import { addDaysIso } from '../time.ts';
import { parseWith } from '../validation.ts';
import type { AdjustPoints } from './commands.ts';
import type { MemberContext } from './context.ts';
import type { MemberEvent, PointsAdjusted } from './events.ts';
import { balanceLimitExceeded, isLotOpen, lotCredit, planConsumption, splitCredit } from './lots.ts';
import { insufficientPoints } from './redemption.ts';
import { adjustPointsSchema } from './schemas.ts';
import type { RegisteredMember } from './state.ts';
import { availablePoints } from './state.ts';

export function decideAdjustPoints(
  data: AdjustPoints['data'],
  state: RegisteredMember,
  ctx: MemberContext,
): Decision<MemberEvent> {
  const parsed = parseWith(adjustPointsSchema, data);
  if (!parsed.ok) return parsed;
  const { now, tenant } = ctx;
  const dedupCutoff = addDaysIso(now, -ADJUSTMENT_IDS_RETENTION_DAYS);
  if (state.adjustments.some((known) => known.adjustmentId === data.adjustmentId && known.at > dedupCutoff)) {
    return {
      ok: false,
      error: domainError(
        'adjustment-already-recorded',
        `adjustment ${data.adjustmentId} is already recorded`,
        {
          adjustmentId: data.adjustmentId,
        },
      ),
    };
  }
  const common = {
    adjustmentId: data.adjustmentId,
    points: data.points,
    reason: data.reason,
    ...(data.ticket === undefined ? {} : { ticket: data.ticket }),
    actor: data.actor,
  };

  let adjusted: PointsAdjusted['data'];
  if (data.points < 0) {
    const debit = -data.points;
    const available = availablePoints(state, now);
    if (debit > available) return insufficientPoints(debit, available);
    adjusted = {
      ...common,
      consumed: planConsumption(state.lots, debit),
      lot: null,
      debtRepaid: 0,
      balanceAfter: state.balance - debit,
      at: now,
    };
  } else {
    const balanceAfter = addPoints(state.balance, data.points);
    const overLimit = balanceLimitExceeded(balanceAfter, 'points');
    if (overLimit !== null) return { ok: false, error: overLimit };
    if (isLotOpen(state.lots, data.lotId)) {
      return { ok: false, error: invalidField('lotId', `lot ${data.lotId} already exists`) };
    }
    adjusted = {
      ...common,
      consumed: [],
      lot: lotCredit(data.lotId, data.points, lotExpiresAt(now, tenant.programme, tenant.timeZone)),
      debtRepaid: splitCredit(state.balance, data.points).debtRepaid,
      balanceAfter,
      at: now,
    };
  }
  return { ok: true, events: [{ type: 'PointsAdjusted', data: adjusted }] };
}
