/**
 * Test helpers for the member decider, Emmett style:
 *   given(events).when(command, ctx).then(expectedEvents | errorCode)
 * plus small command builders and `history`, which produces a `given` by deciding commands (so tests
 * state a member's past as the till would have made it, not as hand-built events).
 */
import { expect } from 'vitest';
import type { DomainError, DomainErrorCode } from '../errors.ts';
import type { Decision } from '../event.ts';
import type { ProgrammeInput } from '../programme.ts';
import { programmeSchema } from '../programme.ts';
import type {
  AdjustPoints,
  CaptureHold,
  ExpireLots,
  MemberCommand,
  PlaceHold,
  PurchaseLine,
  RecordPurchase,
  RedeemPoints,
  RefundPurchase,
  RegisterMember,
  ReleaseHold,
} from './commands.ts';
import type { MemberContext, TenantContext } from './context.ts';
import { decideMember, evolveMember, initialMemberState } from './decider.ts';
import type { MemberEvent } from './events.ts';
import type { MemberState } from './state.ts';

export const MEMBER_ID = 'm-1';
export const PHONE = '+8613812345678';
export const STORE = 's-1';

export function tenant(overrides: { timeZone?: string; programme?: ProgrammeInput } = {}): TenantContext {
  return {
    tenantId: 't-1',
    timeZone: overrides.timeZone ?? 'Asia/Shanghai',
    programme: programmeSchema.parse(overrides.programme ?? {}),
  };
}

export function ctx(now: string, tenantContext: TenantContext = tenant()): MemberContext {
  return { now, tenant: tenantContext };
}

export function fold(events: readonly MemberEvent[], state: MemberState = initialMemberState()): MemberState {
  return events.reduce(evolveMember, state);
}

type Step = readonly [now: string, command: MemberCommand];

/** Decides each command at its time against the state so far; a rejection fails the test setup. */
export function history(steps: readonly Step[], tenantContext: TenantContext = tenant()): MemberEvent[] {
  const events: MemberEvent[] = [];
  let state = initialMemberState();
  for (const [now, command] of steps) {
    const decision = decideMember(command, state, ctx(now, tenantContext));
    if (!decision.ok)
      throw new Error(`history step ${command.type} at ${now} rejected: ${decision.error.detail}`);
    events.push(...decision.events);
    state = fold(decision.events, state);
  }
  return events;
}

export type Then = {
  /** Expected events, or the code of the expected error. */
  then(expected: readonly MemberEvent[] | DomainErrorCode): void;
  decision: Decision<MemberEvent>;
  /** The state after the decision's events (the given state when rejected). */
  state: MemberState;
  /** The error, failing the test if the command was accepted. */
  error(): DomainError;
  events(): MemberEvent[];
};

export function given(events: readonly MemberEvent[]) {
  const before = fold(events);
  return {
    state: before,
    when(command: MemberCommand, context: MemberContext): Then {
      const decision = decideMember(command, before, context);
      const state = decision.ok ? fold(decision.events, before) : before;
      return {
        decision,
        state,
        then(expected) {
          if (typeof expected === 'string') {
            expect(decision.ok ? { events: decision.events } : decision.error.code).toEqual(expected);
          } else {
            expect(decision.ok ? decision.events : decision.error).toEqual(expected);
          }
        },
        error() {
          if (decision.ok) throw new Error(`expected an error, got ${JSON.stringify(decision.events)}`);
          return decision.error;
        },
        events() {
          if (!decision.ok)
            throw new Error(`expected events, got ${decision.error.code}: ${decision.error.detail}`);
          return decision.events;
        },
      };
    },
  };
}

// ---- command builders ---------------------------------------------------------------------------

export function register(overrides: Partial<RegisterMember['data']> = {}): RegisterMember {
  return {
    type: 'RegisterMember',
    data: { memberId: MEMBER_ID, phone: '138 1234 5678', storeId: STORE, channel: 'store', ...overrides },
  };
}

export function line(amountFen: number, overrides: Partial<PurchaseLine> = {}): PurchaseLine {
  return { sku: 'sku-1', category: 'otc', quantity: 1, amountFen, ...overrides };
}

export function purchase(
  orderId: string,
  linesOrAmountFen: number | readonly PurchaseLine[],
  overrides: Partial<RecordPurchase['data']> = {},
): RecordPurchase {
  const lines = typeof linesOrAmountFen === 'number' ? [line(linesOrAmountFen)] : linesOrAmountFen;
  return {
    type: 'RecordPurchase',
    data: { orderId, storeId: STORE, lines, lotId: `lot-${orderId}`, ...overrides },
  };
}

export function hold(holdId: string, orderId: string, points: number, ttlSeconds?: number): PlaceHold {
  return {
    type: 'PlaceHold',
    data: { holdId, orderId, storeId: STORE, points, ...(ttlSeconds === undefined ? {} : { ttlSeconds }) },
  };
}

export function capture(holdId: string, points?: number): CaptureHold {
  return { type: 'CaptureHold', data: { holdId, ...(points === undefined ? {} : { points }) } };
}

export function release(holdId: string): ReleaseHold {
  return { type: 'ReleaseHold', data: { holdId } };
}

export function redeem(orderId: string, points: number): RedeemPoints {
  return { type: 'RedeemPoints', data: { orderId, storeId: STORE, points } };
}

export function refund(
  refundId: string,
  orderId: string,
  amountFen: number,
  storeId = STORE,
): RefundPurchase {
  return {
    type: 'RefundPurchase',
    data: { refundId, orderId, storeId, amountFen, lotId: `lot-${refundId}` },
  };
}

export function adjust(adjustmentId: string, points: number, reason = 'goodwill'): AdjustPoints {
  return {
    type: 'AdjustPoints',
    data: { adjustmentId, points, reason, actor: 'agent-7', lotId: `lot-${adjustmentId}` },
  };
}

export function expire(asOf: string): ExpireLots {
  return { type: 'ExpireLots', data: { asOf } };
}
