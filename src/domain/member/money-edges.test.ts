/**
 * Edges of the default programme's money rules (CONTRACT.md "Default programme") that
 * the other member tests do not pin: exact integer refunds where a floating-point floor would be off by
 * one, tier thresholds met exactly with permille floors at each tier, lot expiry at the local new-year
 * instant on both sides of UTC, several partial refunds summing exactly to T with R made of a
 * redemption and a capture, a restored lot that expires sooner than newer lots being consumed first,
 * and the instant a hold expires.
 */
import { describe, expect, it } from 'vitest';
import { addSecondsIso } from '../time.ts';
import type { MemberEvent } from './events.ts';
import {
  adjust,
  capture,
  ctx,
  given,
  history,
  hold,
  line,
  purchase,
  redeem,
  refund,
  register,
  release,
  tenant,
} from './testing.ts';
import { memberView } from './view.ts';

type EventData = { [E in MemberEvent as E['type']]: E['data'] };

const T0 = '2026-03-01T02:00:00.000Z';
const T1 = '2026-03-05T02:00:00.000Z';

function dataOf<T extends MemberEvent['type']>(events: readonly MemberEvent[], type: T): EventData[T] {
  const event = events.find((candidate) => candidate.type === type);
  if (event === undefined) throw new Error(`no ${type}`);
  return event.data as EventData[T];
}

describe('refunds of very large orders stay exact', () => {
  // 100 points a yuan at 10x: an order of T = 999,999,603 fen earns P = 9,999,996,030 points, and
  // P x F exceeds 2^53, where Math.floor(P * F / T) would give 9,734,786,759.
  const big = tenant({
    programme: {
      pointsPerYuan: 100,
      tiers: [{ name: 'standard', minSpendFen: 0, multiplierPermille: 10_000 }],
    },
  });
  const T = 999_999_603;
  const P = 9_999_996_030;
  const R = 99_999_999;
  const F1 = 973_478_676;
  const events = history(
    [
      [T0, register()],
      [T0, purchase('o1', [line(T)])],
      [T0, redeem('o1', R)],
    ],
    big,
  );

  it('reverses floor(P x F / T) and restores floor(R x F / T) exactly, then settles the rest to zero', () => {
    expect(dataOf(events, 'PurchaseRecorded').points).toBe(P);
    // The example is only worth having if floating point gets it wrong.
    expect(Math.floor((P * F1) / T)).not.toBe(9_734_786_760);

    const first = given(events)
      .when(refund('r1', 'o1', F1), ctx(T1, big))
      .events();
    expect(dataOf(first, 'PurchaseRefunded')).toMatchObject({
      pointsReversed: 9_734_786_760,
      pointsRestored: 97_347_905,
      debtIncurred: 0,
      balanceAfter: P - R - 9_734_786_760 + 97_347_905,
    });

    // The rest of the order: the reversal outruns the lots (debt), and the restore repays that debt.
    const second = given([...events, ...first]).when(refund('r2', 'o1', T - F1), ctx(T1, big));
    expect(dataOf(second.events(), 'PurchaseRefunded')).toMatchObject({
      refundedFenTotal: T,
      pointsReversed: P - 9_734_786_760,
      pointsRestored: R - 97_347_905,
      debtIncurred: 2_652_094,
      debtRepaid: 2_652_094,
      balanceAfter: 0,
    });
    expect(second.state.registered && second.state.lots).toEqual([]);
    given([...events, ...first, ...second.events()])
      .when(refund('r3', 'o1', 1), ctx(T1, big))
      .then('refund-exceeds-order');
  });
});

describe('tier thresholds and permille floors', () => {
  it('reaches silver at exactly 200,000 fen and gold at exactly 1,000,000, earning at the tier held before', () => {
    let events = history([
      [T0, register()],
      [T0, purchase('o1', 199_999)],
    ]);
    const step = (orderId: string, amountFen: number) => {
      const when = given(events).when(purchase(orderId, amountFen), ctx(T0));
      events = [...events, ...when.events()];
      return when.events();
    };
    // 1 fen more reaches silver exactly; that purchase earns at standard: floor(1 x 1000 / 100000) = 0.
    expect(step('o2', 1)).toEqual([
      expect.objectContaining({ data: expect.objectContaining({ tier: 'standard', points: 0, lot: null }) }),
      { type: 'TierChanged', data: { from: 'standard', to: 'silver', spendFen: 200_000, at: T0 } },
    ]);
    // Silver, 1200 permille: floor(83 x 1.2) = floor(99.6 / 100) = 0 and floor(84 x 1.2 / 100) = 1.
    expect(dataOf(step('o3', 83), 'PurchaseRecorded')).toMatchObject({
      tier: 'silver',
      points: 0,
      lot: null,
    });
    expect(dataOf(step('o4', 84), 'PurchaseRecorded')).toMatchObject({
      tier: 'silver',
      multiplierPermille: 1200,
      points: 1,
    });
    // Spend is now 200,167: 799,833 more is exactly 1,000,000, earned at silver.
    expect(step('o5', 799_833)).toEqual([
      expect.objectContaining({ data: expect.objectContaining({ tier: 'silver', points: 9_597 }) }),
      { type: 'TierChanged', data: { from: 'silver', to: 'gold', spendFen: 1_000_000, at: T0 } },
    ]);
    // Gold, 1500 permille: floor(66 x 1.5 / 100) = 0 and floor(67 x 1.5 / 100) = 1.
    expect(dataOf(step('o6', 66), 'PurchaseRecorded')).toMatchObject({ tier: 'gold', points: 0 });
    expect(dataOf(step('o7', 67), 'PurchaseRecorded')).toMatchObject({
      tier: 'gold',
      multiplierPermille: 1500,
      points: 1,
    });
  });

  it('leaves insurance and excluded categories out of the multiplied amount, flooring once per order', () => {
    const programme = tenant({ programme: { excludedCategories: ['rx'] } });
    const events = history(
      [
        [T0, register()],
        [T0, purchase('o1', 200_000)],
      ],
      programme,
    );
    // Silver: eligible = (10,050 - 10,000) + (49 + 50) - 0 (rx) = 149; floor(149 x 1.2 / 100) = 1,
    // where flooring each line would give 0 + 0 + 0.
    const recorded = dataOf(
      given(events)
        .when(
          purchase('o2', [
            line(10_050, { insuranceFen: 10_000 }),
            line(49, { sku: 'sku-2' }),
            line(50, { sku: 'sku-3' }),
            line(90_000, { sku: 'sku-4', category: 'rx' }),
          ]),
          ctx(T0, programme),
        )
        .events(),
      'PurchaseRecorded',
    );
    expect(recorded).toMatchObject({ totalFen: 100_149, eligibleFen: 149, tier: 'silver', points: 1 });
  });
});

describe('lot expiry at the local new year', () => {
  it('uses the local year at 00:00 on 1 January in Asia/Shanghai, while the UTC date is still 31 December', () => {
    const midnight = '2026-12-31T16:00:00.000Z'; // 2027-01-01 00:00 in Shanghai
    const events = history([[T0, register()]]);
    expect(
      dataOf(given(events).when(purchase('o1', 1_000), ctx(midnight)).events(), 'PurchaseRecorded').lot,
    ).toEqual({
      lotId: 'lot-o1',
      points: 10,
      expiresAt: '2028-12-31T16:00:00.000Z',
    });
    const justBefore = '2026-12-31T15:59:59.999Z';
    expect(
      dataOf(given(events).when(purchase('o1', 1_000), ctx(justBefore)).events(), 'PurchaseRecorded').lot,
    ).toEqual({
      lotId: 'lot-o1',
      points: 10,
      expiresAt: '2027-12-31T16:00:00.000Z',
    });
    // A credit adjustment expires like points earned at the same instant.
    expect(dataOf(given(events).when(adjust('a1', 5), ctx(midnight)).events(), 'PointsAdjusted').lot).toEqual(
      {
        lotId: 'lot-a1',
        points: 5,
        expiresAt: '2028-12-31T16:00:00.000Z',
      },
    );
  });

  it('uses the local year west of UTC, where the UTC date is already 1 January (Etc/GMT+5, UTC-5)', () => {
    const west = tenant({ timeZone: 'Etc/GMT+5' });
    const events = history([[T0, register()]], west);
    // 2026-12-31 23:59:59.999 local: a 2026 lot, expiring at 2028-01-01 00:00 local.
    expect(
      dataOf(
        given(events).when(purchase('o1', 1_000), ctx('2027-01-01T04:59:59.999Z', west)).events(),
        'PurchaseRecorded',
      ).lot?.expiresAt,
    ).toBe('2028-01-01T05:00:00.000Z');
    expect(
      dataOf(
        given(events).when(purchase('o1', 1_000), ctx('2027-01-01T05:00:00.000Z', west)).events(),
        'PurchaseRecorded',
      ).lot?.expiresAt,
    ).toBe('2029-01-01T05:00:00.000Z');
  });
});

describe('several partial refunds summing exactly to T, R from a redemption and a capture', () => {
  // T = 10,000 fen, P = 100; R = 7 redeemed + 5 captured (of 9 held) naming o1 = 12.
  const events = history([
    [T0, register()],
    [T0, purchase('o1', 10_000)],
    [T0, redeem('o1', 7)],
    [T0, hold('h1', 'o1', 9)],
    [T0, capture('h1', 5)],
  ]);

  it('reverses 33 + 33 + 34 = P and restores 3 + 4 + 5 = R, ending at zero, then refuses 1 fen more', () => {
    let all = events;
    const results = [3_333, 3_333, 3_334].map((amountFen, index) => {
      const when = given(all).when(refund(`r${index}`, 'o1', amountFen), ctx(T1));
      all = [...all, ...when.events()];
      const data = dataOf(when.events(), 'PurchaseRefunded');
      return [data.pointsReversed, data.pointsRestored, data.balanceAfter];
    });
    expect(results).toEqual([
      [33, 3, 58],
      [33, 4, 29],
      [34, 5, 0],
    ]);
    given(all)
      .when(refund('r9', 'o1', 1), ctx(T1))
      .then('refund-exceeds-order');
  });

  it('refuses a refund that would take the cumulative amount past T, changing nothing', () => {
    const first = given(events)
      .when(refund('r1', 'o1', 3_333), ctx(T1))
      .events();
    const when = given([...events, ...first]).when(refund('r2', 'o1', 6_668), ctx(T1));
    expect(when.error()).toMatchObject({
      code: 'refund-exceeds-order',
      extra: { orderId: 'o1', totalFen: 10_000, refundableFen: 6_667 },
    });
    given([...events, ...first])
      .when(refund('r2', 'o1', 6_667), ctx(T1))
      .events();
  });
});

describe('a restored lot from an older lot is consumed first', () => {
  // 30 points earned in 2025 (expire at the start of 2027 local), 100 in 2026 on o1 (start of 2028).
  // 20 redeemed naming o1 come from the 2025 lot only. A full refund of o1 reverses 100 and restores 20
  // into a lot that expires with the 2025 lot, which is then the soonest to expire.
  const events = history([
    ['2025-06-01T02:00:00.000Z', register()],
    ['2025-06-01T02:00:00.000Z', purchase('old', 3_000, { lotId: 'z-old' })],
    [T0, purchase('o1', 10_000, { lotId: 'a-new' })],
    [T0, redeem('o1', 20)],
  ]);
  const refunded = given(events).when(refund('r1', 'o1', 10_000), ctx(T1));

  it('restores into a lot expiring no sooner than the lot the redeemed points came from', () => {
    expect(dataOf(refunded.events(), 'PurchaseRefunded')).toMatchObject({
      pointsReversed: 100,
      reversedConsumed: [
        { lotId: 'z-old', points: 10 },
        { lotId: 'a-new', points: 90 },
      ],
      pointsRestored: 20,
      restoredLot: { lotId: 'lot-r1', points: 20, expiresAt: '2026-12-31T16:00:00.000Z' },
      balanceAfter: 30,
    });
  });

  it('is consumed first by a debit adjustment, a capture and an expiry run', () => {
    const after = [...events, ...refunded.events()];
    expect(dataOf(given(after).when(adjust('a1', -25), ctx(T1)).events(), 'PointsAdjusted').consumed).toEqual(
      [
        { lotId: 'lot-r1', points: 20 },
        { lotId: 'a-new', points: 5 },
      ],
    );
    const held = [
      ...after,
      ...given(after)
        .when(hold('h1', 'o2', 25), ctx(T1))
        .events(),
    ];
    expect(dataOf(given(held).when(capture('h1', 21), ctx(T1)).events(), 'HoldCaptured').consumed).toEqual([
      { lotId: 'lot-r1', points: 20 },
      { lotId: 'a-new', points: 1 },
    ]);
    const newYear2027 = '2026-12-31T16:00:00.000Z';
    expect(
      dataOf(
        given(after)
          .when({ type: 'ExpireLots', data: { asOf: newYear2027 } }, ctx(newYear2027))
          .events(),
        'LotsExpired',
      ),
    ).toMatchObject({ lots: [{ lotId: 'lot-r1', points: 20 }], points: 20, balanceAfter: 10 });
  });
});

describe('the instant a hold expires', () => {
  const placed = history([
    [T0, register()],
    [T0, purchase('o1', 10_000)],
    [T0, hold('h1', 'o9', 100, 60)],
  ]);
  const expiresAt = addSecondsIso(T0, 60);
  const justBefore = '2026-03-01T02:00:59.999Z';

  it('holds everything a millisecond before, and frees everything at expiresAt', () => {
    given(placed).when(redeem('o8', 1), ctx(justBefore)).then('insufficient-points');
    given(placed)
      .when(hold('h2', 'o8', 1), ctx(justBefore))
      .then('insufficient-points');
    given(placed).when(capture('h1'), ctx(expiresAt)).then('hold-not-active');
    given(placed).when(release('h1'), ctx(expiresAt)).then('hold-not-active');
    const when = given(placed).when(hold('h2', 'o8', 100), ctx(expiresAt));
    expect(when.events()).toEqual([
      { type: 'HoldReleased', data: { holdId: 'h1', points: 100, reason: 'expired', at: expiresAt } },
      expect.objectContaining({
        type: 'PointsHeld',
        data: expect.objectContaining({ holdId: 'h2', points: 100 }),
      }),
    ]);
    if (!when.state.registered) throw new Error('unregistered');
    expect(memberView(when.state, expiresAt)).toMatchObject({ balance: 100, held: 100, available: 0 });
  });

  it('a partial capture returns the rest to available at once', () => {
    const when = given(placed).when(capture('h1', 40), ctx(justBefore));
    if (!when.state.registered) throw new Error('unregistered');
    expect(memberView(when.state, justBefore)).toMatchObject({ balance: 60, held: 0, available: 60 });
    given(placed.concat(when.events())).when(redeem('o8', 61), ctx(justBefore)).then('insufficient-points');
  });
});
