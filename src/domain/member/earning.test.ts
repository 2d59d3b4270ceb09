import { describe, expect, it } from 'vitest';
import { ORDER_LINES_MAX } from '../limits.ts';
import { ctx, given, history, line, purchase, redeem, refund, register, STORE, tenant } from './testing.ts';

const T0 = '2026-03-01T02:00:00.000Z';
/** Lots earned in 2026 (Shanghai) expire at the first instant of 2028 there. */
const EXPIRES_2026_LOTS = '2027-12-31T16:00:00.000Z';
const registered = history([[T0, register()]]);

describe('RecordPurchase', () => {
  it('earns floor(eligible x pointsPerYuan x multiplier / 100000) in one lot', () => {
    given(registered)
      .when(purchase('o1', [line(12_345)]), ctx(T0))
      .then([
        {
          type: 'PurchaseRecorded',
          data: {
            orderId: 'o1',
            storeId: STORE,
            totalFen: 12_345,
            eligibleFen: 12_345,
            categories: ['otc'],
            tier: 'standard',
            multiplierPermille: 1000,
            pointsPerYuan: 1,
            programmeVersion: 1,
            refundWindowDays: 365,
            points: 123,
            lot: { lotId: 'lot-o1', points: 123, expiresAt: EXPIRES_2026_LOTS },
            debtRepaid: 0,
            balanceAfter: 123,
            at: T0,
          },
        },
      ]);
  });

  it('leaves out insurance-paid parts and excluded categories, but T counts every line', () => {
    const programme = tenant({ programme: { excludedCategories: ['rx'], pointsPerYuan: 2 } });
    const [recorded] = given(registered)
      .when(
        purchase('o1', [
          line(10_000, { category: 'otc', insuranceFen: 3_000 }),
          line(5_000, { category: 'rx', sku: 'sku-2' }),
          line(999, { category: 'device', sku: 'sku-3', quantity: 3 }),
        ]),
        ctx(T0, programme),
      )
      .events();
    expect(recorded?.type === 'PurchaseRecorded' && recorded.data).toMatchObject({
      totalFen: 15_999,
      eligibleFen: 7_999,
      categories: ['device', 'otc', 'rx'],
      pointsPerYuan: 2,
      points: 159, // floor(7999 x 2 x 1000 / 100000) = floor(159.98)
    });
  });

  it('still records a purchase that earns nothing, without a lot', () => {
    const [recorded] = given(registered).when(purchase('o1', 99), ctx(T0)).events();
    expect(recorded?.type === 'PurchaseRecorded' && recorded.data).toMatchObject({
      points: 0,
      lot: null,
      balanceAfter: 0,
    });
  });

  it('answers order-already-recorded for the same orderId', () => {
    const events = history([
      [T0, register()],
      [T0, purchase('o1', 1_000)],
    ]);
    given(events)
      .when(purchase('o1', 1_000, { lotId: 'other' }), ctx(T0))
      .then('order-already-recorded');
  });

  it('rejects insurance beyond the line amount, with the path of the line', () => {
    const error = given(registered)
      .when(purchase('o1', [line(100), line(100, { insuranceFen: 101 })]), ctx(T0))
      .error();
    expect(error.code === 'validation-failed' && error.extra.errors).toEqual([
      { path: 'lines.1.insuranceFen', message: 'must not exceed amountFen' },
    ]);
  });

  it('rejects empty, oversized and negative orders', () => {
    given(registered).when(purchase('o1', []), ctx(T0)).then('validation-failed');
    given(registered)
      .when(
        purchase(
          'o1',
          Array.from({ length: ORDER_LINES_MAX + 1 }, () => line(1)),
        ),
        ctx(T0),
      )
      .then('validation-failed');
    given(registered)
      .when(purchase('o1', [line(600_000_000), line(600_000_000)]), ctx(T0))
      .then('validation-failed');
    given(registered)
      .when(purchase('o1', [line(-1)]), ctx(T0))
      .then('validation-failed');
    given(registered)
      .when(purchase('o1', [line(1.5)]), ctx(T0))
      .then('validation-failed');
    given(registered)
      .when(purchase('o1', [line(100, { quantity: 0 })]), ctx(T0))
      .then('validation-failed');
  });

  it('accepts occurredAt up to 300 s ahead of the ledger, normalised to UTC, and rejects more', () => {
    const [recorded] = given(registered)
      .when(purchase('o1', 100, { occurredAt: '2026-03-01T10:05:00+08:00' }), ctx(T0))
      .events();
    expect(recorded?.type === 'PurchaseRecorded' && recorded.data.occurredAt).toBe(
      '2026-03-01T02:05:00.000Z',
    );
    given(registered)
      .when(purchase('o1', 100, { occurredAt: '2026-03-01T02:05:00.001Z' }), ctx(T0))
      .then('validation-failed');
    given(registered)
      .when(purchase('o1', 100, { occurredAt: 'yesterday' }), ctx(T0))
      .then('validation-failed');
  });

  it('dates the lot from the recording time, not occurredAt (a late upload cannot backdate expiry)', () => {
    // Sold at 23:00 on 31 Dec 2025 local, uploaded on 2 Jan 2026: the lot is a 2026 lot.
    const [recorded] = given(registered)
      .when(
        purchase('o1', 1_000, { occurredAt: '2025-12-31T15:00:00.000Z' }),
        ctx('2026-01-02T01:00:00.000Z'),
      )
      .events();
    expect(recorded?.type === 'PurchaseRecorded' && recorded.data.lot?.expiresAt).toBe(EXPIRES_2026_LOTS);
  });

  it('earns at 23:59:59 on 31 December local into the old year (Asia/Shanghai)', () => {
    const lateEvening = '2025-12-31T15:59:59.000Z';
    const events = history([[lateEvening, register()]]);
    const [recorded] = given(events).when(purchase('o1', 1_000), ctx(lateEvening)).events();
    expect(recorded?.type === 'PurchaseRecorded' && recorded.data.lot?.expiresAt).toBe(
      '2026-12-31T16:00:00.000Z',
    );
  });

  it('earns at 23:59:59.999 on 31 December local into the old year in a DST zone (America/New_York)', () => {
    const newYork = tenant({ timeZone: 'America/New_York' });
    // 2025-12-31 23:59:59.999 EST is 2026-01-01 04:59:59.999 UTC: a 2025 lot, usable through 2026.
    const lateEvening = '2026-01-01T04:59:59.999Z';
    const events = history([[lateEvening, register()]], newYork);
    const [recorded] = given(events).when(purchase('o1', 1_000), ctx(lateEvening, newYork)).events();
    expect(recorded?.type === 'PurchaseRecorded' && recorded.data.lot?.expiresAt).toBe(
      '2027-01-01T05:00:00.000Z',
    );
    const [next] = given(events)
      .when(purchase('o1', 1_000), ctx('2026-01-01T05:00:00.000Z', newYork))
      .events();
    expect(next?.type === 'PurchaseRecorded' && next.data.lot?.expiresAt).toBe('2028-01-01T05:00:00.000Z');
  });

  it('repays debt first and keeps only the rest in the lot', () => {
    // Earn 100 on o1, spend 100 on o2, refund o1 in full: the reversal leaves a debt of 100.
    const inDebt = history([
      [T0, register()],
      [T0, purchase('o1', 10_000)],
      [T0, redeem('o2', 100)],
      [T0, refund('r1', 'o1', 10_000)],
    ]);
    const first = given(inDebt).when(purchase('o3', 5_000), ctx(T0));
    expect(first.events()).toEqual([
      expect.objectContaining({
        type: 'PurchaseRecorded',
        data: expect.objectContaining({
          points: 50,
          lot: { lotId: 'lot-o3', points: 50, expiresAt: EXPIRES_2026_LOTS },
          debtRepaid: 50,
          balanceAfter: -50,
        }),
      }),
    ]);
    expect(first.state.registered && first.state.lots).toEqual([]);

    const second = given([...inDebt, ...first.events()]).when(purchase('o4', 10_000), ctx(T0));
    expect(second.events()[0]?.data).toMatchObject({ points: 100, debtRepaid: 50, balanceAfter: 50 });
    expect(second.state.registered && second.state.lots).toEqual([
      { lotId: 'lot-o4', points: 100, remaining: 50, expiresAt: EXPIRES_2026_LOTS, earnedAt: T0 },
    ]);
  });

  it('rejects a lotId that names an open lot', () => {
    const events = history([
      [T0, register()],
      [T0, purchase('o1', 1_000)],
    ]);
    given(events)
      .when(purchase('o2', 1_000, { lotId: 'lot-o1' }), ctx(T0))
      .then('validation-failed');
  });
});
