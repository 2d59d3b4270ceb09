import { describe, expect, it } from 'vitest';
import { addDaysIso } from '../time.ts';
import type { AdjustPoints } from './commands.ts';
import { adjust, ctx, given, history, hold, purchase, register } from './testing.ts';

const T0 = '2026-03-01T02:00:00.000Z';
const T1 = '2026-03-02T02:00:00.000Z';
const funded = history([
  [T0, register()],
  [T0, purchase('o1', 10_000)],
]);

describe('AdjustPoints', () => {
  it('credits a lot that expires like points earned now, recording reason, ticket and actor', () => {
    const command: AdjustPoints = {
      type: 'AdjustPoints',
      data: {
        adjustmentId: 'a1',
        points: 25,
        reason: 'missed scan',
        ticket: 'SUP-42',
        actor: 'agent-7',
        lotId: 'lot-a1',
      },
    };
    given(funded)
      .when(command, ctx(T1))
      .then([
        {
          type: 'PointsAdjusted',
          data: {
            adjustmentId: 'a1',
            points: 25,
            reason: 'missed scan',
            ticket: 'SUP-42',
            actor: 'agent-7',
            consumed: [],
            lot: { lotId: 'lot-a1', points: 25, expiresAt: '2027-12-31T16:00:00.000Z' },
            debtRepaid: 0,
            balanceAfter: 125,
            at: T1,
          },
        },
      ]);
  });

  it('debits by consuming lots', () => {
    const [adjusted] = given(funded)
      .when(adjust('a1', -40, 'duplicate purchase'), ctx(T1))
      .events();
    expect(adjusted?.data).toMatchObject({
      points: -40,
      consumed: [{ lotId: 'lot-o1', points: 40 }],
      lot: null,
      balanceAfter: 60,
    });
  });

  it('answers insufficient-points for a debit past available', () => {
    given(funded).when(adjust('a1', -101), ctx(T1)).then('insufficient-points');
    const held = [
      ...funded,
      ...given(funded)
        .when(hold('h1', 'o9', 90), ctx(T1))
        .events(),
    ];
    given(held).when(adjust('a1', -11), ctx(T1)).then('insufficient-points');
    given(held).when(adjust('a1', -10), ctx(T1)).events();
  });

  it('answers adjustment-already-recorded for a known adjustmentId', () => {
    const first = given(funded).when(adjust('a1', 5), ctx(T1)).events();
    given([...funded, ...first])
      .when(adjust('a1', 5), ctx(T1))
      .then('adjustment-already-recorded');
    given([...funded, ...first])
      .when(adjust('a1', -5), ctx(addDaysIso(T1, 364)))
      .then('adjustment-already-recorded');
  });

  it('validates points, reason and actor', () => {
    given(funded).when(adjust('a1', 0), ctx(T1)).then('validation-failed');
    given(funded).when(adjust('a1', 100_000_001), ctx(T1)).then('validation-failed');
    given(funded).when(adjust('a1', -100_000_001), ctx(T1)).then('validation-failed');
    given(funded).when(adjust('a1', 1.5), ctx(T1)).then('validation-failed');
    given(funded)
      .when(adjust('a1', 1, ''), ctx(T1))
      .then('validation-failed');
    given(funded)
      .when(adjust('a1', 1, 'x'.repeat(501)), ctx(T1))
      .then('validation-failed');
    given(funded)
      .when(adjust('a1', 1, 'x'.repeat(500)), ctx(T1))
      .events();
    const noActor = adjust('a1', 1);
    given(funded)
      .when({ ...noActor, data: { ...noActor.data, actor: '' } }, ctx(T1))
      .then('validation-failed');
  });
});
