/**
 * Property test: random command sequences with random time advances (purchases, holds, partial
 * captures, releases, redemptions, partial and repeated refunds of partly redeemed orders,
 * adjustments, expiry runs, holds running out). After every step the DESIGN.md invariants must hold:
 * 2 (balance = sum of member postings; available >= 0 except after a reversal), 3 (each event's
 * postings sum to zero), 4 (open lots sum to the balance when it is not negative); every number is a
 * safe integer; and replaying the events from the initial state reproduces the state exactly.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DOMAIN_ERROR_STATUS } from '../errors.ts';
import type { ProgrammeInput } from '../programme.ts';
import { addSecondsIso } from '../time.ts';
import type { MemberCommand } from './commands.ts';
import type { MemberContext } from './context.ts';
import { decideMember, evolveMember, initialMemberState } from './decider.ts';
import type { MemberEvent } from './events.ts';
import { memberPointsDelta, postingsFor } from './postings.ts';
import type { MemberState } from './state.ts';
import { availablePoints, lotsPoints } from './state.ts';
import { register, tenant } from './testing.ts';

/**
 * Specs name ids indirectly: `target` picks among the ids the run has already used (latest first), so
 * captures, releases, refunds and retries mostly hit real holds and orders; `fresh` asks for a new id.
 */
type Spec =
  | {
      kind: 'purchase';
      fresh: boolean;
      target: number;
      lines: { amountFen: number; insurancePermille: number; category: string }[];
    }
  | {
      kind: 'hold';
      fresh: boolean;
      target: number;
      orderTarget: number;
      points: number;
      ttlSeconds: number | undefined;
    }
  | { kind: 'capture'; target: number; points: number | undefined }
  | { kind: 'release'; target: number }
  | { kind: 'redeem'; fresh: boolean; target: number; points: number }
  | { kind: 'refund'; fresh: boolean; target: number; orderTarget: number; amountFen: number }
  | { kind: 'adjust'; fresh: boolean; target: number; points: number }
  | { kind: 'expire'; backSeconds: number };

const STEPS_MIN = 10;
const STEPS_MAX = 60;
const RUNS = 300;

/** Mostly the latest id, so a capture usually finds the hold just placed. */
const targetArb = fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 2, arbitrary: fc.nat(3) });
const mostlyArb = (trueWeight: number) =>
  fc.oneof(
    { weight: trueWeight, arbitrary: fc.constant(true) },
    { weight: 1, arbitrary: fc.constant(false) },
  );
const pointsArb = fc.oneof(fc.integer({ min: 1, max: 50 }), fc.integer({ min: 1, max: 400 }));

const specArb: fc.Arbitrary<Spec> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('purchase' as const),
      fresh: mostlyArb(5),
      target: targetArb,
      lines: fc.array(
        fc.record({
          amountFen: fc.oneof(fc.integer({ min: 0, max: 3_000 }), fc.integer({ min: 0, max: 120_000 })),
          insurancePermille: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 1000 })),
          category: fc.constantFrom('otc', 'rx', 'device'),
        }),
        { minLength: 1, maxLength: 3 },
      ),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('hold' as const),
      fresh: mostlyArb(8),
      target: targetArb,
      orderTarget: targetArb,
      points: pointsArb,
      ttlSeconds: fc.option(fc.integer({ min: 1, max: 3600 }), { nil: undefined }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('capture' as const),
      target: targetArb,
      points: fc.option(pointsArb, { nil: undefined }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('release' as const), target: targetArb }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('redeem' as const),
      fresh: mostlyArb(1),
      target: targetArb,
      points: pointsArb,
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('refund' as const),
      fresh: mostlyArb(8),
      target: targetArb,
      orderTarget: targetArb,
      amountFen: fc.oneof(fc.integer({ min: 1, max: 5_000 }), fc.integer({ min: 1, max: 150_000 })),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('adjust' as const),
      fresh: mostlyArb(8),
      target: targetArb,
      points: fc.integer({ min: -300, max: 300 }).filter((points) => points !== 0),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('expire' as const),
      backSeconds: fc.constantFrom(0, 3_600, 30 * 86_400, -1),
    }),
  },
);

const DAY_SECONDS = 86_400;
const stepArb = fc.record({
  advanceSeconds: fc.oneof(
    { weight: 8, arbitrary: fc.constant(0) },
    { weight: 6, arbitrary: fc.constantFrom(20, 300, 900, 3_600) },
    { weight: 3, arbitrary: fc.constantFrom(DAY_SECONDS, 7 * DAY_SECONDS, 30 * DAY_SECONDS) },
    { weight: 1, arbitrary: fc.constantFrom(120 * DAY_SECONDS, 400 * DAY_SECONDS) },
  ),
  spec: specArb,
});

const setupArb = fc.record({
  start: fc.constantFrom('2025-12-31T15:58:00.000Z', '2026-06-15T03:00:00.000Z', '2024-02-28T20:00:00.000Z'),
  timeZone: fc.constantFrom('Asia/Shanghai', 'America/New_York'),
  programme: fc.record({
    pointsPerYuan: fc.integer({ min: 1, max: 3 }),
    excludedCategories: fc.constantFrom([], ['rx']),
    expiry: fc.constantFrom({ kind: 'end-of-following-year' as const }, { kind: 'days' as const, days: 30 }),
    clawback: fc.constantFrom('debt' as const, 'cap-at-zero' as const),
    refundWindowDays: fc.constantFrom(30, 365, 500),
  }) satisfies fc.Arbitrary<ProgrammeInput>,
});

/** Ids the run has used, latest last. */
type Known = {
  orderIds: string[];
  purchasedOrderIds: string[];
  holdIds: string[];
  refundIds: string[];
  adjustmentIds: string[];
};

function pick(ids: readonly string[], target: number, fallback: string): string {
  return ids.length === 0 ? fallback : (ids[Math.max(0, ids.length - 1 - target)] as string);
}

function commandFor(spec: Spec, step: number, now: string, known: Known): MemberCommand {
  const lotId = `lot-${step}`;
  switch (spec.kind) {
    case 'purchase':
      return {
        type: 'RecordPurchase',
        data: {
          // Not fresh: an order only redeemed against so far (a late upload), or a duplicate.
          orderId: spec.fresh ? `o${step}` : pick(known.orderIds, spec.target, `o${step}`),
          storeId: 's1',
          lines: spec.lines.map((line, index) => ({
            sku: `sku-${index}`,
            category: line.category,
            quantity: 1,
            amountFen: line.amountFen,
            insuranceFen: Math.floor((line.amountFen * line.insurancePermille) / 1000),
          })),
          lotId,
        },
      };
    case 'hold':
      return {
        type: 'PlaceHold',
        data: {
          holdId: spec.fresh ? `h${step}` : pick(known.holdIds, spec.target, `h${step}`),
          orderId: pick(known.orderIds, spec.orderTarget, `o${step}`),
          storeId: 's1',
          points: spec.points,
          ttlSeconds: spec.ttlSeconds,
        },
      };
    case 'capture':
      return {
        type: 'CaptureHold',
        data: { holdId: pick(known.holdIds, spec.target, 'h-none'), points: spec.points },
      };
    case 'release':
      return { type: 'ReleaseHold', data: { holdId: pick(known.holdIds, spec.target, 'h-none') } };
    case 'redeem':
      return {
        type: 'RedeemPoints',
        data: {
          orderId: spec.fresh ? `o${step}` : pick(known.orderIds, spec.target, `o${step}`),
          storeId: 's1',
          points: spec.points,
        },
      };
    case 'refund':
      return {
        type: 'RefundPurchase',
        data: {
          refundId: spec.fresh ? `r${step}` : pick(known.refundIds, spec.target, `r${step}`),
          orderId: pick(known.purchasedOrderIds, spec.orderTarget, 'o-none'),
          storeId: 's2',
          amountFen: spec.amountFen,
          lotId,
        },
      };
    case 'adjust':
      return {
        type: 'AdjustPoints',
        data: {
          adjustmentId: spec.fresh ? `a${step}` : pick(known.adjustmentIds, spec.target, `a${step}`),
          points: spec.points,
          reason: 'fix',
          actor: 'agent',
          lotId,
        },
      };
    case 'expire':
      return { type: 'ExpireLots', data: { asOf: addSecondsIso(now, -spec.backSeconds) } };
  }
}

function remember(known: Known, event: MemberEvent): void {
  const add = (ids: string[], id: string) => {
    if (!ids.includes(id)) ids.push(id);
  };
  switch (event.type) {
    case 'PurchaseRecorded':
      add(known.orderIds, event.data.orderId);
      add(known.purchasedOrderIds, event.data.orderId);
      break;
    case 'PointsRedeemed':
      add(known.orderIds, event.data.orderId);
      break;
    case 'PointsHeld':
      add(known.holdIds, event.data.holdId);
      break;
    case 'PurchaseRefunded':
      add(known.refundIds, event.data.refundId);
      break;
    case 'PointsAdjusted':
      add(known.adjustmentIds, event.data.adjustmentId);
      break;
    default:
      break;
  }
}

function assertSafeIntegers(value: unknown, path: string): void {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new Error(`${path} = ${value} is not a safe integer`);
  } else if (Array.isArray(value)) {
    value.forEach((item, index) => assertSafeIntegers(item, `${path}[${index}]`));
  } else if (value !== null && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) assertSafeIntegers(item, `${path}.${key}`);
  }
}

/** Freezing everything the decider returns and evolve builds turns any hidden mutation into a crash. */
function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const item of Object.values(value)) deepFreeze(item);
  }
  return value;
}

const outcomes = new Map<string, number>();

function count(outcome: string): void {
  outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
}

describe('member decider invariants under random command sequences', () => {
  it('hold after every step, and replay reproduces the state', () => {
    fc.assert(
      fc.property(
        setupArb,
        fc.array(stepArb, { minLength: STEPS_MIN, maxLength: STEPS_MAX, size: 'max' }),
        (setup, steps) => {
          const tenantContext = tenant({ timeZone: setup.timeZone, programme: setup.programme });
          let now: string = setup.start;
          const ctxNow = (): MemberContext => ({ now, tenant: tenantContext });
          const events: MemberEvent[] = [];
          let state: MemberState = initialMemberState();
          let postedBalance = 0;
          let everReversed = false;
          const known: Known = {
            orderIds: [],
            purchasedOrderIds: [],
            holdIds: [],
            refundIds: [],
            adjustmentIds: [],
          };

          const apply = (newEvents: MemberEvent[]) => {
            for (const event of deepFreeze(newEvents)) {
              const postings = postingsFor(event);
              expect(postings.reduce((total, posting) => total + posting.points, 0)).toBe(0);
              postedBalance += memberPointsDelta(event);
              if ('balanceAfter' in event.data) expect(event.data.balanceAfter).toBe(postedBalance);
              assertSafeIntegers(event, event.type);
              state = deepFreeze(evolveMember(state, event));
              events.push(event);
            }
          };

          const registered = decideMember(register(), state, ctxNow());
          if (!registered.ok) throw new Error('registration rejected');
          apply(registered.events);

          steps.forEach(({ advanceSeconds, spec }, index) => {
            now = addSecondsIso(now, advanceSeconds);
            const before = state;
            if (!before.registered) throw new Error('unregistered');
            const availableBefore = availablePoints(before, now);
            const command = commandFor(spec, index, now, known);
            const decision = decideMember(command, before, ctxNow());
            if (!decision.ok) {
              count(`${command.type}:${decision.error.code}`);
              expect(decision.error.status).toBe(DOMAIN_ERROR_STATUS[decision.error.code]);
              return;
            }
            count(`${command.type}:ok${decision.events.length === 0 ? '-empty' : ''}`);
            apply(decision.events);
            if (!state.registered) throw new Error('unregistered');
            for (const event of decision.events) remember(known, event);

            // Invariant 2: balance is the sum of postings; available >= 0 unless a reversal made it so.
            expect(state.balance).toBe(postedBalance);
            const availableAfter = availablePoints(state, now);
            if (command.type === 'RefundPurchase') {
              everReversed ||= decision.events.some(
                (event) => event.type === 'PurchaseRefunded' && event.data.pointsReversed > 0,
              );
            } else {
              expect(availableAfter).toBeGreaterThanOrEqual(Math.min(0, availableBefore));
              expect(state.balance).toBeGreaterThanOrEqual(Math.min(0, before.balance));
            }
            if (!everReversed) expect(availableAfter).toBeGreaterThanOrEqual(0);
            // Invariant 4.
            if (state.balance >= 0) expect(lotsPoints(state.lots)).toBe(state.balance);
            else expect(state.lots).toEqual([]);
            assertSafeIntegers(state, 'state');
            // Bounded state: holds never pile up.
            expect(state.holds.every((hold) => hold.expiresAt > now)).toBe(true);
          });

          // Replay from scratch (as audit does), and through a snapshot's JSON round trip.
          const replayed = events.reduce(evolveMember, initialMemberState());
          expect(replayed).toEqual(state);
          expect(JSON.parse(JSON.stringify(state))).toEqual(state);
          expect(JSON.parse(JSON.stringify(events)).reduce(evolveMember, initialMemberState())).toEqual(
            state,
          );
        },
      ),
      { numRuns: RUNS },
    );
    if (process.env['SHOW_OUTCOMES']) console.log([...outcomes].sort());
    // The generator must reach the interesting paths, or the property proves little.
    for (const outcome of [
      'RecordPurchase:ok',
      'PlaceHold:ok',
      'CaptureHold:ok',
      'ReleaseHold:ok',
      'RedeemPoints:ok',
      'RefundPurchase:ok',
      'AdjustPoints:ok',
      'ExpireLots:ok',
      'RefundPurchase:refund-exceeds-order',
      'PlaceHold:insufficient-points',
      'CaptureHold:hold-not-active',
      'PlaceHold:hold-already-exists',
      'RefundPurchase:refund-already-recorded',
      'RefundPurchase:order-not-found',
      'AdjustPoints:adjustment-already-recorded',
      'RecordPurchase:order-already-recorded',
    ]) {
      expect(outcomes.get(outcome) ?? 0, outcome).toBeGreaterThan(0);
    }
  });
});
