import { describe, expect, it } from 'vitest';
import { addDaysIso } from '../time.ts';
import { ctx, given, history, purchase, refund, register, tenant } from './testing.ts';

const T0 = '2026-03-01T02:00:00.000Z';

describe('tiers', () => {
  it('earns at the tier held before the purchase, then moves up', () => {
    const events = history([[T0, register()]]);
    const when = given(events).when(purchase('o1', 250_000), ctx(T0));
    expect(when.events()).toEqual([
      expect.objectContaining({
        type: 'PurchaseRecorded',
        data: expect.objectContaining({ tier: 'standard', multiplierPermille: 1000, points: 2_500 }),
      }),
      { type: 'TierChanged', data: { from: 'standard', to: 'silver', spendFen: 250_000, at: T0 } },
    ]);
    const next = given([...events, ...when.events()])
      .when(purchase('o2', 10_000), ctx(T0))
      .events();
    expect(next).toEqual([
      expect.objectContaining({
        data: expect.objectContaining({ tier: 'silver', multiplierPermille: 1200, points: 120 }),
      }),
    ]);
  });

  it('counts only the last 365 days, and moves down when spend falls out of the window', () => {
    const events = history([
      [T0, register()],
      [T0, purchase('o1', 250_000)],
    ]);
    // Exactly 365 days later the purchase has left the window.
    const later = addDaysIso(T0, 365);
    expect(given(events).when(purchase('o2', 100), ctx(later)).events()).toEqual([
      expect.objectContaining({ data: expect.objectContaining({ tier: 'silver', points: 1 }) }),
      { type: 'TierChanged', data: { from: 'silver', to: 'standard', spendFen: 100, at: later } },
    ]);
    // A millisecond earlier it still counts.
    const justBefore = '2027-03-01T01:59:59.999Z';
    expect(given(events).when(purchase('o2', 100), ctx(justBefore)).events()).toHaveLength(1);
  });

  it('reaches gold and takes refunds off the spend in proportion', () => {
    const events = history([
      [T0, register()],
      [T0, purchase('o1', 1_000_000)],
      [T0, refund('r1', 'o1', 400_000)],
    ]);
    // Spend: 1,000,000 - floor(1,000,000 x 400,000 / 1,000,000) + 1,000 = 601,000 -> silver.
    expect(given(events).when(purchase('o2', 1_000), ctx(T0)).events()).toEqual([
      expect.objectContaining({
        data: expect.objectContaining({ tier: 'gold', multiplierPermille: 1500, points: 15 }),
      }),
      { type: 'TierChanged', data: { from: 'gold', to: 'silver', spendFen: 601_000, at: T0 } },
    ]);
  });

  it('counts eligible spend only', () => {
    const programme = tenant({ programme: { excludedCategories: ['rx'] } });
    const events = history([[T0, register()]], programme);
    expect(
      given(events)
        .when(
          purchase('o1', [{ sku: 'x', category: 'rx', quantity: 1, amountFen: 300_000 }]),
          ctx(T0, programme),
        )
        .events(),
    ).toHaveLength(1);
  });

  it('falls back to the tier the spend reaches when a programme change removed the member tier', () => {
    const events = history([
      [T0, register()],
      [T0, purchase('o1', 250_000)],
    ]);
    const renamed = tenant({
      programme: {
        version: 2,
        tiers: [
          { name: 'basic', minSpendFen: 0, multiplierPermille: 1000 },
          { name: 'plus', minSpendFen: 100_000, multiplierPermille: 2000 },
        ],
      },
    });
    expect(given(events).when(purchase('o2', 10_000), ctx(T0, renamed)).events()).toEqual([
      expect.objectContaining({
        data: expect.objectContaining({
          tier: 'plus',
          multiplierPermille: 2000,
          programmeVersion: 2,
          points: 200,
        }),
      }),
      { type: 'TierChanged', data: { from: 'silver', to: 'plus', spendFen: 260_000, at: T0 } },
    ]);
  });
});
