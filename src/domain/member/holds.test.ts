import { describe, expect, it } from 'vitest';
import { HOLDS_ACTIVE_MAX } from '../limits.ts';
import { addSecondsIso } from '../time.ts';
import {
  capture,
  ctx,
  given,
  history,
  hold,
  purchase,
  redeem,
  refund,
  register,
  release,
  STORE,
} from './testing.ts';
import { memberView } from './view.ts';

const T0 = '2026-03-01T02:00:00.000Z';
const T1 = '2026-03-01T02:01:00.000Z';
const EXPIRES_2026_LOTS = '2027-12-31T16:00:00.000Z';
/** 100 points in one lot. */
const funded = history([
  [T0, register()],
  [T0, purchase('o1', 10_000)],
]);

describe('PlaceHold', () => {
  it('holds points for 900 s by default', () => {
    given(funded)
      .when(hold('h1', 'o9', 40), ctx(T1))
      .then([
        {
          type: 'PointsHeld',
          data: {
            holdId: 'h1',
            orderId: 'o9',
            storeId: STORE,
            points: 40,
            expiresAt: addSecondsIso(T1, 900),
            at: T1,
          },
        },
      ]);
  });

  it('takes a ttl up to 3600 s and no more', () => {
    const [held] = given(funded)
      .when(hold('h1', 'o9', 40, 3600), ctx(T1))
      .events();
    expect(held?.type === 'PointsHeld' && held.data.expiresAt).toBe(addSecondsIso(T1, 3600));
    given(funded)
      .when(hold('h1', 'o9', 40, 3601), ctx(T1))
      .then('validation-failed');
    given(funded)
      .when(hold('h1', 'o9', 40, 0), ctx(T1))
      .then('validation-failed');
  });

  it('rejects points outside 1..POINTS_PER_COMMAND_MAX', () => {
    given(funded)
      .when(hold('h1', 'o9', 0), ctx(T1))
      .then('validation-failed');
    given(funded)
      .when(hold('h1', 'o9', 100_000_001), ctx(T1))
      .then('validation-failed');
    given(funded)
      .when(hold('h1', 'o9', 2.5), ctx(T1))
      .then('validation-failed');
  });

  it('answers insufficient-points beyond available, counting other active holds', () => {
    given(funded)
      .when(hold('h1', 'o9', 101), ctx(T1))
      .then('insufficient-points');
    const events = history([
      [T0, register()],
      [T0, purchase('o1', 10_000)],
      [T1, hold('h1', 'o9', 70)],
    ]);
    const error = given(events)
      .when(hold('h2', 'o9', 31), ctx(T1))
      .error();
    expect(error).toMatchObject({
      code: 'insufficient-points',
      status: 422,
      extra: { requestedPoints: 31, availablePoints: 30 },
    });
    given(events)
      .when(hold('h2', 'o9', 30), ctx(T1))
      .events();
  });

  it('answers hold-already-exists for a known holdId, active or finished', () => {
    const placed = history([
      [T0, register()],
      [T0, purchase('o1', 10_000)],
      [T1, hold('h1', 'o9', 10)],
    ]);
    given(placed)
      .when(hold('h1', 'o9', 10), ctx(T1))
      .then('hold-already-exists');
    const released = [...placed, ...given(placed).when(release('h1'), ctx(T1)).events()];
    given(released)
      .when(hold('h1', 'o9', 10), ctx(T1))
      .then('hold-already-exists');
    const captured = [...placed, ...given(placed).when(capture('h1'), ctx(T1)).events()];
    given(captured)
      .when(hold('h1', 'o9', 10), ctx(T1))
      .then('hold-already-exists');
  });

  it('answers too-many-holds past HOLDS_ACTIVE_MAX active holds', () => {
    const steps = Array.from(
      { length: HOLDS_ACTIVE_MAX },
      (_, index) => [T1, hold(`h${index}`, 'o9', 1)] as const,
    );
    const events = history([[T0, register()], [T0, purchase('o1', 10_000)], ...steps]);
    given(events)
      .when(hold('h-extra', 'o9', 1), ctx(T1))
      .then('too-many-holds');
    // Once they expire, they make room (and are released by the same decision).
    const later = addSecondsIso(T1, 900);
    const accepted = given(events)
      .when(hold('h-extra', 'o9', 1), ctx(later))
      .events();
    expect(accepted.map((event) => event.type)).toEqual([...steps.map(() => 'HoldReleased'), 'PointsHeld']);
  });
});

describe('CaptureHold', () => {
  const placed = history([
    [T0, register()],
    [T0, purchase('o1', 10_000)],
    [T0, purchase('o2', 5_000, { lotId: 'lot-a' })],
    [T1, hold('h1', 'o9', 120)],
  ]);

  it('captures all held points by default, consuming the soonest-expiring lot then the lowest lotId', () => {
    given(placed)
      .when(capture('h1'), ctx(T1))
      .then([
        {
          type: 'HoldCaptured',
          data: {
            holdId: 'h1',
            orderId: 'o9',
            storeId: STORE,
            points: 120,
            releasedPoints: 0,
            // Both lots expire together, so lotId decides: 'lot-a' < 'lot-o1'.
            consumed: [
              { lotId: 'lot-a', points: 50 },
              { lotId: 'lot-o1', points: 70 },
            ],
            balanceAfter: 30,
            at: T1,
          },
        },
      ]);
  });

  it('captures part and returns the rest to available', () => {
    const when = given(placed).when(capture('h1', 20), ctx(T1));
    expect(when.events()[0]?.data).toMatchObject({ points: 20, releasedPoints: 100, balanceAfter: 130 });
    if (!when.state.registered) throw new Error('unregistered');
    expect(memberView(when.state, T1)).toMatchObject({ balance: 130, held: 0, available: 130 });
  });

  it('rejects more than held, and zero', () => {
    given(placed).when(capture('h1', 121), ctx(T1)).then('validation-failed');
    given(placed).when(capture('h1', 0), ctx(T1)).then('validation-failed');
  });

  it('answers hold-not-active for unknown, released, captured and expired holds', () => {
    given(placed).when(capture('nope'), ctx(T1)).then('hold-not-active');
    const released = [...placed, ...given(placed).when(release('h1'), ctx(T1)).events()];
    given(released).when(capture('h1'), ctx(T1)).then('hold-not-active');
    const captured = [...placed, ...given(placed).when(capture('h1', 1), ctx(T1)).events()];
    given(captured).when(capture('h1'), ctx(T1)).then('hold-not-active');
    const expiresAt = addSecondsIso(T1, 900);
    given(placed)
      .when(capture('h1'), ctx(addSecondsIso(expiresAt, -1)))
      .events();
    given(placed).when(capture('h1'), ctx(expiresAt)).then('hold-not-active');
  });

  it('answers insufficient-points when a reversal took the held points from the balance', () => {
    // 100 points, 80 held, then o1 is refunded in full: balance 0, the hold is still active.
    const events = history([
      [T0, register()],
      [T0, purchase('o1', 10_000)],
      [T1, hold('h1', 'o9', 80)],
      [T1, refund('r1', 'o1', 10_000)],
    ]);
    given(events).when(capture('h1'), ctx(T1)).then('insufficient-points');
    given(events).when(release('h1'), ctx(T1)).events();
  });
});

describe('ReleaseHold', () => {
  const placed = history([
    [T0, register()],
    [T0, purchase('o1', 10_000)],
    [T1, hold('h1', 'o9', 60)],
  ]);

  it('releases an active hold', () => {
    given(placed)
      .when(release('h1'), ctx(T1))
      .then([{ type: 'HoldReleased', data: { holdId: 'h1', points: 60, reason: 'released', at: T1 } }]);
  });

  it('answers hold-not-active for a hold already released or expired', () => {
    const released = [...placed, ...given(placed).when(release('h1'), ctx(T1)).events()];
    given(released).when(release('h1'), ctx(T1)).then('hold-not-active');
    given(placed)
      .when(release('h1'), ctx(addSecondsIso(T1, 900)))
      .then('hold-not-active');
  });
});

describe('hold expiry', () => {
  const placed = history([
    [T0, register()],
    [T0, purchase('o1', 10_000)],
    [T1, hold('h1', 'o9', 60, 60)],
  ]);

  it('frees the points the moment the hold expires, with no event', () => {
    const { state } = given(placed);
    if (!state.registered) throw new Error('unregistered');
    expect(memberView(state, addSecondsIso(T1, 59))).toMatchObject({ held: 60, available: 40 });
    expect(memberView(state, addSecondsIso(T1, 60))).toMatchObject({ held: 0, available: 100 });
  });

  it('lets the next command release it as expired before doing its own work', () => {
    const later = addSecondsIso(T1, 61);
    given(placed)
      .when(redeem('o9', 100), ctx(later))
      .then([
        { type: 'HoldReleased', data: { holdId: 'h1', points: 60, reason: 'expired', at: later } },
        {
          type: 'PointsRedeemed',
          data: {
            orderId: 'o9',
            storeId: STORE,
            points: 100,
            consumed: [{ lotId: 'lot-o1', points: 100 }],
            balanceAfter: 0,
            at: later,
          },
        },
      ]);
  });

  it('changes nothing when that command is rejected', () => {
    given(placed)
      .when(redeem('o9', 101), ctx(addSecondsIso(T1, 61)))
      .then('insufficient-points');
  });

  it('keeps the expired lot date of a captured hold for later restores', () => {
    const { state } = given(placed).when(capture('h1'), ctx(T1));
    expect(state.registered && state.orders.find((order) => order.orderId === 'o9')).toMatchObject({
      redeemedPoints: 60,
      redeemedLotExpiresAtMax: EXPIRES_2026_LOTS,
      holdIds: ['h1'],
    });
  });
});
