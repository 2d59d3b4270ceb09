import { describe, expect, it } from 'vitest';
import { LOTS_EXPIRED_PER_EVENT_MAX } from '../limits.ts';
import { addSecondsIso } from '../time.ts';
import type { MemberEvent } from './events.ts';
import {
  capture,
  ctx,
  expire,
  fold,
  given,
  history,
  hold,
  purchase,
  redeem,
  refund,
  register,
  release,
} from './testing.ts';

/** 23:59:59 on 31 December 2025 in Shanghai. */
const LAST_SECOND_OF_2025 = '2025-12-31T15:59:59.000Z';
/** The first instant of 2027 in Shanghai: when lots earned in 2025 expire. */
const START_OF_2027 = '2026-12-31T16:00:00.000Z';
/** A minute before: a hold placed then still finds lot-o2025 open (any later command expires it first). */
const JUST_BEFORE_2027 = '2026-12-31T15:59:00.000Z';
const T2026 = '2026-06-01T02:00:00.000Z';

describe('ExpireLots', () => {
  const steps = [
    [LAST_SECOND_OF_2025, register()],
    [LAST_SECOND_OF_2025, purchase('o2025', 10_000)],
    [T2026, purchase('o2026', 5_000)],
    [T2026, redeem('o9', 30)],
  ] as const;
  const events = history(steps);
  /** Balance 120: lot-o2025's 70 are due at the first instant of 2027, lot-o2026's 50 are not. */
  const expiry = {
    type: 'LotsExpired',
    data: {
      asOf: START_OF_2027,
      lots: [{ lotId: 'lot-o2025', points: 70 }],
      points: 70,
      balanceAfter: 50,
      at: START_OF_2027,
    },
  } as const;

  it('expires lots due as of the year end, the remaining points only', () => {
    given(events).when(expire(START_OF_2027), ctx(START_OF_2027)).then([expiry]);
  });

  it('expires nothing a millisecond before the lot is due', () => {
    given(events).when(expire('2026-12-31T15:59:59.999Z'), ctx(START_OF_2027)).then([]);
  });

  it('changes nothing when run twice', () => {
    const first = given(events).when(expire(START_OF_2027), ctx(START_OF_2027)).events();
    given([...events, ...first])
      .when(expire(START_OF_2027), ctx(addSecondsIso(START_OF_2027, 60)))
      .then([]);
  });

  it('due lots are expired by the next command, before it decides, whether or not a sweep has run', () => {
    // A millisecond before, the due lot is still spendable.
    expect(
      given(events)
        .when(redeem('o10', 120), ctx('2026-12-31T15:59:59.999Z'))
        .events()
        .map((e) => e.type),
    ).toEqual(['PointsRedeemed']);
    // At the instant it is due, only lot-o2026's 50 are left to spend: 120 is refused, and nothing is written.
    given(events).when(redeem('o10', 120), ctx(START_OF_2027)).then('insufficient-points');
    given(events)
      .when(hold('h9', 'o10', 51), ctx(START_OF_2027))
      .then('insufficient-points');
    // An accepted command records the expiry first, then its own events.
    const [expired, redeemed, ...rest] = given(events).when(redeem('o10', 50), ctx(START_OF_2027)).events();
    expect(expired).toEqual(expiry);
    expect(redeemed).toMatchObject({ type: 'PointsRedeemed', data: { points: 50, balanceAfter: 0 } });
    expect(rest).toEqual([]);
    // A purchase too: the member ends with the new lot and lot-o2026, never the due one.
    const bought = given(events).when(purchase('o11', 1_000), ctx(START_OF_2027)).events();
    expect(bought[0]).toEqual(expiry);
    const state = fold([...events, ...bought]);
    expect(state.registered && state.lots.map((lot) => lot.lotId)).toEqual(['lot-o2026', 'lot-o11']);
  });

  it('a hold placed before the expiry keeps its points: the capture after it takes them, the rest expires', () => {
    const held = [
      ...events,
      ...given(events)
        .when(hold('h8', 'o10', 100), ctx(JUST_BEFORE_2027))
        .events(),
    ];
    const captured = given(held).when(capture('h8'), ctx(START_OF_2027)).events();
    // Held 100 of 120: a capture takes lot-o2025's 70 and 30 of lot-o2026, so none of the due lot expires.
    expect(captured.map((e) => e.type)).toEqual(['HoldCaptured']);
    const partly = [
      ...events,
      ...given(events)
        .when(hold('h7', 'o10', 50), ctx(JUST_BEFORE_2027))
        .events(),
    ];
    const [expired, capturedPart] = given(partly).when(capture('h7'), ctx(START_OF_2027)).events();
    expect(expired).toMatchObject({
      type: 'LotsExpired',
      data: { lots: [{ lotId: 'lot-o2025', points: 20 }] },
    });
    expect(capturedPart).toMatchObject({ type: 'HoldCaptured', data: { points: 50, balanceAfter: 50 } });
  });

  it('rejects an asOf after the ledger time', () => {
    given(events).when(expire(START_OF_2027), ctx(T2026)).then('validation-failed');
    given(events).when(expire('tomorrow'), ctx(T2026)).then('validation-failed');
  });

  it('leaves held points alone, and expires them on a later run once the hold ends', () => {
    const later = addSecondsIso(START_OF_2027, 60);
    const held = [
      ...events,
      ...given(events)
        .when(hold('h1', 'o9', 120), ctx(JUST_BEFORE_2027))
        .events(),
    ];
    // balance 120, held 120: nothing may go.
    given(held).when(expire(START_OF_2027), ctx(START_OF_2027)).then([]);
    const released = [...held, ...given(held).when(release('h1'), ctx(START_OF_2027)).events()];
    expect(given(released).when(expire(START_OF_2027), ctx(later)).events()[0]?.data).toMatchObject({
      points: 70,
    });

    const partlyHeld = [
      ...events,
      ...given(events)
        .when(hold('h2', 'o9', 100), ctx(JUST_BEFORE_2027))
        .events(),
    ];
    // Held 100 of 120: a capture would take lot-o2025's 70 and 30 of lot-o2026, so none of the due lot may go.
    given(partlyHeld).when(expire(START_OF_2027), ctx(START_OF_2027)).then([]);
    const heldLess = [
      ...events,
      ...given(events)
        .when(hold('h3', 'o9', 50), ctx(JUST_BEFORE_2027))
        .events(),
    ];
    // Held 50: they are lot-o2025's first 50; its other 20 are due and go.
    expect(given(heldLess).when(expire(START_OF_2027), ctx(START_OF_2027)).events()[0]?.data).toMatchObject({
      lots: [{ lotId: 'lot-o2025', points: 20 }],
      points: 20,
      balanceAfter: 100,
    });
  });

  it('ends the same whether a live hold is captured before or after the run', () => {
    for (const points of [30, 50, 70, 100, 120]) {
      const held = [...steps, [JUST_BEFORE_2027, hold('h4', 'o9', points)]] as const;
      const captureFirst = history([
        ...held,
        [START_OF_2027, capture('h4')],
        [START_OF_2027, expire(START_OF_2027)],
      ]);
      const expireFirst = history([
        ...held,
        [START_OF_2027, expire(START_OF_2027)],
        [START_OF_2027, capture('h4')],
      ]);
      const end = (recorded: MemberEvent[]) => {
        const state = fold(recorded);
        if (!state.registered) throw new Error('not registered');
        return { balance: state.balance, lots: state.lots.map((lot) => [lot.lotId, lot.remaining]) };
      };
      // Soonest first: the capture takes lot-o2025 (70) then lot-o2026; what is left of lot-o2025 is due.
      expect(end(expireFirst), `hold ${points}`).toEqual(end(captureFirst));
      expect(end(captureFirst).balance, `hold ${points}`).toBe(Math.min(50, 120 - points));
    }
  });

  it('accepts an asOf with an offset and records it in UTC', () => {
    const [expired] = given(events).when(expire('2027-01-01T00:00:00+08:00'), ctx(START_OF_2027)).events();
    expect(expired?.data).toMatchObject({ asOf: START_OF_2027 });
  });

  it('expires nothing from a member in debt', () => {
    const inDebt = history([
      [LAST_SECOND_OF_2025, register()],
      [LAST_SECOND_OF_2025, purchase('o1', 10_000)],
      [LAST_SECOND_OF_2025, redeem('o2', 100)],
      [LAST_SECOND_OF_2025, refund('r1', 'o1', 10_000)],
    ]);
    given(inDebt).when(expire(START_OF_2027), ctx(START_OF_2027)).then([]);
  });

  it(`splits a run into events of at most ${LOTS_EXPIRED_PER_EVENT_MAX} lots`, () => {
    const purchases = Array.from(
      { length: LOTS_EXPIRED_PER_EVENT_MAX + 3 },
      (_, index) => [T2026, purchase(`o${index}`, 100)] as const,
    );
    const many = history([[T2026, register()], ...purchases]);
    const START_OF_2028 = '2027-12-31T16:00:00.000Z';
    const expired = given(many).when(expire(START_OF_2028), ctx(START_OF_2028)).events();
    expect(
      expired.map(
        (event) => event.type === 'LotsExpired' && [event.data.lots.length, event.data.balanceAfter],
      ),
    ).toEqual([
      [LOTS_EXPIRED_PER_EVENT_MAX, 3],
      [3, 0],
    ]);
  });
});
