/**
 * Model-based test: random command sequences are decided by the member decider and, in
 * parallel, by a small independent model written from CONTRACT.md "Default programme" (and the
 * decisions docs/api.md records where the contract is silent). After every step the decider must agree
 * with the model on: accepted or refused (and the error code), points earned with the tier held
 * before the purchase, the tier after it, lot expiry (first instant of local year Y+2, computed here
 * from fixed UTC offsets with no tz database), soonest-expiring-first consumption by redemptions,
 * captures, debit adjustments and expiry runs, refunds' cumulative floor(P x F / T) reversal and
 * floor(R x F / T) restore with R counting redemptions and captures naming the order, the restored
 * lot's expiry, debt repaid by later credits, and balance / held / available / expiring by date.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { MemberCommand } from './commands.ts';
import { decideMember, evolveMember, initialMemberState } from './decider.ts';
import type { LotDebit, MemberEvent } from './events.ts';
import type { MemberState } from './state.ts';
import { register, tenant } from './testing.ts';
import { memberView } from './view.ts';

type EventData = { [E in MemberEvent as E['type']]: E['data'] };

const SECOND_MS = 1_000;
const DAY_MS = 86_400 * SECOND_MS;
const YEAR_WINDOW_MS = 365 * DAY_MS;
const HOLD_TTL_DEFAULT_SECONDS = 900;
const HOLDS_MAX = 20;

/** Fixed-offset zones, so the model needs no tz database ('Etc/GMT+5' is UTC-5). */
const ZONES = [
  { name: 'Asia/Shanghai', offsetMs: 8 * 3_600_000 },
  { name: 'Etc/GMT+5', offsetMs: -5 * 3_600_000 },
  { name: 'UTC', offsetMs: 0 },
] as const;

const TIERS = [
  { name: 'standard', minSpendFen: 0, multiplierPermille: 1000 },
  { name: 'silver', minSpendFen: 200_000, multiplierPermille: 1200 },
  { name: 'gold', minSpendFen: 1_000_000, multiplierPermille: 1500 },
] as const;
type ModelTier = (typeof TIERS)[number];

type ModelLot = { lotId: string; remaining: number; expiresAt: number };
type ModelHold = { holdId: string; orderId: string; points: number; expiresAt: number };
type ModelOrder = {
  retainUntil: number;
  purchase: { totalFen: number; eligibleFen: number; points: number; at: number } | null;
  redeemed: number;
  redeemedExpiryMax: number | null;
  refundedFen: number;
  reversed: number;
  restored: number;
};
type Model = {
  balance: number;
  lots: ModelLot[];
  holds: ModelHold[];
  orders: Map<string, ModelOrder>;
  tier: ModelTier;
};

type Outcome = { error: string } | { check: (events: readonly MemberEvent[]) => void };

const iso = (ms: number): string => new Date(ms).toISOString();

/** First instant of local year Y+2, for a lot earned in local year Y. */
function lotExpiry(atMs: number, offsetMs: number): number {
  const localYear = new Date(atMs + offsetMs).getUTCFullYear();
  return Date.UTC(localYear + 2, 0, 1) - offsetMs;
}

function floorDiv(a: number, b: number, c: number): number {
  return Number((BigInt(a) * BigInt(b)) / BigInt(c));
}

function sortLots(lots: ModelLot[]): void {
  lots.sort((a, b) =>
    a.expiresAt !== b.expiresAt
      ? a.expiresAt - b.expiresAt
      : a.lotId < b.lotId
        ? -1
        : a.lotId > b.lotId
          ? 1
          : 0,
  );
}

function held(model: Model, now: number): number {
  return model.holds.filter((hold) => hold.expiresAt > now).reduce((total, hold) => total + hold.points, 0);
}

/** Takes up to `points` soonest-expiring first; returns the points taken per expiry instant. */
function consume(model: Model, points: number): Map<number, number> {
  const taken = new Map<number, number>();
  let left = points;
  for (const lot of model.lots) {
    if (left === 0) break;
    const take = Math.min(lot.remaining, left);
    lot.remaining -= take;
    left -= take;
    taken.set(lot.expiresAt, (taken.get(lot.expiresAt) ?? 0) + take);
  }
  model.lots = model.lots.filter((lot) => lot.remaining > 0);
  return taken;
}

/** A credit repays debt first; the rest is a lot. */
function credit(model: Model, points: number, lotId: string, expiresAt: number): number {
  const debtRepaid = Math.min(points, model.balance < 0 ? -model.balance : 0);
  if (points - debtRepaid > 0) {
    model.lots.push({ lotId, remaining: points - debtRepaid, expiresAt });
    sortLots(model.lots);
  }
  model.balance += points;
  return debtRepaid;
}

function retainedOrder(model: Model, orderId: string, now: number): ModelOrder | undefined {
  const order = model.orders.get(orderId);
  if (order !== undefined && order.retainUntil > now) return order;
  model.orders.delete(orderId);
  return undefined;
}

function orderOrNew(model: Model, orderId: string, now: number): ModelOrder {
  let order = retainedOrder(model, orderId, now);
  if (order === undefined) {
    order = {
      retainUntil: now + YEAR_WINDOW_MS,
      purchase: null,
      redeemed: 0,
      redeemedExpiryMax: null,
      refundedFen: 0,
      reversed: 0,
      restored: 0,
    };
    model.orders.set(orderId, order);
  }
  return order;
}

function tierSpend(model: Model, now: number): number {
  let spend = 0;
  for (const order of model.orders.values()) {
    const purchase = order.purchase;
    if (purchase === null || purchase.at <= now - YEAR_WINDOW_MS) continue;
    const refundedEligible =
      purchase.totalFen === 0 ? 0 : floorDiv(purchase.eligibleFen, order.refundedFen, purchase.totalFen);
    spend += purchase.eligibleFen - refundedEligible;
  }
  return spend;
}

function tierFor(spendFen: number): ModelTier {
  let reached: ModelTier = TIERS[0];
  for (const tier of TIERS) if (tier.minSpendFen <= spendFen) reached = tier;
  return reached;
}

/**
 * Expires the model's lots due by `now` and returns the points taken per expiry instant. docs/api.md: due
 * lots expire, but never points a live hold counts on. A capture takes the soonest lots first, so the held
 * points are the first lots' points; due points beyond them go.
 */
function expireDue(model: Model, now: number): Map<number, number> {
  let reserved = held(model, now);
  const expired = new Map<number, number>();
  for (const lot of model.lots) {
    if (lot.expiresAt > now) break;
    const covered = Math.min(lot.remaining, reserved);
    reserved -= covered;
    const take = lot.remaining - covered;
    if (take > 0) expired.set(lot.expiresAt, (expired.get(lot.expiresAt) ?? 0) + take);
    lot.remaining = covered;
  }
  model.lots = model.lots.filter((lot) => lot.remaining > 0);
  model.balance -= [...expired.values()].reduce((sum, points) => sum + points, 0);
  return expired;
}

/** Points per expiry instant the LotsExpired events took, read with the given lots' expiries. */
function expiredByExpiry(events: readonly MemberEvent[], lots: readonly ModelLot[]): Map<number, number> {
  const byExpiry = new Map<number, number>();
  for (const event of events) {
    if (event.type !== 'LotsExpired') continue;
    for (const [expiresAt, points] of debitsByExpiry(event.data.lots, lots)) {
      byExpiry.set(expiresAt, (byExpiry.get(expiresAt) ?? 0) + points);
    }
  }
  return byExpiry;
}

/** Points per expiry instant that an event's lot debits took, read with the model's lot expiries. */
function debitsByExpiry(debits: readonly LotDebit[], lots: readonly ModelLot[]): Map<number, number> {
  const byExpiry = new Map<number, number>();
  for (const debit of debits) {
    const lot = lots.find((open) => open.lotId === debit.lotId);
    if (lot === undefined)
      throw new Error(`event debits lot ${debit.lotId}, which the model has no open lot for`);
    byExpiry.set(lot.expiresAt, (byExpiry.get(lot.expiresAt) ?? 0) + debit.points);
  }
  return byExpiry;
}

function only<T extends MemberEvent['type']>(events: readonly MemberEvent[], type: T): EventData[T] {
  const found = events.filter((event) => event.type === type);
  expect(found, `exactly one ${type}`).toHaveLength(1);
  return (found[0] as MemberEvent).data as EventData[T];
}

type Spec =
  | { kind: 'purchase'; lines: { amountFen: number; insurancePermille: number; rx: boolean }[] }
  | { kind: 'hold'; orderTarget: number; points: number; ttlSeconds: number | undefined }
  | { kind: 'capture'; target: number; points: number | undefined }
  | { kind: 'release'; target: number }
  | { kind: 'redeem'; orderTarget: number; points: number }
  | { kind: 'refund'; orderTarget: number; amountFen: number; rest: boolean }
  | { kind: 'adjust'; points: number }
  | { kind: 'expire' };

const pointsArb = fc.oneof(fc.integer({ min: 1, max: 60 }), fc.integer({ min: 1, max: 3_000 }));
const targetArb = fc.nat(4);
const specArb: fc.Arbitrary<Spec> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('purchase' as const),
      lines: fc.array(
        fc.record({
          amountFen: fc.oneof(
            fc.integer({ min: 0, max: 5_000 }),
            fc.integer({ min: 0, max: 150_000 }),
            fc.integer({ min: 150_000, max: 600_000 }),
          ),
          insurancePermille: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 1000 })),
          rx: fc.boolean(),
        }),
        { minLength: 1, maxLength: 3 },
      ),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('hold' as const),
      orderTarget: targetArb,
      points: pointsArb,
      ttlSeconds: fc.option(fc.integer({ min: 1, max: 3600 }), { nil: undefined }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('capture' as const),
      target: fc.nat(2),
      points: fc.option(pointsArb, { nil: undefined }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('release' as const), target: fc.nat(2) }) },
  {
    weight: 3,
    arbitrary: fc.record({ kind: fc.constant('redeem' as const), orderTarget: targetArb, points: pointsArb }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('refund' as const),
      orderTarget: targetArb,
      amountFen: fc.oneof(fc.integer({ min: 1, max: 5_000 }), fc.integer({ min: 1, max: 400_000 })),
      rest: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('adjust' as const),
      points: fc.integer({ min: -500, max: 500 }).filter((points) => points !== 0),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('expire' as const) }) },
);

const stepArb = fc.record({
  advanceMs: fc.oneof(
    { weight: 6, arbitrary: fc.constant(0) },
    { weight: 5, arbitrary: fc.constantFrom(20, 300, 899, 900, 3_600).map((s) => s * SECOND_MS) },
    { weight: 3, arbitrary: fc.constantFrom(1, 30, 90).map((d) => d * DAY_MS) },
    { weight: 1, arbitrary: fc.constantFrom(200, 365).map((d) => d * DAY_MS) },
  ),
  spec: specArb,
});

const setupArb = fc.record({
  start: fc.constantFrom('2025-12-31T15:30:00.000Z', '2026-12-31T04:30:00.000Z', '2026-06-15T03:00:00.000Z'),
  zone: fc.constantFrom(...ZONES),
  pointsPerYuan: fc.integer({ min: 1, max: 3 }),
  excludeRx: fc.boolean(),
});

function pick(ids: readonly string[], target: number): string | undefined {
  return ids.length === 0 ? undefined : ids[Math.max(0, ids.length - 1 - target)];
}

describe('member decider against an independent model of the default programme', () => {
  it('agrees on every outcome, amount, tier, lot expiry and balance', () => {
    const outcomes = new Map<string, number>();
    fc.assert(
      fc.property(setupArb, fc.array(stepArb, { minLength: 10, maxLength: 50 }), (setup, steps) => {
        const programme = {
          pointsPerYuan: setup.pointsPerYuan,
          excludedCategories: setup.excludeRx ? ['rx'] : [],
        };
        const tenantContext = tenant({ timeZone: setup.zone.name, programme });
        let nowMs = Date.parse(setup.start);
        let state: MemberState = initialMemberState();
        const first = decideMember(register(), state, { now: iso(nowMs), tenant: tenantContext });
        if (!first.ok) throw new Error('registration refused');
        state = first.events.reduce(evolveMember, state);
        const model: Model = { balance: 0, lots: [], holds: [], orders: new Map(), tier: TIERS[0] };
        const orderIds: string[] = [];
        const holdIds: string[] = [];
        let orderSeq = 0;

        steps.forEach(({ advanceMs, spec }, step) => {
          nowMs += advanceMs;
          const now = iso(nowMs);
          // Every command but ExpireLots first expires the lots due by now (docs/api.md, Expiry), and
          // decides on what is left; a refused command writes nothing, that expiry included.
          const beforeStep = structuredClone(model);
          const autoExpired = spec.kind === 'expire' ? new Map<number, number>() : expireDue(model, nowMs);
          const lotId = `lot-${String(step).padStart(3, '0')}`;
          /** The next order not yet purchased: holds and redemptions may name it before its upload. */
          const pendingOrderId = `o${orderSeq}`;
          const orderFor = (target: number) =>
            target === 0 ? pendingOrderId : (pick(orderIds, target - 1) ?? pendingOrderId);
          let command: MemberCommand;
          let outcome: Outcome;
          const activeHold = (holdId: string) =>
            model.holds.find((hold) => hold.holdId === holdId && hold.expiresAt > nowMs);

          switch (spec.kind) {
            case 'purchase': {
              const orderId = pendingOrderId;
              const lines = spec.lines.map((line, index) => ({
                sku: `sku-${index}`,
                category: line.rx ? 'rx' : 'otc',
                quantity: 1,
                amountFen: line.amountFen,
                insuranceFen: floorDiv(line.amountFen, line.insurancePermille, 1000),
              }));
              command = { type: 'RecordPurchase', data: { orderId, storeId: 's1', lines, lotId } };
              const totalFen = lines.reduce((total, line) => total + line.amountFen, 0);
              const eligibleFen = lines
                .filter((line) => !(setup.excludeRx && line.category === 'rx'))
                .reduce((total, line) => total + line.amountFen - line.insuranceFen, 0);
              const tierBefore = model.tier;
              const points = floorDiv(
                eligibleFen,
                setup.pointsPerYuan * tierBefore.multiplierPermille,
                100_000,
              );
              const expiresAt = lotExpiry(nowMs, setup.zone.offsetMs);
              outcome = {
                check: (events) => {
                  const recorded = only(events, 'PurchaseRecorded');
                  expect(recorded).toMatchObject({ totalFen, eligibleFen, tier: tierBefore.name, points });
                  expect(recorded.lot).toEqual(
                    points === 0 ? null : { lotId, points, expiresAt: iso(expiresAt) },
                  );
                  const debtRepaid = credit(model, points, lotId, expiresAt);
                  expect(recorded.debtRepaid).toBe(debtRepaid);
                  const order = orderOrNew(model, orderId, nowMs);
                  order.purchase = { totalFen, eligibleFen, points, at: nowMs };
                  order.retainUntil = Math.max(order.retainUntil, nowMs + YEAR_WINDOW_MS);
                  const after = tierFor(tierSpend(model, nowMs));
                  const changed = events.filter((event) => event.type === 'TierChanged');
                  expect(changed.map((event) => event.data)).toEqual(
                    after.name === tierBefore.name
                      ? []
                      : [
                          {
                            from: tierBefore.name,
                            to: after.name,
                            spendFen: tierSpend(model, nowMs),
                            at: now,
                          },
                        ],
                  );
                  model.tier = after;
                  orderIds.push(orderId);
                  orderSeq += 1;
                },
              };
              break;
            }
            case 'hold': {
              const holdId = `h${step}`;
              const orderId = orderFor(spec.orderTarget);
              command = {
                type: 'PlaceHold',
                data: { holdId, orderId, storeId: 's1', points: spec.points, ttlSeconds: spec.ttlSeconds },
              };
              const available = model.balance - held(model, nowMs);
              const active = model.holds.filter((hold) => hold.expiresAt > nowMs).length;
              if (active >= HOLDS_MAX) outcome = { error: 'too-many-holds' };
              else if (spec.points > available) outcome = { error: 'insufficient-points' };
              else {
                const expiresAt = nowMs + (spec.ttlSeconds ?? HOLD_TTL_DEFAULT_SECONDS) * SECOND_MS;
                outcome = {
                  check: (events) => {
                    expect(only(events, 'PointsHeld')).toMatchObject({
                      points: spec.points,
                      expiresAt: iso(expiresAt),
                    });
                    model.holds.push({ holdId, orderId, points: spec.points, expiresAt });
                    orderOrNew(model, orderId, nowMs);
                    holdIds.push(holdId);
                  },
                };
              }
              break;
            }
            case 'capture': {
              const holdId = pick(holdIds, spec.target) ?? 'h-none';
              command = {
                type: 'CaptureHold',
                data: { holdId, ...(spec.points === undefined ? {} : { points: spec.points }) },
              };
              const hold = activeHold(holdId);
              const points = spec.points ?? hold?.points ?? 0;
              if (hold === undefined) outcome = { error: 'hold-not-active' };
              else if (points > hold.points) outcome = { error: 'validation-failed' };
              else if (points > model.balance) outcome = { error: 'insufficient-points' };
              else {
                outcome = {
                  check: (events) => {
                    const captured = only(events, 'HoldCaptured');
                    expect(captured).toMatchObject({ points, releasedPoints: hold.points - points });
                    const actual = debitsByExpiry(captured.consumed, model.lots);
                    const taken = consume(model, points);
                    expect(actual).toEqual(taken);
                    model.balance -= points;
                    const order = orderOrNew(model, hold.orderId, nowMs);
                    order.redeemed += points;
                    const latest = Math.max(...taken.keys());
                    order.redeemedExpiryMax = Math.max(order.redeemedExpiryMax ?? latest, latest);
                    model.holds = model.holds.filter((other) => other.holdId !== holdId);
                  },
                };
              }
              break;
            }
            case 'release': {
              const holdId = pick(holdIds, spec.target) ?? 'h-none';
              command = { type: 'ReleaseHold', data: { holdId } };
              outcome =
                activeHold(holdId) === undefined
                  ? { error: 'hold-not-active' }
                  : {
                      check: () => {
                        model.holds = model.holds.filter((other) => other.holdId !== holdId);
                      },
                    };
              break;
            }
            case 'redeem': {
              const orderId = orderFor(spec.orderTarget);
              command = { type: 'RedeemPoints', data: { orderId, storeId: 's1', points: spec.points } };
              if (spec.points > model.balance - held(model, nowMs))
                outcome = { error: 'insufficient-points' };
              else {
                outcome = {
                  check: (events) => {
                    const redeemed = only(events, 'PointsRedeemed');
                    const actual = debitsByExpiry(redeemed.consumed, model.lots);
                    const taken = consume(model, spec.points);
                    expect(actual).toEqual(taken);
                    model.balance -= spec.points;
                    const order = orderOrNew(model, orderId, nowMs);
                    order.redeemed += spec.points;
                    const latest = Math.max(...taken.keys());
                    order.redeemedExpiryMax = Math.max(order.redeemedExpiryMax ?? latest, latest);
                  },
                };
              }
              break;
            }
            case 'refund': {
              const orderId = pick(orderIds, spec.orderTarget) ?? 'o-none';
              const order = retainedOrder(model, orderId, nowMs);
              const purchase = order?.purchase ?? null;
              // `rest` refunds exactly what is left, so partial refunds often sum to T exactly.
              const amountFen =
                spec.rest && order !== undefined && purchase !== null && purchase.totalFen > order.refundedFen
                  ? purchase.totalFen - order.refundedFen
                  : spec.amountFen;
              command = {
                type: 'RefundPurchase',
                data: { refundId: `r${step}`, orderId, storeId: 's2', amountFen, lotId },
              };
              if (order === undefined || purchase === null || nowMs >= purchase.at + YEAR_WINDOW_MS) {
                outcome = { error: 'order-not-found' };
              } else if (order.refundedFen + amountFen > purchase.totalFen) {
                outcome = { error: 'refund-exceeds-order' };
              } else {
                const refundedFen = order.refundedFen + amountFen;
                const reversed = floorDiv(purchase.points, refundedFen, purchase.totalFen) - order.reversed;
                const restored = floorDiv(order.redeemed, refundedFen, purchase.totalFen) - order.restored;
                outcome = {
                  check: (events) => {
                    const refunded = only(events, 'PurchaseRefunded');
                    expect(refunded).toMatchObject({
                      refundedFenTotal: refundedFen,
                      pointsReversed: reversed,
                      pointsRestored: restored,
                      waivedPoints: 0,
                    });
                    const actual = debitsByExpiry(refunded.reversedConsumed, model.lots);
                    expect(actual).toEqual(consume(model, reversed));
                    model.balance -= reversed;
                    if (restored > 0) {
                      const expiresAt = order.redeemedExpiryMax;
                      if (expiresAt === null) throw new Error('restore without a redemption');
                      expect(refunded.restoredLot).toEqual({
                        lotId,
                        points: restored,
                        expiresAt: iso(expiresAt),
                      });
                      expect(refunded.debtRepaid).toBe(credit(model, restored, lotId, expiresAt));
                    } else {
                      expect(refunded.restoredLot).toBeNull();
                    }
                    order.refundedFen = refundedFen;
                    order.reversed += reversed;
                    order.restored += restored;
                  },
                };
              }
              break;
            }
            case 'adjust': {
              command = {
                type: 'AdjustPoints',
                data: { adjustmentId: `a${step}`, points: spec.points, reason: 'fix', actor: 'agent', lotId },
              };
              if (spec.points < 0 && -spec.points > model.balance - held(model, nowMs)) {
                outcome = { error: 'insufficient-points' };
              } else {
                outcome = {
                  check: (events) => {
                    const adjusted = only(events, 'PointsAdjusted');
                    if (spec.points < 0) {
                      const actual = debitsByExpiry(adjusted.consumed, model.lots);
                      expect(actual).toEqual(consume(model, -spec.points));
                      model.balance += spec.points;
                    } else {
                      const expiresAt = lotExpiry(nowMs, setup.zone.offsetMs);
                      expect(adjusted.lot).toEqual({ lotId, points: spec.points, expiresAt: iso(expiresAt) });
                      expect(adjusted.debtRepaid).toBe(credit(model, spec.points, lotId, expiresAt));
                    }
                  },
                };
              }
              break;
            }
            case 'expire': {
              command = { type: 'ExpireLots', data: { asOf: now } };
              outcome = {
                check: (events) => {
                  const lots = structuredClone(model.lots);
                  expect(expiredByExpiry(events, lots)).toEqual(expireDue(model, nowMs));
                },
              };
              break;
            }
          }

          if (!state.registered) throw new Error('unregistered');
          const decision = decideMember(command, state, { now, tenant: tenantContext });
          const label = `step ${step} ${command.type} at ${now}`;
          if ('error' in outcome) {
            outcomes.set(
              `${command.type}:${outcome.error}`,
              (outcomes.get(`${command.type}:${outcome.error}`) ?? 0) + 1,
            );
            expect(decision.ok ? 'accepted' : decision.error.code, label).toBe(outcome.error);
            Object.assign(model, beforeStep);
            return;
          }
          outcomes.set(`${command.type}:ok`, (outcomes.get(`${command.type}:ok`) ?? 0) + 1);
          if (autoExpired.size > 0)
            outcomes.set('due lots expired first', (outcomes.get('due lots expired first') ?? 0) + 1);
          if (!decision.ok)
            throw new Error(`${label}: refused ${decision.error.code} (${decision.error.detail})`);
          // Expired holds are released by any accepted command, and due lots expired.
          model.holds = model.holds.filter((hold) => hold.expiresAt > nowMs);
          if (spec.kind !== 'expire')
            expect(expiredByExpiry(decision.events, beforeStep.lots), `${label}: lots expired first`).toEqual(
              autoExpired,
            );
          outcome.check(
            decision.events.filter((event) => spec.kind === 'expire' || event.type !== 'LotsExpired'),
          );
          state = decision.events.reduce(evolveMember, state);
          if (!state.registered) throw new Error('unregistered');

          const expiring = new Map<number, number>();
          for (const lot of model.lots)
            expiring.set(lot.expiresAt, (expiring.get(lot.expiresAt) ?? 0) + lot.remaining);
          expect(memberView(state, now), label).toEqual({
            balance: model.balance,
            held: held(model, nowMs),
            available: model.balance - held(model, nowMs),
            tier: model.tier.name,
            expiring: [...expiring].map(([expiresAt, points]) => ({ points, expiresAt: iso(expiresAt) })),
          });
        });
      }),
      { numRuns: 400 },
    );
    // The generator must reach the paths the model speaks about.
    for (const outcome of [
      'RecordPurchase:ok',
      'PlaceHold:ok',
      'PlaceHold:insufficient-points',
      'CaptureHold:ok',
      'CaptureHold:hold-not-active',
      'ReleaseHold:ok',
      'RedeemPoints:ok',
      'RefundPurchase:ok',
      'RefundPurchase:refund-exceeds-order',
      'RefundPurchase:order-not-found',
      'AdjustPoints:ok',
      'ExpireLots:ok',
      'due lots expired first',
    ]) {
      expect(outcomes.get(outcome) ?? 0, outcome).toBeGreaterThan(0);
    }
  });
});
