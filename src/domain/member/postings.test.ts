import { describe, expect, it } from 'vitest';
import { MEMBER_EVENT_TYPES, type MemberEvent } from './events.ts';
import { movementsOf } from './movements.ts';
import { memberPointsDelta, POSTING_EVENT_TYPES, postingsFor } from './postings.ts';
import {
  adjust,
  capture,
  expire,
  history,
  hold,
  purchase,
  redeem,
  refund,
  register,
  release,
} from './testing.ts';

const T0 = '2025-06-01T02:00:00.000Z';
const T1 = '2026-12-31T16:00:00.000Z';

/** One of every kind of event that moves points, and some that do not. */
const events: MemberEvent[] = history([
  [T0, register()],
  [T0, purchase('o1', 10_000)],
  [T0, purchase('o0', 50)],
  [T0, hold('h1', 'o1', 30)],
  [T0, capture('h1', 20)],
  [T0, hold('h2', 'o1', 5)],
  [T0, release('h2')],
  [T0, redeem('o1', 10)],
  [T0, refund('r1', 'o1', 5_000)],
  [T0, adjust('a1', 7)],
  [T0, adjust('a2', -2)],
  [T0, refund('r2', 'o1', 5_000)],
  [T1, expire(T1)],
  [T1, purchase('o2', 1_000)],
]);

describe('postingsFor', () => {
  it('posts for exactly the POSTING_EVENT_TYPES: every other type has neither postings nor movements', () => {
    const posting = new Set<string>(POSTING_EVENT_TYPES);
    for (const type of POSTING_EVENT_TYPES)
      expect(
        events.some((event) => event.type === type && postingsFor(event).length > 0),
        type,
      ).toBe(true);
    const others = MEMBER_EVENT_TYPES.filter((type) => !posting.has(type));
    expect(others.length + POSTING_EVENT_TYPES.length).toBe(MEMBER_EVENT_TYPES.length);
    for (const type of others) {
      // Whatever the data: these types never post.
      const event = { type, data: {} } as MemberEvent;
      expect(postingsFor(event), type).toEqual([]);
      expect(movementsOf(event), type).toEqual([]);
    }
  });

  it('maps each movement to a pair between the member and one tenant account', () => {
    const byType = (type: MemberEvent['type']) =>
      events.filter((event) => event.type === type).map(postingsFor);
    expect(byType('PurchaseRecorded')).toEqual([
      [
        { account: 'member', points: 100 },
        { account: 'issued', points: -100 },
      ],
      [],
      [
        { account: 'member', points: 10 },
        { account: 'issued', points: -10 },
      ],
    ]);
    expect(byType('HoldCaptured')).toEqual([
      [
        { account: 'member', points: -20 },
        { account: 'redeemed', points: 20 },
      ],
    ]);
    expect(byType('PointsRedeemed')).toEqual([
      [
        { account: 'member', points: -10 },
        { account: 'redeemed', points: 10 },
      ],
    ]);
    expect(byType('PurchaseRefunded')[0]).toEqual([
      { account: 'member', points: -50 },
      { account: 'reversed', points: 50 },
      { account: 'member', points: 15 },
      { account: 'restored', points: -15 },
    ]);
    expect(byType('PointsAdjusted')).toEqual([
      [
        { account: 'member', points: 7 },
        { account: 'adjusted', points: -7 },
      ],
      [
        { account: 'member', points: -2 },
        { account: 'adjusted', points: 2 },
      ],
    ]);
    expect(byType('LotsExpired')).toHaveLength(1);
    expect(byType('LotsExpired')[0]?.[1]?.account).toBe('expired');
    for (const type of ['MemberRegistered', 'PointsHeld', 'HoldReleased'] as const) {
      expect(byType(type).flat()).toEqual([]);
    }
  });

  it('sums to zero per event, and the member side replays every balanceAfter', () => {
    let balance = 0;
    for (const event of events) {
      expect(postingsFor(event).reduce((total, posting) => total + posting.points, 0)).toBe(0);
      balance += memberPointsDelta(event);
      if ('balanceAfter' in event.data) expect(event.data.balanceAfter).toBe(balance);
    }
  });
});

describe('movementsOf', () => {
  it('lists ledger entries with signed points and running balances', () => {
    const movements = events.flatMap(movementsOf);
    expect(movements.map((movement) => [movement.kind, movement.points, movement.balanceAfter])).toEqual([
      ['earned', 100, 100],
      ['redeemed', -20, 80],
      ['redeemed', -10, 70],
      ['reversed', -50, 20],
      ['restored', 15, 35],
      ['adjusted', 7, 42],
      ['adjusted', -2, 40],
      ['reversed', -50, -10],
      ['restored', 15, 5],
      ['expired', -5, 0],
      ['earned', 10, 10],
    ]);
    expect(movements[3]).toMatchObject({ suffix: '', orderId: 'o1' });
    expect(movements[4]).toMatchObject({ suffix: 'restored', orderId: 'o1' });
    expect(movements[5]).toMatchObject({ reason: 'goodwill' });
  });
});
