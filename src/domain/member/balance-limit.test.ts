import { describe, expect, it } from 'vitest';
import { BALANCE_POINTS_MAX } from '../limits.ts';
import type { MemberCommand } from './commands.ts';
import { decideMember } from './decider.ts';
import { adjust, ctx, fold, history, line, purchase, redeem, refund, register } from './testing.ts';

const T0 = '2026-03-01T02:00:00.000Z';
const T1 = '2026-03-05T02:00:00.000Z';

/**
 * Every credit stops at BALANCE_POINTS_MAX with a refusal that changes nothing, naming the field that asked
 * for the points (lots.ts balanceLimitExceeded), instead of tripping the state's assertion after the fact.
 */
describe('credits at the balance limit', () => {
  // o1 earned nothing (insurance paid it all) and had 10 points redeemed against it: a full refund restores 10.
  const state = fold(
    history([
      [T0, register()],
      [T0, purchase('o1', [line(10_000, { insuranceFen: 10_000 })])],
      [T0, adjust('a1', 100)],
      [T0, redeem('o1', 10)],
    ]),
  );
  if (!state.registered) throw new Error('not registered');
  const [lot] = state.lots;
  /** The member with `balance` points in its one lot. */
  const withBalance = (balance: number) => ({
    ...state,
    balance,
    lots: [{ ...lot!, points: balance, remaining: balance }],
  });

  it.each([
    ['a purchase', purchase('o2', 10_000), 100, 'lines'],
    ['a credit adjustment', adjust('a2', 100), 100, 'points'],
    ["a refund's restore", refund('r1', 'o1', 10_000), 10, 'amountFen'],
  ] as [string, MemberCommand, number, string][])(
    '%s past the limit is refused on its field; up to the limit it is accepted',
    (_name, command, credited, field) => {
      const refused = decideMember(command, withBalance(BALANCE_POINTS_MAX - credited + 1), ctx(T1));
      expect(refused.ok).toBe(false);
      if (!refused.ok) {
        expect(refused.error.code).toBe('validation-failed');
        expect(refused.error.detail).toMatch(new RegExp(`^${field}: the balance would exceed`));
      }
      expect(decideMember(command, withBalance(BALANCE_POINTS_MAX - credited), ctx(T1)).ok).toBe(true);
    },
  );
});
