import type { MemberCommand } from '../domain/member/commands.ts';
import type { TenantContext } from '../domain/member/context.ts';
import { decideMember } from '../domain/member/decider.ts';
import type { MemberEvent } from '../domain/member/events.ts';
import { evolveMember } from '../domain/member/evolve.ts';
import { initialMemberState, type MemberState } from '../domain/member/state.ts';
import { domainError, memberExists } from '../domain/errors.ts';
import { applicationError, type Rejection } from './errors.ts';
import type { StreamDecider } from './run-command.ts';
import { memberIdOfStream } from './streams.ts';

/** Bump when MemberState's shape changes: older snapshots are then rebuilt from events. */
export const MEMBER_SNAPSHOT_SCHEMA = 1;

/**
 * An estimate on the high side: 3,000 members of the benchmark history (17 lots, holds, orders and
 * adjustments each on average) took 5,298 bytes of heap a state; this says 6,885.
 */
const MEMBER_STATE_BYTES_BASE = 512;
const MEMBER_STATE_BYTES_PER_ITEM = 384;

export const memberFolder = {
  snapshotSchema: MEMBER_SNAPSHOT_SCHEMA,
  initialState: initialMemberState,
  evolve: evolveMember,
  stateBytes: (state: MemberState): number =>
    state.registered
      ? MEMBER_STATE_BYTES_BASE +
        MEMBER_STATE_BYTES_PER_ITEM *
          (state.lots.length + state.holds.length + state.orders.length + state.adjustments.length)
      : MEMBER_STATE_BYTES_BASE,
};

export function memberDecider(
  tenant: TenantContext,
  actor: string | undefined,
): StreamDecider<MemberState, MemberCommand, MemberEvent> {
  return {
    ...memberFolder,
    decide: (command, state, now) =>
      decideMember(command, state, actor === undefined ? { now, tenant } : { now, tenant, actor }),
  };
}

/**
 * Business keys a command takes in its tenant (DESIGN.md invariant 1): a database constraint written in the
 * same transaction as the events, so a retry under another Idempotency-Key still cannot post twice.
 */
export function uniqueKeysOf(command: MemberCommand, normalizedPhone?: string): string[] {
  switch (command.type) {
    case 'RegisterMember':
      return normalizedPhone === undefined ? [] : [`phone:${normalizedPhone}`];
    case 'UpdateProfile':
      return normalizedPhone === undefined ? [] : [`phone:${normalizedPhone}`];
    case 'RecordPurchase':
      return [`purchase:${command.data.orderId}`];
    case 'PlaceHold':
      return [`hold:${command.data.holdId}`];
    case 'RefundPurchase':
      return [`refund:${command.data.refundId}`];
    case 'AdjustPoints':
      return [`adjustment:${command.data.adjustmentId}`];
    case 'CaptureHold':
    case 'ReleaseHold':
    case 'RedeemPoints':
    case 'ExpireLots':
      return [];
  }
}

/** What a taken business key means to the caller. */
export function explainMemberUniqueKey(key: string, holderStreamId: string | null): Rejection {
  const [kind = '', ...rest] = key.split(':');
  const id = rest.join(':');
  switch (kind) {
    case 'phone':
      return memberExists(memberIdOfStream(holderStreamId ?? '') ?? 'unknown');
    case 'purchase':
      return domainError('order-already-recorded', `order ${id} was already recorded`);
    case 'hold':
      return domainError('hold-already-exists', `hold ${id} already exists`);
    case 'refund':
      return domainError('refund-already-recorded', `refund ${id} was already recorded`);
    case 'adjustment':
      return domainError('adjustment-already-recorded', `adjustment ${id} was already recorded`);
    default:
      return applicationError('concurrency-conflict', `key ${key} is taken`);
  }
}
