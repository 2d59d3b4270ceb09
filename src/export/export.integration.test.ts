import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import type { RowDataPacket } from 'mysql2/promise';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { useTestDatabase } from '../../test/helpers/database.ts';
import { ManualClock } from '../../test/helpers/ledger.ts';
import { runAudit } from '../audit/audit.ts';
import { exportVerb } from '../cli/verbs/export.ts';
import { explainMemberUniqueKey, memberDecider, memberFolder, uniqueKeysOf } from '../commands/members.ts';
import { loadStream } from '../commands/stream-loader.ts';
import { memberStreamId } from '../commands/streams.ts';
import { loadConfig } from '../config.ts';
import {
  availablePoints,
  MOVEMENT_KINDS,
  movementsOf,
  type MemberCommand,
  type MemberEvent,
} from '../domain/member/index.ts';
import type { PartitionHead } from '../eventstore/port.ts';
import { newId } from '../ids.ts';
import { openPool } from '../db/pool.ts';
import { openRuntime, type Runtime } from '../runtime.ts';
import {
  CARRY_EXPIRY_INSTANTS_MAX,
  recomputeFromEvents,
  type EventPassCarry,
  type EventTotals,
} from './event-pass.ts';
import { drainTenant } from './drain.ts';
import { previousPeriodExport } from './export-runs.ts';
import { forEachMemberRow, memberRowsPlan, type MemberRow, type MemberRowsPlan } from './ledger-pass.ts';
import { resolvePeriod, type Period } from './period.ts';
import {
  BALANCES_HEADER,
  ExportRefusedError,
  runExport,
  STORES_HEADER,
  type ExportResult,
  type ExportSummary,
} from './export.ts';

const database = useTestDatabase();
let runtime: Runtime;
const clock = new ManualClock('2025-12-31T00:00:00.000Z');
let work: string;

beforeAll(async () => {
  runtime = await openRuntime({ ...loadConfig({}), databaseUrl: database.current.url }, { clock });
  work = await mkdtemp(join(tmpdir(), 'ledger-export-test-'));
});
afterAll(async () => {
  await runtime.close();
  await rm(work, { recursive: true, force: true });
});

/** Local midnights in Asia/Shanghai (UTC+8): the month boundaries of the periods under test. */
const JAN = '2025-12-31T16:00:00.000Z';
const FEB = '2026-01-31T16:00:00.000Z';
const MAR = '2026-02-28T16:00:00.000Z';
const APR = '2026-03-31T16:00:00.000Z';

let tenantCounter = 0;
async function newTenant(createdAt = '2025-12-30T00:00:00.000Z'): Promise<string> {
  tenantCounter += 1;
  const tenantId = `export-${tenantCounter}`;
  clock.set(createdAt);
  // Lots expire 20 days on, so expiries (and the breakage history) happen inside the test's months.
  const created = await runtime.tenants.create({
    tenantId,
    timeZone: 'Asia/Shanghai',
    programme: { expiry: { kind: 'days', days: 20 } },
  });
  if (!created.ok) throw new Error(created.rejection.detail);
  return tenantId;
}

async function exec(
  tenantId: string,
  memberId: string,
  command: MemberCommand,
  phone?: string,
): Promise<boolean> {
  const tenant = await runtime.tenants.get(tenantId);
  const result = await runtime.runner.run(
    {
      tenantId,
      streamId: memberStreamId(memberId),
      commandId: newId(),
      requestHash: 'test',
      actor: 'test',
      uniqueKeys: uniqueKeysOf(command, phone),
    },
    memberDecider(tenant!, 'test'),
    command,
    { respond: () => ({ status: 200, body: {} }), explainUniqueKey: explainMemberUniqueKey },
  );
  return result.ok;
}

let phoneCounter = 0;
async function register(tenantId: string, memberId: string): Promise<void> {
  phoneCounter += 1;
  const phone = `1390000${String(phoneCounter).padStart(4, '0')}`;
  expect(
    await exec(
      tenantId,
      memberId,
      { type: 'RegisterMember', data: { memberId, phone, storeId: 'store-1', channel: 'store' } },
      phone,
    ),
  ).toBe(true);
}

function purchase(orderId: string, storeId: string, amountFen: number, occurredAt?: string): MemberCommand {
  return {
    type: 'RecordPurchase',
    data: {
      orderId,
      storeId,
      lines: [{ sku: 'sku', category: 'otc', quantity: 1, amountFen }],
      lotId: newId(),
      ...(occurredAt === undefined ? {} : { occurredAt }),
    },
  };
}

function redemption(storeId: string, points: number): MemberCommand {
  return { type: 'RedeemPoints', data: { orderId: newId(), storeId, points } };
}

/** A new tenant with two members, registered on 5 January. */
async function tenantWithTwoMembers(): Promise<{ tenantId: string; a: string; b: string }> {
  const tenantId = await newTenant();
  const [a, b] = [newId(), newId()];
  clock.set('2026-01-05T02:00:00.000Z');
  await register(tenantId, a);
  await register(tenantId, b);
  return { tenantId, a, b };
}

async function exportPeriod(
  tenantId: string,
  from: string,
  to: string,
): Promise<ExportResult & { dir: string }> {
  const dir = join(work, `${tenantId}-${from}-${to}-${newId().slice(0, 6)}`);
  const result = await runExport(runtime, { tenantId, from, to, outDir: dir });
  return { ...result, dir };
}

/** The period an export's summary describes, as the event pass takes it. */
function periodOf(summary: ExportSummary): Period {
  return {
    from: summary.period.from,
    to: summary.period.to,
    timeZone: summary.period.timeZone,
    fromAt: summary.period.fromInstant,
    toAt: summary.period.toInstant,
  };
}

/** The carry the latest export of the period ending at `from` left; fails the test when there is none to use. */
async function usableCarryBefore(tenantId: string, from: string): Promise<EventPassCarry> {
  const carry = (await previousPeriodExport(runtime.pool, tenantId, from))?.carry;
  if (carry === null || carry === undefined || 'unusable' in carry)
    throw new Error(`no usable carry for the period from ${from}`);
  return carry;
}

/**
 * The independent pass of a chained export, run both ways over the same heads: from the previous export's
 * carry and from the log's first event. They must agree on everything but the number of events read.
 */
async function expectCarryEqualsFullRecompute(
  tenantId: string,
  summary: ExportSummary,
): Promise<{ carried: EventTotals; full: EventTotals }> {
  const period = periodOf(summary);
  const carry = await usableCarryBefore(tenantId, period.from);
  const heads = summary.asOf.partitions;
  const carried = await recomputeFromEvents(runtime.pool, tenantId, period, heads, carry);
  const full = await recomputeFromEvents(runtime.pool, tenantId, period, heads);
  expect({ ...carried, eventsRead: 0 }).toEqual({ ...full, eventsRead: 0 });
  expect(carried.eventsRead).toBeLessThanOrEqual(full.eventsRead);
  expect(summary.independentPass).toMatchObject({ start: 'previous-export', eventsRead: carried.eventsRead });
  return { carried, full };
}

async function readCsv(dir: string, name: string): Promise<{ header: string; rows: string[][] }> {
  const text = await readFile(join(dir, name), 'utf8');
  const [header = '', ...lines] = text.trimEnd().split('\n');
  return { header, rows: lines.filter((line) => line !== '').map((line) => line.split(',')) };
}

/** Every member stream's events, read through the store's port, by stream id. */
async function memberStreams(tenantId: string): Promise<[streamId: string, events: MemberEvent[]][]> {
  const [streams] = await runtime.pool.query<RowDataPacket[]>(
    "SELECT stream_id FROM streams WHERE tenant_id = ? AND stream_id LIKE 'member-%' ORDER BY stream_id",
    [tenantId],
  );
  const result: [string, MemberEvent[]][] = [];
  for (const row of streams) {
    const streamId = String(row['stream_id']);
    const recorded = await runtime.store.readStream(tenantId, streamId);
    result.push([streamId, recorded.map((event) => ({ type: event.type, data: event.data }) as MemberEvent)]);
  }
  return result;
}

/** The oracle: each member's row folded straight from its events by recording time (no read model, no export code). */
async function expectedBalances(tenantId: string, fromAt: string, toAt: string): Promise<string[]> {
  const kinds = ['earned', 'redeemed', 'expired', 'adjusted', 'reversed', 'restored'];
  const lines: string[] = [];
  for (const [streamId, events] of await memberStreams(tenantId)) {
    let opening = 0;
    let closing = 0;
    let entries = 0;
    const moved: Record<string, number> = Object.fromEntries(kinds.map((k) => [k, 0]));
    for (const event of events) {
      for (const movement of movementsOf(event)) {
        if (event.data.at >= toAt) continue;
        closing += movement.points;
        if (event.data.at < fromAt) opening += movement.points;
        else {
          moved[movement.kind]! += movement.points;
          entries += 1;
        }
      }
    }
    if (opening !== 0 || closing !== 0 || entries > 0)
      lines.push(
        [streamId.slice('member-'.length), opening, ...kinds.map((k) => moved[k]), closing].join(','),
      );
  }
  return lines;
}

/**
 * The oracle of stores.csv: the period's store movements summed per store straight from the events, each at
 * the store its event names (data.storeId: a refund's is the refunding store), sorted by store id.
 */
async function expectedStores(tenantId: string, fromAt: string, toAt: string): Promise<string[]> {
  const columns = ['earned', 'redeemed', 'reversed', 'restored'];
  const stores = new Map<string, number[]>();
  for (const [, events] of await memberStreams(tenantId)) {
    for (const event of events) {
      if (event.data.at < fromAt || event.data.at >= toAt) continue;
      const storeId = (event.data as { storeId?: string }).storeId;
      for (const movement of movementsOf(event)) {
        const column = columns.indexOf(movement.kind);
        if (column < 0) continue;
        if (storeId === undefined)
          throw new Error(`${event.type} moves ${movement.kind} points without a store`);
        const sums = stores.get(storeId) ?? [0, 0, 0, 0];
        sums[column]! += movement.points;
        stores.set(storeId, sums);
      }
    }
  }
  return [...stores]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([storeId, sums]) => [storeId, ...sums].join(','));
}

const MEMBER_ROWS_PLANS: readonly MemberRowsPlan[] = ['whole-history', 'since-period'];

/** The member rows as of an export's heads, read by one plan, as balances.csv lines. */
async function memberRowLines(
  tenantId: string,
  period: Period,
  summary: ExportSummary,
  plan: MemberRowsPlan,
): Promise<string[]> {
  const lines: string[] = [];
  await forEachMemberRow(runtime.pool, tenantId, period, summary.asOf.partitions, plan, async (row) => {
    lines.push(
      [row.memberId, row.opening, ...MOVEMENT_KINDS.map((kind) => row.movements[kind]), row.closing].join(
        ',',
      ),
    );
  });
  return lines;
}

async function expectManifestMatches(dir: string): Promise<void> {
  const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as {
    files: { name: string; rows: number; sha256: string }[];
  };
  expect(manifest.files.map((f) => f.name)).toEqual(['balances.csv', 'stores.csv', 'summary.json']);
  for (const file of manifest.files) {
    const bytes = await readFile(join(dir, file.name));
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(file.sha256);
    if (file.name.endsWith('.csv'))
      expect(file.rows).toBe(bytes.toString('utf8').trimEnd().split('\n').length - 1);
  }
  expect((await readdir(dir)).sort()).toEqual([
    'balances.csv',
    'manifest.json',
    'stores.csv',
    'summary.json',
  ]);
}

type Op =
  | { kind: 'purchase'; member: number; store: number; amountFen: number; lateDays: number }
  | { kind: 'redeem'; member: number; store: number; share: number }
  | { kind: 'hold'; member: number; store: number; share: number; capture: boolean }
  | { kind: 'refund'; member: number; store: number; share: number }
  | { kind: 'adjust'; member: number; points: number }
  | { kind: 'expire'; member: number };

const MEMBERS = 4;
const member = fc.integer({ min: 0, max: MEMBERS - 1 });
const store = fc.integer({ min: 1, max: 3 });
const share = fc.integer({ min: 1, max: 100 });
const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('purchase' as const),
      member,
      store,
      amountFen: fc.integer({ min: 100, max: 80_000 }),
      lateDays: fc.constantFrom(0, 0, 0, 35),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('redeem' as const), member, store, share }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('hold' as const), member, store, share, capture: fc.boolean() }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('refund' as const), member, store, share }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('adjust' as const),
      member,
      points: fc.integer({ min: -300, max: 300 }).filter((p) => p !== 0),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('expire' as const), member }) },
);
/** Steps of 0 s .. 2.5 days, some landing right on either side of a local midnight (period boundaries). */
const step = fc.record({
  op,
  advanceSeconds: fc.integer({ min: 0, max: 216_000 }),
  nearMidnight: fc.constantFrom(false, false, false, true),
});

async function playHistory(
  tenantId: string,
  steps: { op: Op; advanceSeconds: number; nearMidnight: boolean }[],
): Promise<void> {
  const ids = Array.from({ length: MEMBERS }, () => newId());
  clock.set(JAN);
  for (const id of ids) await register(tenantId, id);
  const orders = new Map<string, { orderId: string; amountFen: number; refunded: number }[]>();
  const available = async (memberId: string) => {
    const { state } = await loadStream(runtime.store, tenantId, memberStreamId(memberId), memberFolder);
    return state.registered ? availablePoints(state, clock.nowIso()) : 0;
  };
  for (const { op: o, advanceSeconds, nearMidnight } of steps) {
    clock.advanceSeconds(advanceSeconds);
    if (nearMidnight) {
      // Jump to within a second of the next local midnight (16:00Z), either side.
      const ms = clock.nowMs();
      const midnight = Math.ceil((ms - 16 * 3_600_000) / 86_400_000) * 86_400_000 + 16 * 3_600_000;
      clock.set(new Date(midnight + (advanceSeconds % 2 === 0 ? -1 : 0)).toISOString());
    }
    if (clock.nowIso() >= APR) break;
    const memberId = ids[o.member]!;
    const storeId = `store-${'store' in o ? o.store : 1}`;
    // Redemptions name the member's latest order when there is one, so its refunds restore points.
    const latestOrder = () => orders.get(memberId)?.at(-1)?.orderId ?? newId();
    switch (o.kind) {
      case 'purchase': {
        const orderId = newId();
        const occurredAt =
          o.lateDays === 0 ? undefined : new Date(clock.nowMs() - o.lateDays * 86_400_000).toISOString();
        if (await exec(tenantId, memberId, purchase(orderId, storeId, o.amountFen, occurredAt))) {
          orders.set(memberId, [
            ...(orders.get(memberId) ?? []),
            { orderId, amountFen: o.amountFen, refunded: 0 },
          ]);
        }
        break;
      }
      case 'redeem': {
        const points = Math.floor(((await available(memberId)) * o.share) / 100);
        if (points > 0)
          await exec(tenantId, memberId, {
            type: 'RedeemPoints',
            data: { orderId: latestOrder(), storeId, points },
          });
        break;
      }
      case 'hold': {
        const points = Math.floor(((await available(memberId)) * o.share) / 100);
        const holdId = newId();
        if (
          points > 0 &&
          (await exec(tenantId, memberId, {
            type: 'PlaceHold',
            data: { holdId, orderId: latestOrder(), storeId, points },
          }))
        ) {
          clock.advanceSeconds(20);
          await exec(
            tenantId,
            memberId,
            o.capture ? { type: 'CaptureHold', data: { holdId } } : { type: 'ReleaseHold', data: { holdId } },
          );
        }
        break;
      }
      case 'refund': {
        const order = [...(orders.get(memberId) ?? [])].reverse().find((x) => x.refunded < x.amountFen);
        if (order === undefined) break;
        const amountFen = Math.max(1, Math.floor(((order.amountFen - order.refunded) * o.share) / 100));
        if (
          await exec(tenantId, memberId, {
            type: 'RefundPurchase',
            data: { refundId: newId(), orderId: order.orderId, storeId, amountFen, lotId: newId() },
          })
        ) {
          order.refunded += amountFen;
        }
        break;
      }
      case 'adjust':
        await exec(tenantId, memberId, {
          type: 'AdjustPoints',
          data: { adjustmentId: newId(), points: o.points, reason: 'test', actor: 'support', lotId: newId() },
        });
        break;
      case 'expire':
        // Like the nightly job: every member's due lots, as of now.
        for (const id of ids)
          await exec(tenantId, id, { type: 'ExpireLots', data: { asOf: clock.nowIso() } });
        break;
    }
  }
}

/** A fixed history run first: every kind of movement, so coverage never depends on chance. */
const EVERY_KIND: { op: Op; advanceSeconds: number; nearMidnight: boolean }[] = [
  {
    op: { kind: 'purchase', member: 0, store: 1, amountFen: 50_000, lateDays: 0 },
    advanceSeconds: 3_600,
    nearMidnight: false,
  },
  { op: { kind: 'redeem', member: 0, store: 1, share: 50 }, advanceSeconds: 3_600, nearMidnight: false },
  { op: { kind: 'refund', member: 0, store: 2, share: 50 }, advanceSeconds: 3_600, nearMidnight: false },
  { op: { kind: 'adjust', member: 1, points: 200 }, advanceSeconds: 3_600, nearMidnight: false },
  {
    op: { kind: 'purchase', member: 2, store: 3, amountFen: 30_000, lateDays: 0 },
    advanceSeconds: 86_400,
    nearMidnight: false,
  },
  // 25 days on, past the lots' 20-day expiry.
  { op: { kind: 'expire', member: 0 }, advanceSeconds: 25 * 86_400, nearMidnight: false },
  {
    op: { kind: 'purchase', member: 3, store: 1, amountFen: 12_000, lateDays: 35 },
    advanceSeconds: 3_600,
    nearMidnight: true,
  },
];

describe('finance export over random histories', () => {
  it('rows roll forward, equal a replay of the events, periods chain, and the manifest matches the files', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 20, maxLength: 60 }), async (steps) => {
        const tenantId = await newTenant();
        await playHistory(tenantId, steps);
        clock.set('2026-04-02T00:00:00.000Z');
        const periods: [string, string, string, string][] = [
          ['2026-01-01', '2026-02-01', JAN, FEB],
          ['2026-02-01', '2026-03-01', FEB, MAR],
          ['2026-03-01', '2026-04-01', MAR, APR],
        ];
        const exported: { summary: ExportSummary; rows: Map<string, string[]> }[] = [];
        for (const [from, to, fromAt, toAt] of periods) {
          const result = await exportPeriod(tenantId, from, to);
          // January reads the log from its start; February and March carry on from the month before.
          if (exported.length === 0) expect(result.summary.independentPass.start).toBe('log-start');
          else await expectCarryEqualsFullRecompute(tenantId, result.summary);
          const balances = await readCsv(result.dir, 'balances.csv');
          expect(balances.header).toBe(BALANCES_HEADER);
          for (const row of balances.rows) {
            const [opening, ...rest] = row.slice(1).map(Number);
            const closing = rest.pop()!;
            expect(opening! + rest.reduce((a, b) => a + b, 0)).toBe(closing);
          }
          expect(balances.rows.map((row) => row.join(','))).toEqual(
            await expectedBalances(tenantId, fromAt, toAt),
          );
          // Both ways of reading the member rows give the file's rows, whichever the export picked.
          for (const plan of MEMBER_ROWS_PLANS)
            expect(await memberRowLines(tenantId, periodOf(result.summary), result.summary, plan)).toEqual(
              balances.rows.map((row) => row.join(',')),
            );
          const stores = await readCsv(result.dir, 'stores.csv');
          expect(stores.header).toBe(STORES_HEADER);
          expect(stores.rows.map((row) => row.join(',')).sort()).toEqual(
            await expectedStores(tenantId, fromAt, toAt),
          );
          const summary = JSON.parse(
            await readFile(join(result.dir, 'summary.json'), 'utf8'),
          ) as ExportSummary;
          expect(summary.reconciled).toBe(true);
          expect(summary.checks.every((c) => c.passed)).toBe(true);
          for (const [column, index] of [
            ['earned_points', 0],
            ['redeemed_points', 1],
            ['reversed_points', 2],
            ['restored_points', 3],
          ] as const) {
            expect(stores.rows.reduce((sum, row) => sum + Number(row[index + 1]), 0)).toBe(
              summary.totals.balances[column],
            );
          }
          expect(summary.liabilityFen).toBe(
            summary.totals.balances['closing_points']! * summary.pointValueFen,
          );
          await expectManifestMatches(result.dir);
          exported.push({ summary, rows: new Map(balances.rows.map((row) => [row[0]!, row])) });
        }
        // Closing of P = opening of P + 1, in total and member by member; P + 1 checked it against P's run.
        for (let index = 1; index < exported.length; index++) {
          const before = exported[index - 1]!;
          const after = exported[index]!;
          expect(after.summary.totals.balances['opening_points']).toBe(
            before.summary.totals.balances['closing_points'],
          );
          expect(after.summary.previousExport?.runId).toBe(before.summary.runId);
          for (const [memberId, row] of before.rows)
            expect(after.rows.get(memberId)?.[1] ?? '0').toBe(row.at(-1));
          for (const [memberId, row] of after.rows)
            expect(before.rows.get(memberId)?.at(-1) ?? '0').toBe(row[1]);
        }
        // And the audit agrees with everything, including the heads the exports recorded, wherever its
        // passes split the events they recount (audit/postings.ts): at the checkpoints, at the log's start
        // (pass A recounts them all) and half way.
        const heads = await runtime.store.partitionHeads(tenantId);
        for (const split of [undefined, () => 0, (head: number) => Math.floor(head / 2)]) {
          const report = await runAudit(runtime.pool, runtime.store, {
            tenantId,
            ...(split === undefined
              ? {}
              : { checkpointsAtStart: new Map(heads.map((h) => [h.partition, split(h.position)])) }),
          });
          expect(report.tenants[0]!.discrepancies).toEqual([]);
        }
      }),
      // No shrinking: each run is a database history, and shrinking would outlast the test's timeout and hide
      // the failure; the seed and the whole counterexample are reported instead.
      { numRuns: 6, endOnFailure: true, examples: [[EVERY_KIND]] },
    );
    // Every kind of movement was exported (the fixed history guarantees it; random ones add more).
    const [kinds] = await runtime.pool.query<RowDataPacket[]>(
      "SELECT DISTINCT kind FROM ledger_entries WHERE tenant_id LIKE 'export-%' ORDER BY kind",
    );
    expect(kinds.map((row) => String(row['kind']))).toEqual([
      'adjusted',
      'earned',
      'expired',
      'redeemed',
      'restored',
      'reversed',
    ]);
  });
});

describe('finance export: the independent pass carries on from the previous export', () => {
  it('reads on from where the last export stopped, agrees with a read from the log start, and refuses a cut head or a late event of the closed period', async () => {
    const { tenantId, a, b } = await tenantWithTwoMembers();
    expect(await exec(tenantId, a, purchase('a-1', 'store-1', 40_000))).toBe(true);
    clock.set('2026-01-31T15:59:59.000Z');
    expect(await exec(tenantId, b, purchase('b-1', 'store-2', 20_000))).toBe(true);
    // February has begun before January is exported: an event of the next period below January's heads.
    clock.set('2026-02-01T01:00:00.000Z');
    expect(await exec(tenantId, a, purchase('a-2', 'store-1', 10_000))).toBe(true);
    // And a January event committed after it, one position further on in the same partition (a command
    // that read the clock before the close and committed late): February must not count it again.
    clock.set('2026-01-31T14:00:00.000Z');
    expect(await exec(tenantId, a, purchase('a-late-commit', 'store-1', 7_000))).toBe(true);
    clock.set('2026-02-01T02:00:00.000Z');
    const january = await exportPeriod(tenantId, '2026-01-01', '2026-02-01');
    expect(january.summary.independentPass).toMatchObject({ start: 'log-start' });
    expect(january.summary.independentPass.reason).toContain('no earlier export');

    // February after January's export: a redemption, and expiries of lots credited in both months.
    clock.set('2026-02-10T02:00:00.000Z');
    expect(await exec(tenantId, b, redemption('store-2', 50))).toBe(true);
    clock.set('2026-02-27T02:00:00.000Z');
    for (const id of [a, b]) await exec(tenantId, id, { type: 'ExpireLots', data: { asOf: clock.nowIso() } });
    clock.set('2026-03-01T00:00:00.000Z');
    const february = await exportPeriod(tenantId, '2026-02-01', '2026-03-01');
    expect(february.summary.checks.find((c) => c.name === 'previous-heads-in-log')?.passed).toBe(true);
    const { carried, full } = await expectCarryEqualsFullRecompute(tenantId, february.summary);
    expect(carried.eventsRead).toBeLessThan(full.eventsRead);
    expect(carried.expiredPoints).toBeGreaterThan(0);
    expect(carried.maturedCreditedPoints).toBeGreaterThan(0);
    expect(carried.carry).not.toBeNull();

    // Past CARRY_EXPIRY_INSTANTS_MAX lots-to-expire instants the export hands on no carry (the next one reads
    // the whole log); the totals of this one do not change.
    const januaryCarry = await usableCarryBefore(tenantId, '2026-02-01');
    const crowded = {
      ...januaryCarry,
      pendingCredits: [
        ...januaryCarry.pendingCredits,
        ...Array.from(
          { length: CARRY_EXPIRY_INSTANTS_MAX + 1 },
          (_, i) =>
            [new Date(Date.parse('2030-01-01T00:00:00.000Z') + i * 1000).toISOString(), 1] as [
              string,
              number,
            ],
        ),
      ],
    };
    const period = periodOf(february.summary);
    const overflowing = await recomputeFromEvents(
      runtime.pool,
      tenantId,
      period,
      february.summary.asOf.partitions,
      crowded,
    );
    expect(overflowing.carry).toBeNull();
    expect({ ...overflowing, carry: null }).toEqual({ ...carried, carry: null });
    const atLimit = await recomputeFromEvents(
      runtime.pool,
      tenantId,
      period,
      february.summary.asOf.partitions,
      {
        ...crowded,
        pendingCredits: crowded.pendingCredits.slice(0, -1),
      },
    );
    expect(atLimit.carry?.pendingCredits.length).toBe(CARRY_EXPIRY_INSTANTS_MAX);

    const refusal = (fullRecompute: boolean) =>
      runExport(runtime, {
        tenantId,
        from: '2026-02-01',
        to: '2026-03-01',
        outDir: join(work, `carry-${newId().slice(0, 6)}`),
        fullRecompute,
      }).then(
        () => null,
        (error: unknown) => error as { reason: string; checks: { name: string; passed: boolean }[] },
      );
    const failed = (error: Awaited<ReturnType<typeof refusal>>) =>
      error?.checks.filter((c) => !c.passed).map((c) => c.name);

    // A carry that does not parse is not used: the pass reads the log from its start, and says why.
    const [[{ carry: saved } = { carry: '' }]] = await runtime.pool.query<RowDataPacket[]>(
      'SELECT carry FROM export_carries WHERE tenant_id = ? AND run_id = ?',
      [tenantId, january.runId],
    );
    await runtime.pool.query('UPDATE export_carries SET carry = \'{"closing": 1}\' WHERE tenant_id = ?', [
      tenantId,
    ]);
    const again = await exportPeriod(tenantId, '2026-02-01', '2026-03-01');
    expect(again.summary.independentPass).toMatchObject({ start: 'log-start', eventsRead: full.eventsRead });
    expect(again.summary.independentPass.reason).toContain('malformed');
    await runtime.pool.query('UPDATE export_carries SET carry = ? WHERE tenant_id = ? AND run_id = ?', [
      saved,
      tenantId,
      january.runId,
    ]);

    // A head January counted up to, rewritten: the carried pass cannot vouch for what it did not read.
    const head = january.summary.asOf.partitions.find((h) => h.position > 0)!;
    await runtime.pool.query(
      "UPDATE events SET partition_hash = REPEAT('0', 64) WHERE tenant_id = ? AND partition_no = ? AND position = ?",
      [tenantId, head.partition, head.position],
    );
    expect(failed(await refusal(false))).toEqual(['previous-heads-in-log']);
    await runtime.pool.query(
      'UPDATE events SET partition_hash = ? WHERE tenant_id = ? AND partition_no = ? AND position = ?',
      [head.lastHash, tenantId, head.partition, head.position],
    );
    // A partition's head row gone from the log: the pass cannot start where the carry says it stopped.
    const [[savedHead]] = await runtime.pool.query<RowDataPacket[]>(
      'SELECT next_position, last_hash FROM log_partitions WHERE tenant_id = ? AND partition_no = ?',
      [tenantId, head.partition],
    );
    await runtime.pool.query('DELETE FROM log_partitions WHERE tenant_id = ? AND partition_no = ?', [
      tenantId,
      head.partition,
    ]);
    expect(failed(await refusal(false))).toContain('previous-heads-in-log');
    await runtime.pool.query(
      'INSERT INTO log_partitions (tenant_id, partition_no, next_position, last_hash) VALUES (?, ?, ?, ?)',
      [tenantId, head.partition, savedHead!['next_position'], savedHead!['last_hash']],
    );

    // An event recorded in January that committed after January's export (a command that read the clock
    // before the close): February's opening no longer equals January's closing, whichever way it recomputes.
    const c = newId();
    clock.set('2026-01-31T12:00:00.000Z');
    await register(tenantId, c);
    expect(await exec(tenantId, c, purchase('c-late', 'store-3', 5_000))).toBe(true);
    clock.set('2026-03-01T00:00:00.000Z');
    expect(failed(await refusal(false))).toEqual(['opening-equals-previous-closing']);
    expect(failed(await refusal(true))).toEqual(['opening-equals-previous-closing']);
  });
});

describe('audit: the last export recounted from the events', () => {
  it('names a changed closing or carry, and an event of the exported period that reached the log after the export', async () => {
    const { tenantId, a, b } = await tenantWithTwoMembers();
    expect(await exec(tenantId, a, purchase('a-1', 'store-1', 40_000))).toBe(true);
    // b's lot is due on 10 February (20 days on), so b can still spend it in February.
    clock.set('2026-01-20T02:00:00.000Z');
    expect(await exec(tenantId, b, purchase('b-1', 'store-2', 20_000))).toBe(true);
    clock.set('2026-02-01T02:00:00.000Z');
    await exportPeriod(tenantId, '2026-01-01', '2026-02-01');
    // February: a redemption, the January lots expiring, and a lot still to expire at the period's end.
    clock.set('2026-02-05T02:00:00.000Z');
    expect(await exec(tenantId, b, redemption('store-2', 50))).toBe(true);
    clock.set('2026-02-20T02:00:00.000Z');
    expect(await exec(tenantId, a, purchase('a-2', 'store-1', 30_000))).toBe(true);
    clock.set('2026-02-27T02:00:00.000Z');
    for (const id of [a, b]) await exec(tenantId, id, { type: 'ExpireLots', data: { asOf: clock.nowIso() } });
    clock.set('2026-03-01T00:00:00.000Z');
    const february = await exportPeriod(tenantId, '2026-02-01', '2026-03-01');
    expect(february.summary.independentPass.start).toBe('previous-export');

    const found = async () =>
      (await runAudit(runtime.pool, runtime.store, { tenantId })).tenants[0]!.discrepancies.map((d) => [
        d.kind,
        d.field,
      ]);
    expect(await found()).toEqual([]);

    const [[{ carry: saved } = { carry: '' }]] = await runtime.pool.query<RowDataPacket[]>(
      'SELECT carry FROM export_carries WHERE tenant_id = ? AND run_id = ?',
      [tenantId, february.runId],
    );
    const carry = JSON.parse(String(saved)) as EventPassCarry;
    const [instant, pendingPoints] = carry.pendingCredits[0]!;
    expect(carry.expiredPoints).toBeGreaterThan(0);
    expect(carry.maturedCreditedPoints).toBeGreaterThan(0);
    const moved = carry.partitions.find((p) => p.head > 0)!;
    const withCarry = async (changed: unknown) => {
      await runtime.pool.query('UPDATE export_carries SET carry = ? WHERE tenant_id = ? AND run_id = ?', [
        typeof changed === 'string' ? changed : JSON.stringify(changed),
        tenantId,
        february.runId,
      ]);
      try {
        return await found();
      } finally {
        await runtime.pool.query('UPDATE export_carries SET carry = ? WHERE tenant_id = ? AND run_id = ?', [
          saved,
          tenantId,
          february.runId,
        ]);
      }
    };
    expect(await withCarry({ ...carry, closing: carry.closing + 1 })).toEqual([['export', 'closing']]);
    expect(await withCarry({ ...carry, expiredPoints: carry.expiredPoints - 1 })).toEqual([
      ['export', 'expiredPoints'],
    ]);
    expect(await withCarry({ ...carry, maturedCreditedPoints: 0 })).toEqual([
      ['export', 'maturedCreditedPoints'],
    ]);
    expect(
      await withCarry({
        ...carry,
        pendingCredits: [[instant, pendingPoints + 1], ...carry.pendingCredits.slice(1)],
      }),
    ).toEqual([['export', `pendingCredits ${instant}`]]);
    const withPartition = (change: Partial<EventPassCarry['partitions'][number]>) => ({
      ...carry,
      partitions: carry.partitions.map((p) => (p.partition === moved.partition ? { ...p, ...change } : p)),
    });
    // A resume position past the log's end would have the next export skip what lands there.
    expect(await withCarry(withPartition({ resumeFrom: moved.resumeFrom + 3 }))).toEqual([
      ['export', `partition ${moved.partition} resumeFrom`],
    ]);
    expect(await withCarry(withPartition({ head: moved.head - 1 }))).toEqual([
      ['export', `partition ${moved.partition} head`],
    ]);
    expect(await withCarry('{"closing": 1}')).toEqual([['export', 'carry']]);

    // The run's own closing, which the next period's opening must equal.
    await runtime.pool.query(
      'UPDATE export_runs SET closing_points = closing_points + 7 WHERE tenant_id = ? AND run_id = ?',
      [tenantId, february.runId],
    );
    expect(await found()).toEqual([['export', 'closing_points']]);
    await runtime.pool.query(
      'UPDATE export_runs SET closing_points = closing_points - 7 WHERE tenant_id = ? AND run_id = ?',
      [tenantId, february.runId],
    );
    expect(await found()).toEqual([]);

    // A February event that reached the log after February's export (a command that read the clock before the
    // close and committed late): the exported period is missing it.
    clock.set('2026-02-28T15:00:00.000Z');
    expect(await exec(tenantId, b, purchase('b-late', 'store-2', 5_000))).toBe(true);
    const late = (await runAudit(runtime.pool, runtime.store, { tenantId })).tenants[0]!.discrepancies;
    expect(late.map((d) => d.kind)).toEqual(['export']);
    expect(late[0]!.detail).toContain('beyond the head');
    const lateHead = february.summary.asOf.partitions.find((h) => h.partition === late[0]!.partition);
    expect(late[0]!.position).toBeGreaterThan(lateHead!.position);
  });
});

describe('finance export: member rows as of the heads the export fixed', () => {
  it('leave out what reached the log after the heads, also an event of the period that committed late', async () => {
    const { tenantId, a, b } = await tenantWithTwoMembers();
    expect(await exec(tenantId, a, purchase('a-1', 'store-1', 40_000))).toBe(true);
    expect(await exec(tenantId, b, purchase('b-1', 'store-1', 10_000))).toBe(true);
    clock.set('2026-01-20T02:00:00.000Z');
    expect(await exec(tenantId, a, redemption('store-1', 30))).toBe(true);
    clock.set('2026-02-03T02:00:00.000Z');
    expect(await exec(tenantId, b, purchase('b-2', 'store-1', 20_000))).toBe(true);
    const january = resolvePeriod('2026-01-01', '2026-02-01', 'Asia/Shanghai');
    // Both plans, which must agree.
    const rowsAsOf = async (heads: PartitionHead[]) => {
      await drainTenant(runtime.pool, runtime.store, tenantId, await runtime.store.partitionHeads(tenantId));
      const byPlan: MemberRow[][] = [];
      for (const plan of MEMBER_ROWS_PLANS) {
        const rows: MemberRow[] = [];
        await forEachMemberRow(runtime.pool, tenantId, january, heads, plan, async (row) => {
          rows.push(row);
        });
        byPlan.push(rows);
      }
      expect(byPlan[1]).toEqual(byPlan[0]);
      return byPlan[0]!;
    };
    const heads = await runtime.store.partitionHeads(tenantId);
    const fixed = await rowsAsOf(heads);
    expect(
      fixed
        .map((row) => [row.memberId, row.opening, row.movements.earned, row.movements.redeemed, row.closing])
        .sort(),
    ).toEqual(
      [
        [a, 0, 400, -30, 370],
        [b, 0, 100, 0, 100],
      ].sort(),
    );

    // After the heads: a February purchase, and a January one that committed late (it read the clock before
    // the close). Neither is in the rows as of the heads fixed before them.
    clock.set('2026-02-04T02:00:00.000Z');
    expect(await exec(tenantId, a, purchase('a-2', 'store-1', 50_000))).toBe(true);
    clock.set('2026-01-31T15:00:00.000Z');
    expect(await exec(tenantId, b, purchase('b-late', 'store-1', 7_000))).toBe(true);
    expect(await rowsAsOf(heads)).toEqual(fixed);
    // As of the heads now, the late January purchase is in January; the February one is not.
    const now = await rowsAsOf(await runtime.store.partitionHeads(tenantId));
    expect(now.find((row) => row.memberId === b)).toMatchObject({
      opening: 0,
      closing: 170,
      periodEntries: 2,
    });
    expect(now.find((row) => row.memberId === a)).toEqual(fixed.find((row) => row.memberId === a));
  });
});

describe('finance export: member rows of a long history', () => {
  it('read the accounts and the entries since the period start when the period is a small share of the history, with the same rows', async () => {
    const tenantId = await newTenant('2023-03-01T00:00:00.000Z');
    const [a, b, c] = [newId(), newId(), newId()];
    clock.set('2023-03-02T02:00:00.000Z');
    await register(tenantId, a);
    await register(tenantId, b);
    expect(await exec(tenantId, a, purchase('a-2023', 'store-1', 30_000))).toBe(true);
    expect(await exec(tenantId, b, purchase('b-2023', 'store-2', 12_000))).toBe(true);
    clock.set('2025-12-25T02:00:00.000Z');
    expect(await exec(tenantId, b, purchase('b-dec', 'store-2', 8_000))).toBe(true);
    // January: a's 2023 lot expires at its next command, b redeems, c registers and earns.
    clock.set('2026-01-10T02:00:00.000Z');
    expect(await exec(tenantId, a, purchase('a-jan', 'store-1', 5_000))).toBe(true);
    expect(await exec(tenantId, b, redemption('store-2', 50))).toBe(true);
    await register(tenantId, c);
    expect(await exec(tenantId, c, purchase('c-jan', 'store-3', 9_000))).toBe(true);
    // After the period: recorded in February, so in no January column, and not in January's closing.
    clock.set('2026-02-01T03:00:00.000Z');
    expect(await exec(tenantId, c, purchase('c-feb', 'store-3', 4_000))).toBe(true);
    clock.set('2026-02-02T00:00:00.000Z');

    const result = await exportPeriod(tenantId, '2026-01-01', '2026-02-01');
    expect(result.summary.memberRows.plan).toBe('since-period');
    expect(result.summary.reconciled).toBe(true);
    const balances = await readCsv(result.dir, 'balances.csv');
    const expected = await expectedBalances(tenantId, JAN, FEB);
    expect(balances.rows.map((row) => row.join(','))).toEqual(expected);
    expect(expected).toHaveLength(3);
    for (const plan of MEMBER_ROWS_PLANS)
      expect(await memberRowLines(tenantId, periodOf(result.summary), result.summary, plan)).toEqual(
        expected,
      );
    // Read this way too, a ledger entry edited in the read model is refused: the rows disagree with the events.
    await runtime.pool.query(
      "UPDATE ledger_entries SET points = points + 1 WHERE tenant_id = ? AND member_id = ? AND kind = 'earned' AND at >= ? AND at < ?",
      [tenantId, c, '2025-12-31 16:00:00.000', '2026-01-31 16:00:00.000'],
    );
    const refused = await exportPeriod(tenantId, '2026-01-01', '2026-02-01').catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(ExportRefusedError);
    expect(
      (refused as ExportRefusedError).checks.filter((check) => !check.passed).map((check) => check.name),
    ).toContain('totals-match-events');
    // A period that is most of the history reads it whole.
    clock.set('2023-05-02T00:00:00.000Z');
    expect(
      await memberRowsPlan(
        runtime.pool,
        tenantId,
        resolvePeriod('2023-04-01', '2023-05-01', 'Asia/Shanghai'),
        clock.nowIso(),
      ),
    ).toBe('whole-history');
  });
});

describe('finance export: member rows when the writer fails', () => {
  it('stop the read and give the pool its connection back (since-period streams its rows)', async () => {
    // Read-model rows alone, more than the stream buffers: what this checks is the connection, not figures.
    const tenantId = `export-stream-${newId().slice(0, 8)}`;
    const members = 20_000;
    for (let first = 0; first < members; first += 1_000) {
      const rows = Array.from({ length: 1_000 }, (_, i) => [
        tenantId,
        `m-${String(first + i).padStart(6, '0')}`,
        0,
        '139****0000',
        '0'.repeat(64),
        'basic',
        'store-1',
        'pos',
        100,
        0,
        100,
        0,
        0,
        0,
        0,
        0,
        1,
        '0'.repeat(64),
        '2025-12-01 00:00:00.000',
        '2025-12-01 00:00:00.000',
      ]);
      await runtime.pool.query(
        `INSERT INTO member_accounts (tenant_id, member_id, partition_no, phone_masked, phone_sha256, tier,
           registered_store_id, channel, balance, held, earned_points, redeemed_points, expired_points,
           adjusted_points, reversed_points, restored_points, version, last_event_hash, registered_at, updated_at)
         VALUES ?`,
        [rows],
      );
    }
    const pool = await openPool(database.current.url, 1);
    try {
      const january = resolvePeriod('2026-01-01', '2026-02-01', 'Asia/Shanghai');
      let seen = 0;
      await expect(
        forEachMemberRow(pool, tenantId, january, [], 'since-period', () => {
          seen += 1;
          return Promise.reject(new Error('disk full'));
        }),
      ).rejects.toThrow('disk full');
      expect(seen).toBe(1);
      // The pool's only connection (or its replacement) answers the next query: none is leaked.
      const next = pool.query<RowDataPacket[]>('SELECT 1 AS one');
      const stuck = new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error('the pool did not answer within 10 s')), 10_000).unref(),
      );
      const [rows] = await Promise.race([next, stuck]);
      expect(rows[0]!['one']).toBe(1);
    } finally {
      await pool.end();
    }
  });
});

describe('finance export: periods, late uploads and refusals', () => {
  it('a late upload (occurredAt in the closed period) lands in the period that recorded it; a boundary instant belongs to the next day', async () => {
    const tenantId = await newTenant();
    const memberId = newId();
    clock.set('2026-01-20T02:00:00.000Z');
    await register(tenantId, memberId);
    clock.set(new Date(Date.parse(FEB) - 1).toISOString());
    expect(await exec(tenantId, memberId, purchase('jan-last-ms', 'store-1', 10_000))).toBe(true);
    clock.set(FEB);
    expect(await exec(tenantId, memberId, purchase('feb-first-ms', 'store-2', 20_000))).toBe(true);
    clock.set('2026-02-03T03:00:00.000Z');
    expect(
      await exec(tenantId, memberId, purchase('late-upload', 'store-3', 30_000, '2026-01-15T03:00:00.000Z')),
    ).toBe(true);
    clock.set('2026-03-01T00:00:00.000Z');
    const january = await exportPeriod(tenantId, '2026-01-01', '2026-02-01');
    expect((await readCsv(january.dir, 'balances.csv')).rows).toEqual([
      [memberId, '0', '100', '0', '0', '0', '0', '0', '100'],
    ]);
    const february = await exportPeriod(tenantId, '2026-02-01', '2026-03-01');
    expect((await readCsv(february.dir, 'balances.csv')).rows).toEqual([
      [memberId, '100', '500', '0', '0', '0', '0', '0', '600'],
    ]);
    expect((await readCsv(february.dir, 'stores.csv')).rows).toEqual([
      ['store-2', '200', '0', '0', '0'],
      ['store-3', '300', '0', '0', '0'],
    ]);
  });

  it('refuses a --to in the future by the ledger clock, leaving no file behind', async () => {
    const tenantId = await newTenant();
    clock.set('2026-01-20T02:00:00.000Z');
    await register(tenantId, newId());
    clock.set('2026-01-31T15:59:59.999Z'); // one ms before 2026-02-01 starts in Shanghai
    const dir = join(work, 'future');
    await expect(
      runExport(runtime, { tenantId, from: '2026-01-01', to: '2026-02-01', outDir: dir }),
    ).rejects.toMatchObject({ reason: 'period-open' });
    expect((await readdir(work)).filter((name) => name.includes('future'))).toEqual([]);
    clock.set(FEB);
    await runExport(runtime, { tenantId, from: '2026-01-01', to: '2026-02-01', outDir: dir });
    expect((await readdir(dir)).length).toBe(4);
    // Never over an existing export.
    await expect(
      runExport(runtime, { tenantId, from: '2026-01-01', to: '2026-02-01', outDir: dir }),
    ).rejects.toMatchObject({ reason: 'output-exists' });
  });

  describe('the verb', () => {
    afterEach(() => vi.restoreAllMocks());
    it('exit 0 with files; exit 1 and no files when the read model disagrees with the events; exit 2 on an open period', async () => {
      let out = '';
      let err = '';
      vi.spyOn(process.stdout, 'write').mockImplementation(
        (chunk: string | Uint8Array) => ((out += String(chunk)), true),
      );
      vi.spyOn(process.stderr, 'write').mockImplementation(
        (chunk: string | Uint8Array) => ((err += String(chunk)), true),
      );
      const tenantId = await newTenant();
      const memberId = newId();
      clock.set('2026-01-10T02:00:00.000Z');
      await register(tenantId, memberId);
      expect(await exec(tenantId, memberId, purchase('o-1', 'store-1', 12_345))).toBe(true);
      const config = {
        ...loadConfig({ LEDGER_CLOCK_START: '2026-02-01T00:00:00+08:00' }),
        databaseUrl: database.current.url,
      };
      const args = (dir: string) => [
        '--tenant',
        tenantId,
        '--from',
        '2026-01-01',
        '--to',
        '2026-02-01',
        '--out',
        dir,
      ];

      expect(
        await exportVerb.run(
          [
            '--tenant',
            tenantId,
            '--from',
            '2026-01-01',
            '--to',
            '2026-02-02',
            '--out',
            join(work, 'verb-open'),
          ],
          config,
        ),
      ).toBe(2);
      expect(err).toContain('not closed');

      // The read model is projected by the export itself (it drains the projector when behind).
      expect(await exportVerb.run(args(join(work, 'verb-ok')), config)).toBe(0);
      expect(out).toContain('123 points');
      expect(out).toContain('no earlier export ends at 2026-01-01');
      expect(out).toContain('member rows read whole-history');
      expect(await exportVerb.run([...args(join(work, 'verb-full')), '--full-recompute'], config)).toBe(0);
      expect(out).toContain('asked for (--full-recompute)');

      // A ledger entry edited in the read model: the recomputation from the events disagrees.
      await runtime.pool.query(
        'UPDATE ledger_entries SET points = points + 1, balance_after = balance_after + 1 WHERE tenant_id = ? AND member_id = ?',
        [tenantId, memberId],
      );
      err = '';
      expect(await exportVerb.run(args(join(work, 'verb-bad')), config)).toBe(1);
      expect(err).toContain('totals-match-events');
      expect((await readdir(work)).filter((name) => name.includes('verb-bad'))).toEqual([]);
    });
  });
});
