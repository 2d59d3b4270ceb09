import { describe, expect, it } from 'vitest';
import { addDaysIso } from '../time.ts';
import type { MemberEvent } from './events.ts';
import {
  adjust,
  capture,
  ctx,
  given,
  history,
  hold,
  purchase,
  redeem,
  refund,
  register,
  STORE,
  tenant,
} from './testing.ts';
import { memberView } from './view.ts';

const T0 = '2026-03-01T02:00:00.000Z';
const T1 = '2026-03-05T02:00:00.000Z';
const EXPIRES_2026_LOTS = '2027-12-31T16:00:00.000Z';

function refunded(events: MemberEvent[]) {
  const event = events.find((candidate) => candidate.type === 'PurchaseRefunded');
  if (event?.type !== 'PurchaseRefunded') throw new Error('no PurchaseRefunded');
  return event.data;
}

describe('RefundPurchase: partial and repeated refunds of a partly redeemed order', () => {
  // T = 10,000 fen, P = 100 points, R = 30 points redeemed against o1 itself.
  const base = history([
    [T0, register()],
    [T0, purchase('o1', 10_000)],
    [T0, redeem('o1', 30)],
  ]);

  it('first refund of 2,500 fen: reverse floor(100 x 2500/10000) = 25, restore floor(30 x 0.25) = 7', () => {
    given(base)
      .when(refund('r1', 'o1', 2_500), ctx(T1))
      .then([
        {
          type: 'PurchaseRefunded',
          data: {
            refundId: 'r1',
            orderId: 'o1',
            storeId: STORE,
            amountFen: 2_500,
            refundedFenTotal: 2_500,
            pointsReversed: 25,
            reversedConsumed: [{ lotId: 'lot-o1', points: 25 }],
            debtIncurred: 0,
            waivedPoints: 0,
            pointsRestored: 7,
            restoredLot: { lotId: 'lot-r1', points: 7, expiresAt: EXPIRES_2026_LOTS },
            debtRepaid: 0,
            balanceAfter: 52,
            at: T1,
          },
        },
      ]);
  });

  it('applies only the difference of the cumulative amounts on each later refund', () => {
    const first = given(base)
      .when(refund('r1', 'o1', 2_500), ctx(T1))
      .events();
    // F = 5,833: reversal floor(58.33) = 58 (33 more), restore floor(17.499) = 17 (10 more).
    const second = given([...base, ...first])
      .when(refund('r2', 'o1', 3_333), ctx(T1))
      .events();
    expect(refunded(second)).toMatchObject({
      refundedFenTotal: 5_833,
      pointsReversed: 33,
      reversedConsumed: [{ lotId: 'lot-o1', points: 33 }],
      pointsRestored: 10,
      restoredLot: { lotId: 'lot-r2', points: 10, expiresAt: EXPIRES_2026_LOTS },
      balanceAfter: 29,
    });
    // F = T: everything earned reversed (42 more), everything redeemed restored (13 more). The lots
    // hold 29, so 13 is briefly debt, which the restore repays at once.
    const third = given([...base, ...first, ...second]).when(refund('r3', 'o1', 4_167), ctx(T1));
    expect(refunded(third.events())).toEqual({
      refundId: 'r3',
      orderId: 'o1',
      storeId: STORE,
      amountFen: 4_167,
      refundedFenTotal: 10_000,
      pointsReversed: 42,
      reversedConsumed: [
        { lotId: 'lot-o1', points: 12 },
        { lotId: 'lot-r1', points: 7 },
        { lotId: 'lot-r2', points: 10 },
      ],
      debtIncurred: 13,
      waivedPoints: 0,
      pointsRestored: 13,
      restoredLot: { lotId: 'lot-r3', points: 13, expiresAt: EXPIRES_2026_LOTS },
      debtRepaid: 13,
      balanceAfter: 0,
      at: T1,
    });
    // 100 earned - 30 redeemed - 100 reversed + 30 restored = 0.
    expect(third.state.registered && [third.state.balance, third.state.lots]).toEqual([0, []]);

    const all = [...base, ...first, ...second, ...third.events()];
    given(all)
      .when(refund('r4', 'o1', 1), ctx(T1))
      .then('refund-exceeds-order');
  });

  it('matches a single full refund exactly', () => {
    const full = given(base).when(refund('r1', 'o1', 10_000), ctx(T1));
    expect(refunded(full.events())).toMatchObject({
      pointsReversed: 100,
      pointsRestored: 30,
      balanceAfter: 0,
    });
  });

  it('answers refund-exceeds-order when one refund is larger than the order', () => {
    const error = given(base)
      .when(refund('r1', 'o1', 10_001), ctx(T1))
      .error();
    expect(error).toMatchObject({
      code: 'refund-exceeds-order',
      status: 422,
      extra: { orderId: 'o1', totalFen: 10_000, refundableFen: 10_000 },
    });
  });

  it('answers refund-already-recorded for a refundId seen before, on any order', () => {
    const first = given(base)
      .when(refund('r1', 'o1', 100), ctx(T1))
      .events();
    given([...base, ...first])
      .when(refund('r1', 'o1', 100), ctx(T1))
      .then('refund-already-recorded');
    given([...base, ...first])
      .when(refund('r1', 'other', 100), ctx(T1))
      .then('refund-already-recorded');
  });

  it('answers order-not-found for unknown orders and orders only redeemed against', () => {
    given(base)
      .when(refund('r1', 'nope', 100), ctx(T1))
      .then('order-not-found');
    const redeemedOnly = [...base, ...given(base).when(redeem('o7', 5), ctx(T1)).events()];
    given(redeemedOnly)
      .when(refund('r1', 'o7', 100), ctx(T1))
      .then('order-not-found');
  });

  it('answers order-not-found past the refund window the purchase was made under', () => {
    const shortWindow = tenant({ programme: { refundWindowDays: 30 } });
    const events = history(
      [
        [T0, register()],
        [T0, purchase('o1', 10_000)],
      ],
      shortWindow,
    );
    given(events)
      .when(refund('r1', 'o1', 100), ctx(addDaysIso(T0, 30), shortWindow))
      .then('order-not-found');
    given(events)
      .when(refund('r1', 'o1', 100), ctx('2026-03-31T01:59:59.999Z', shortWindow))
      .events();
    // A longer window later does not reopen it: the purchase's terms govern.
    given(events)
      .when(refund('r1', 'o1', 100), ctx(addDaysIso(T0, 31), tenant()))
      .then('order-not-found');
  });

  it('rejects amounts below 1 fen', () => {
    given(base)
      .when(refund('r1', 'o1', 0), ctx(T1))
      .then('validation-failed');
    given(base)
      .when(refund('r1', 'o1', -5), ctx(T1))
      .then('validation-failed');
  });
});

describe('RefundPurchase: debt and clawback', () => {
  // o1 earned 100; 80 were then redeemed against another order, so only 20 are left to reverse.
  const spent = history([
    [T0, register()],
    [T0, purchase('o1', 10_000)],
    [T0, redeem('o2', 80)],
  ]);

  it("with clawback 'debt' takes the balance below zero", () => {
    const when = given(spent).when(refund('r1', 'o1', 10_000), ctx(T1));
    expect(refunded(when.events())).toMatchObject({
      pointsReversed: 100,
      reversedConsumed: [{ lotId: 'lot-o1', points: 20 }],
      debtIncurred: 80,
      waivedPoints: 0,
      pointsRestored: 0,
      restoredLot: null,
      balanceAfter: -80,
    });
    if (!when.state.registered) throw new Error('unregistered');
    expect(memberView(when.state, T1)).toMatchObject({ balance: -80, held: 0, available: -80, expiring: [] });
  });

  it('debt blocks redemptions, holds and debits until earnings repay it', () => {
    const inDebt = [
      ...spent,
      ...given(spent)
        .when(refund('r1', 'o1', 10_000), ctx(T1))
        .events(),
    ];
    given(inDebt).when(redeem('o3', 1), ctx(T1)).then('insufficient-points');
    given(inDebt)
      .when(hold('h1', 'o3', 1), ctx(T1))
      .then('insufficient-points');
    given(inDebt).when(adjust('a1', -1), ctx(T1)).then('insufficient-points');
    const repaid = given(inDebt).when(purchase('o3', 10_000), ctx(T1));
    expect(repaid.events()[0]?.data).toMatchObject({ points: 100, debtRepaid: 80, balanceAfter: 20 });
  });

  it("with clawback 'cap-at-zero' takes only what lots cover and records the rest as waived", () => {
    const capped = tenant({ programme: { clawback: 'cap-at-zero' } });
    expect(
      refunded(
        given(spent)
          .when(refund('r1', 'o1', 10_000), ctx(T1, capped))
          .events(),
      ),
    ).toMatchObject({
      pointsReversed: 20,
      reversedConsumed: [{ lotId: 'lot-o1', points: 20 }],
      debtIncurred: 0,
      waivedPoints: 80,
      balanceAfter: 0,
    });
  });

  it("with 'cap-at-zero' still nets the restore against the reversal (the restore is not a gift)", () => {
    const capped = tenant({ programme: { clawback: 'cap-at-zero' } });
    // Earned 100 on o1 and paid 50 of o1 with points: the member holds 50.
    const events = history(
      [
        [T0, register()],
        [T0, purchase('o1', 10_000)],
        [T0, redeem('o1', 50)],
      ],
      capped,
    );
    const when = given(events).when(refund('r1', 'o1', 10_000), ctx(T1, capped));
    expect(refunded(when.events())).toMatchObject({
      pointsReversed: 100,
      debtIncurred: 50,
      waivedPoints: 0,
      pointsRestored: 50,
      debtRepaid: 50,
      restoredLot: { lotId: 'lot-r1', points: 50, expiresAt: EXPIRES_2026_LOTS },
      balanceAfter: 0,
    });
  });

  it('may take held points: available goes negative until the hold ends', () => {
    const events = history([
      [T0, register()],
      [T0, purchase('o1', 10_000)],
      [T1, hold('h1', 'o9', 60)],
    ]);
    const when = given(events).when(refund('r1', 'o1', 5_000), ctx(T1));
    if (!when.state.registered) throw new Error('unregistered');
    expect(memberView(when.state, T1)).toMatchObject({ balance: 50, held: 60, available: -10 });
    // A capture may not take the balance below zero.
    given([...events, ...when.events()])
      .when(capture('h1'), ctx(T1))
      .then('insufficient-points');
    given([...events, ...when.events()])
      .when(capture('h1', 50), ctx(T1))
      .events();
  });
});

describe('RefundPurchase: restored points', () => {
  it('expire with the latest lot the redemptions used, never sooner', () => {
    const events = history([
      [T0, register()],
      [T0, purchase('o1', 1_000, { lotId: 'lot-2026' })],
      [addDaysIso(T0, 365), purchase('o2', 1_000, { lotId: 'lot-2027' })],
      [addDaysIso(T0, 365), redeem('o2', 15)],
    ]);
    const data = refunded(
      given(events)
        .when(refund('r1', 'o2', 1_000), ctx(addDaysIso(T0, 366)))
        .events(),
    );
    // R = 15 came from lot-2026 (10) and lot-2027 (5): restored points expire with lot-2027.
    expect(data).toMatchObject({
      pointsRestored: 15,
      restoredLot: { lotId: 'lot-r1', points: 15, expiresAt: '2028-12-31T16:00:00.000Z' },
    });
  });

  it('count redemptions made before the purchase was uploaded', () => {
    const events = history([
      [T0, register()],
      [T0, purchase('o0', 10_000)],
      [T0, redeem('o1', 40)],
      [T1, purchase('o1', 2_000)],
    ]);
    const data = refunded(
      given(events)
        .when(refund('r1', 'o1', 1_000), ctx(T1))
        .events(),
    );
    expect(data).toMatchObject({ pointsReversed: 10, pointsRestored: 20, balanceAfter: 90 });
  });

  it('count captures naming the order', () => {
    const events = history([
      [T0, register()],
      [T0, purchase('o1', 10_000)],
      [T0, hold('h1', 'o1', 30)],
      [T0, capture('h1', 20)],
    ]);
    const data = refunded(
      given(events)
        .when(refund('r1', 'o1', 5_000), ctx(T1))
        .events(),
    );
    expect(data).toMatchObject({ pointsReversed: 50, pointsRestored: 10, balanceAfter: 40 });
  });
});
