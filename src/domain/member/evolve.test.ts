import { describe, expect, it } from 'vitest';
import { InvariantViolation } from '../assert.ts';
import { addDaysIso } from '../time.ts';
import type { MemberEvent } from './events.ts';
import { evolveMember, initialMemberState } from './decider.ts';
import { adjust, ctx, fold, given, history, hold, purchase, redeem, refund, register } from './testing.ts';

const T0 = '2026-03-01T02:00:00.000Z';

const events = history([
  [T0, register()],
  [T0, purchase('o1', 10_000)],
  [T0, redeem('o1', 30)],
  [T0, refund('r1', 'o1', 2_500)],
]);

function tampered(
  index: number,
  change: (data: Record<string, unknown>) => Record<string, unknown>,
): MemberEvent[] {
  return events.map((event, position) =>
    position === index ? ({ ...event, data: change({ ...event.data }) } as MemberEvent) : event,
  );
}

describe('evolveMember', () => {
  it('reproduces the same state from the same events, and survives a JSON round trip', () => {
    const state = fold(events);
    expect(fold(events)).toEqual(state);
    expect(JSON.parse(JSON.stringify(state))).toEqual(state);
    expect(fold(JSON.parse(JSON.stringify(events)) as MemberEvent[])).toEqual(state);
  });

  it('crashes on an event whose balanceAfter disagrees with the recomputed balance', () => {
    expect(() => fold(tampered(1, (data) => ({ ...data, balanceAfter: 101 })))).toThrow(InvariantViolation);
    expect(() => fold(tampered(2, (data) => ({ ...data, balanceAfter: 71 })))).toThrow(InvariantViolation);
  });

  it('crashes on a debit of a lot that is not open, or that does not add up', () => {
    expect(() =>
      fold(tampered(2, (data) => ({ ...data, consumed: [{ lotId: 'ghost', points: 30 }] }))),
    ).toThrow(InvariantViolation);
    expect(() =>
      fold(tampered(2, (data) => ({ ...data, consumed: [{ lotId: 'lot-o1', points: 29 }] }))),
    ).toThrow(InvariantViolation);
  });

  it('crashes on a refund that does not follow floor(P x F / T) and floor(R x F / T)', () => {
    expect(() =>
      fold(
        tampered(3, (data) => ({
          ...data,
          pointsReversed: 26,
          reversedConsumed: [{ lotId: 'lot-o1', points: 26 }],
          balanceAfter: 51,
        })),
      ),
    ).toThrow(InvariantViolation);
  });

  it('crashes on events out of order or repeated', () => {
    expect(() => fold([events[1] as MemberEvent])).toThrow(InvariantViolation);
    expect(() => fold([...events, events[0] as MemberEvent])).toThrow(InvariantViolation);
    expect(() => fold([...events, events[1] as MemberEvent])).toThrow(InvariantViolation);
    expect(() =>
      evolveMember(initialMemberState(), {
        ...events[0],
        data: { ...events[0]?.data, at: 'now' },
      } as MemberEvent),
    ).toThrow(InvariantViolation);
  });

  it('prunes order summaries after their retention and adjustmentIds after a year', () => {
    const withAdjustment = [...events, ...given(events).when(adjust('a1', 1), ctx(T0)).events()];
    const oneYearOn = addDaysIso(T0, 365);
    const { state } = given(withAdjustment).when(hold('h1', 'o2', 1), ctx(oneYearOn));
    if (!state.registered) throw new Error('unregistered');
    expect(state.orders.map((order) => order.orderId)).toEqual(['o2']);
    expect(state.adjustments).toEqual([]);
    // So a refund of o1 is no longer possible: its order is gone from state.
    given(withAdjustment)
      .when(refund('r2', 'o1', 100), ctx(oneYearOn))
      .then('order-not-found');
  });

  it('keeps order summaries for a refund window longer than a year', () => {
    const long = history(
      [
        [T0, register()],
        [T0, purchase('o1', 10_000)],
      ],
      { ...ctx(T0).tenant, programme: { ...ctx(T0).tenant.programme, refundWindowDays: 400 } },
    );
    const later = addDaysIso(T0, 399);
    const { state } = given(long).when(hold('h1', 'o2', 1), ctx(later));
    expect(state.registered && state.orders.map((order) => order.orderId)).toEqual(['o1', 'o2']);
    given(long)
      .when(refund('r1', 'o1', 100), ctx(later))
      .events();
  });
});
