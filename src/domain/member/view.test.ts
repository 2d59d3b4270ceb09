import { describe, expect, it } from 'vitest';
import { addSecondsIso } from '../time.ts';
import { fold, history, hold, purchase, redeem, register } from './testing.ts';
import { memberView } from './view.ts';

const T2025 = '2025-06-01T02:00:00.000Z';
const T0 = '2026-03-01T02:00:00.000Z';

describe('memberView', () => {
  const state = fold(
    history([
      [T2025, register()],
      [T2025, purchase('a', 1_000)],
      [T2025, purchase('b', 2_000)],
      [T0, purchase('c', 5_000)],
      [T0, redeem('x', 5)],
      [T0, hold('h1', 'x', 7, 60)],
    ]),
  );

  it('groups open lots by expiry, soonest first, and subtracts active holds', () => {
    if (!state.registered) throw new Error('unregistered');
    expect(memberView(state, T0)).toEqual({
      balance: 75,
      held: 7,
      available: 68,
      tier: 'standard',
      expiring: [
        { points: 25, expiresAt: '2026-12-31T16:00:00.000Z' },
        { points: 50, expiresAt: '2027-12-31T16:00:00.000Z' },
      ],
    });
  });

  it('stops counting a hold at its expiry', () => {
    if (!state.registered) throw new Error('unregistered');
    expect(memberView(state, addSecondsIso(T0, 60))).toMatchObject({ held: 0, available: 75 });
  });
});
