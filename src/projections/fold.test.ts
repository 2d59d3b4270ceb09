import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { simulateMember } from '../../scripts/generate-history.ts';
import { memberStreamId } from '../commands/streams.ts';
import { InvariantViolation } from '../domain/assert.ts';
import type { MemberEvent } from '../domain/member/index.ts';
import type { RecordedEvent } from '../eventstore/port.ts';
import { BatchFold, planLoads, type LoadedRows } from './fold.ts';
import {
  evaluateTags,
  TAG_RECENT_PURCHASES_MAX,
  validateTagRules,
  withPurchase,
  type CategoryPurchases,
} from './tags.ts';

const tenantId = 't';

function recorded(
  memberId: string,
  events: readonly MemberEvent[],
  firstVersion = 1,
  firstPosition = 1,
): RecordedEvent[] {
  return events.map((event, index) => ({
    eventId: `e-${firstVersion + index}`,
    type: event.type,
    data: event.data,
    metadata: { tenantId, recordedAt: event.data.at },
    tenantId,
    streamId: memberStreamId(memberId),
    streamVersion: firstVersion + index,
    partition: 0,
    position: firstPosition + index,
    recordedAt: event.data.at,
    streamHash: `h${firstVersion + index}`,
    partitionHash: '',
    dataJson: '',
    metadataJson: '',
  }));
}

const empty = (): LoadedRows => ({ accounts: new Map(), lots: new Map(), categories: new Map() });
const fold = (loaded = empty()) =>
  new BatchFold({ tenantId, partition: 0, rules: [], localDay: (at) => at.slice(0, 10) }, loaded);

describe('batch fold', () => {
  const member = simulateMember({ tenantId, seed: 99, eventsPerMember: 60, stores: 3 }, 0);
  const events = recorded(member.memberId, member.events);

  it('folds a whole history in one batch with every check passing', () => {
    const batch = fold();
    for (const event of events) batch.apply(event);
    const writes = batch.writes();
    expect(writes.accounts).toHaveLength(1);
    expect(writes.accounts[0]!.version).toBe(events.length);
    expect(writes.memberEvents).toBe(events.length);
    expect(writes.totals.reduce((sum, total) => sum + total.points, 0)).toBe(0);
  });

  it('refuses an event applied twice or a skipped one (the stored version must be exactly one behind)', () => {
    const first = fold();
    for (const event of events.slice(0, 10)) first.apply(event);
    const account = first.writes().accounts[0]!;
    const loaded = empty();
    loaded.accounts.set(member.memberId, account);
    expect(() => fold(loaded).apply(events[9]!)).toThrow(InvariantViolation); // again
    expect(() => fold(loaded).apply(events[11]!)).toThrow(InvariantViolation); // skips v11
  });

  it('plans reads of exactly the lots a batch debits and the purchasers', () => {
    const plan = planLoads(events);
    expect(plan.members).toEqual([member.memberId]);
    expect(plan.purchasers).toEqual(
      member.events.some((e) => e.type === 'PurchaseRecorded') ? [member.memberId] : [],
    );
  });
});

describe('tags', () => {
  const rule = { category: 'diabetes', minPurchases: 2, windowDays: 90, tagPattern: 'chronic:{category}' };
  const history = (times: string[]) =>
    times.reduce((row, at) => withPurchase(row, at), {
      category: 'diabetes',
      purchases: 0,
      recentAt: [] as readonly string[],
    });

  it('tags two purchases within the window until the older leaves it', () => {
    const row = history(['2026-01-01T00:00:00.000Z', '2026-03-01T00:00:00.000Z']);
    expect([...evaluateTags([row], [rule])]).toEqual([['chronic:diabetes', '2026-04-01T00:00:00.000Z']]);
  });

  it('does not tag purchases further apart than the window, nor a single purchase', () => {
    expect(
      evaluateTags([history(['2026-01-01T00:00:00.000Z', '2026-05-01T00:00:00.000Z'])], [rule]).size,
    ).toBe(0);
    expect(evaluateTags([history(['2026-01-01T00:00:00.000Z'])], [rule]).size).toBe(0);
  });

  it('keeps the latest purchases, newest first, bounded', () => {
    const times = Array.from(
      { length: 15 },
      (_, i) => `2026-01-${String(i + 1).padStart(2, '0')}T00:00:00.000Z`,
    );
    const row = history([...times].reverse());
    expect(row.purchases).toBe(15);
    expect(row.recentAt).toHaveLength(10);
    expect(row.recentAt[0]).toBe(times[14]);
  });

  it('keeps the newest TAG_RECENT_PURCHASES_MAX times, newest first, whatever order purchases arrive in', () => {
    const instant = fc
      .integer({ min: Date.UTC(2020, 0, 1), max: Date.UTC(2030, 0, 1) })
      .map((ms) => new Date(ms).toISOString());
    const newestFirst = (a: string, b: string) => (a < b ? 1 : a > b ? -1 : 0);
    fc.assert(
      fc.property(fc.array(instant, { minLength: 1, maxLength: 40, size: 'large' }), (times) => {
        // After every purchase, not only the last: the list must be right at each step.
        let row: CategoryPurchases = { category: 'diabetes', purchases: 0, recentAt: [] };
        times.forEach((at, index) => {
          row = withPurchase(row, at);
          const model = times
            .slice(0, index + 1)
            .sort(newestFirst)
            .slice(0, TAG_RECENT_PURCHASES_MAX);
          expect(row.recentAt).toEqual(model);
          expect(row.purchases).toBe(index + 1);
        });
      }),
    );
  });

  it('validates rules', () => {
    expect(() => validateTagRules([{ ...rule, minPurchases: 11 }])).toThrow(RangeError);
    expect(() => validateTagRules([{ ...rule, tagPattern: 'x {y}' }])).toThrow(RangeError);
    expect(() => validateTagRules([rule, rule])).toThrow(RangeError);
    expect(() => validateTagRules([rule, { ...rule, category: '*' }])).not.toThrow();
  });
});
