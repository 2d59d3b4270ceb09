import { describe, expect, it } from 'vitest';
import { ctx, given, history, hold, purchase, redeem, register, STORE } from './testing.ts';

const T2025 = '2025-06-01T02:00:00.000Z';
const T0 = '2026-03-01T02:00:00.000Z';

describe('RedeemPoints', () => {
  // 30 points earned in 2025 (expire at the start of 2027), 100 in 2026 (start of 2028).
  const events = history([
    [T2025, register()],
    [T2025, purchase('old', 3_000, { lotId: 'z-old' })],
    [T0, purchase('new', 10_000, { lotId: 'a-new' })],
  ]);

  it('consumes the soonest-expiring lot first, whatever its lotId', () => {
    given(events)
      .when(redeem('o9', 50), ctx(T0))
      .then([
        {
          type: 'PointsRedeemed',
          data: {
            orderId: 'o9',
            storeId: STORE,
            points: 50,
            consumed: [
              { lotId: 'z-old', points: 30 },
              { lotId: 'a-new', points: 20 },
            ],
            balanceAfter: 80,
            at: T0,
          },
        },
      ]);
  });

  it('records R and the latest lot expiry against the order', () => {
    const { state } = given(events).when(redeem('o9', 50), ctx(T0));
    expect(state.registered && state.orders.find((order) => order.orderId === 'o9')).toMatchObject({
      purchase: null,
      redeemedPoints: 50,
      redeemedLotExpiresAtMax: '2027-12-31T16:00:00.000Z',
    });
  });

  it('answers insufficient-points beyond available (balance less active holds)', () => {
    given(events).when(redeem('o9', 131), ctx(T0)).then('insufficient-points');
    const held = [
      ...events,
      ...given(events)
        .when(hold('h1', 'o9', 100), ctx(T0))
        .events(),
    ];
    given(held).when(redeem('o9', 31), ctx(T0)).then('insufficient-points');
    given(held).when(redeem('o9', 30), ctx(T0)).events();
  });

  it('rejects points outside 1..POINTS_PER_COMMAND_MAX', () => {
    given(events).when(redeem('o9', 0), ctx(T0)).then('validation-failed');
    given(events).when(redeem('o9', -5), ctx(T0)).then('validation-failed');
    given(events).when(redeem('', 5), ctx(T0)).then('validation-failed');
  });
});
