import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../test/helpers/database.ts';
import { ManualClock } from '../../test/helpers/ledger.ts';
import type { MemberCommand } from '../domain/member/commands.ts';
import type { TenantContext } from '../domain/member/context.ts';
import { initialMemberState, type MemberState } from '../domain/member/state.ts';
import { decideMember } from '../domain/member/decider.ts';
import { evolveMember } from '../domain/member/evolve.ts';
import { memberView } from '../domain/member/view.ts';
import { SqlEventStore } from '../eventstore/sql/sql-event-store.ts';
import { explainMemberUniqueKey, memberDecider, memberFolder, uniqueKeysOf } from './members.ts';
import { requestHash, CommandRunner, type CommandResult } from './run-command.ts';
import { loadStream } from './stream-loader.ts';
import { memberStreamId } from './streams.ts';
import { TenantDirectory } from './tenants.ts';

const database = useTestDatabase();
const clock = new ManualClock('2026-05-01T04:00:00.000Z');
let tenant: TenantContext;
let counter = 0;

function runOn(runner: CommandRunner, memberId: string, command: MemberCommand): Promise<CommandResult> {
  counter += 1;
  return runner.run(
    {
      tenantId: 'acme',
      streamId: memberStreamId(memberId),
      commandId: `cmd-${counter}`,
      requestHash: requestHash([counter, command]),
      uniqueKeys: uniqueKeysOf(command),
    },
    memberDecider(tenant, 'test'),
    command,
    {
      respond: ({ state, now }) => ({
        status: 201,
        body: state.registered ? memberView(state, now) : null,
      }),
      explainUniqueKey: explainMemberUniqueKey,
    },
  );
}

beforeAll(async () => {
  const store = new SqlEventStore(database.current.pool);
  const runner = new CommandRunner(store, clock);
  const directory = new TenantDirectory(store, runner, clock);
  const created = await directory.create({ tenantId: 'acme' });
  expect(created.ok).toBe(true);
  tenant = (await directory.get('acme'))!;
});
afterAll(() => undefined);

async function memberWithPoints(runner: CommandRunner, memberId: string, points: number): Promise<void> {
  const phone = `+86139${String(counter).padStart(8, '0')}`;
  expect(
    (
      await runOn(runner, memberId, {
        type: 'RegisterMember',
        data: { memberId, phone, storeId: 's1', channel: 'store' },
      })
    ).ok,
  ).toBe(true);
  const credited = await runOn(runner, memberId, {
    type: 'AdjustPoints',
    data: {
      adjustmentId: `seed-${memberId}`,
      points,
      reason: 'seed',
      actor: 'test',
      lotId: `lot-${memberId}`,
    },
  });
  expect(credited.ok).toBe(true);
}

describe('commands under concurrency, on the real database', () => {
  it('50 concurrent 1-point redemptions against 10 points: exactly 10 succeed, 40 are insufficient-points', async () => {
    const store = new SqlEventStore(database.current.pool);
    // Two runners stand for two API processes: inside one, commands queue per member; between the two,
    // the stream version settles every race.
    const runners = [new CommandRunner(store, clock), new CommandRunner(store, clock)];
    const memberId = 'm-concurrent';
    await memberWithPoints(runners[0]!, memberId, 10);
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        runOn(runners[i % 2]!, memberId, {
          type: 'RedeemPoints',
          data: { orderId: `o-${i}`, storeId: 's1', points: 1 },
        }),
      ),
    );
    const succeeded = results.filter((r) => r.ok).length;
    const insufficient = results.filter((r) => !r.ok && r.rejection.code === 'insufficient-points').length;
    expect(succeeded).toBe(10);
    expect(insufficient).toBe(40);
    const loaded = await loadStream(store, 'acme', memberStreamId(memberId), memberFolder);
    const state = loaded.state as Extract<MemberState, { registered: true }>;
    expect(state.balance).toBe(0);
    const events = await store.readStream('acme', memberStreamId(memberId));
    expect(events.filter((e) => e.type === 'PointsRedeemed')).toHaveLength(10);
  });

  it('costs the same read whatever the history: the state comes from the snapshot', async () => {
    const store = new SqlEventStore(database.current.pool);
    const runner = new CommandRunner(store, clock);
    const memberId = 'm-history';
    await memberWithPoints(runner, memberId, 1_000);
    for (let i = 0; i < 30; i++) {
      expect(
        (
          await runOn(runner, memberId, {
            type: 'RedeemPoints',
            data: { orderId: `h-${i}`, storeId: 's1', points: 1 },
          })
        ).ok,
      ).toBe(true);
    }
    const loaded = await loadStream(store, 'acme', memberStreamId(memberId), memberFolder);
    expect(loaded.fromSnapshot).toBe(true);
    expect(loaded.version).toBe(32);
    // With the snapshot gone, the same state is rebuilt from the events.
    await database.current.pool.query(
      'UPDATE streams SET snapshot = NULL, snapshot_schema = NULL WHERE stream_id = ?',
      [memberStreamId(memberId)],
    );
    const rebuilt = await loadStream(store, 'acme', memberStreamId(memberId), memberFolder);
    expect(rebuilt.fromSnapshot).toBe(false);
    expect(rebuilt.state).toEqual(loaded.state);
    expect(rebuilt.version).toBe(loaded.version);
    // The rebuild is stored: the next load reads one row again.
    const next = await loadStream(store, 'acme', memberStreamId(memberId), memberFolder);
    expect(next.fromSnapshot).toBe(true);
    expect(next.state).toEqual(loaded.state);
  });

  it('a rejected command writes nothing', async () => {
    const store = new SqlEventStore(database.current.pool);
    const runner = new CommandRunner(store, clock);
    const memberId = 'm-rejected';
    await memberWithPoints(runner, memberId, 5);
    const before = await store.readStream('acme', memberStreamId(memberId));
    const rejected = await runOn(runner, memberId, {
      type: 'RedeemPoints',
      data: { orderId: 'x', storeId: 's1', points: 6 },
    });
    expect(rejected.ok).toBe(false);
    expect(await store.readStream('acme', memberStreamId(memberId))).toEqual(before);
  });

  it('a state cached by one process and behind another is never the basis of an answer', async () => {
    const store = new SqlEventStore(database.current.pool);
    let headReads = 0;
    const counting = new Proxy(store, {
      get(target, property, receiver) {
        if (property === 'streamHead') headReads += 1;
        return Reflect.get(target, property, receiver) as unknown;
      },
    });
    const a = new CommandRunner(counting, clock);
    const b = new CommandRunner(store, clock);
    const memberId = 'm-stale';
    await memberWithPoints(a, memberId, 5);
    const readsAfterSeed = headReads;
    // A decides its own next command from memory: no read.
    expect(
      (await runOn(a, memberId, { type: 'RedeemPoints', data: { orderId: 's-0', storeId: 's1', points: 1 } }))
        .ok,
    ).toBe(true);
    expect(headReads).toBe(readsAfterSeed);

    // B (another process) credits 10: A's cached state (4 points) is now behind.
    expect(
      (
        await runOn(b, memberId, {
          type: 'AdjustPoints',
          data: { adjustmentId: 'top-up', points: 10, reason: 'test', actor: 'test', lotId: 'lot-top-up' },
        })
      ).ok,
    ).toBe(true);
    // 12 > 4 cached, <= 14 stored: the refusal the cache suggests is decided again from the store.
    const redeemed = await runOn(a, memberId, {
      type: 'RedeemPoints',
      data: { orderId: 's-1', storeId: 's1', points: 12 },
    });
    expect(redeemed.ok).toBe(true);
    expect(headReads).toBe(readsAfterSeed + 1);

    // B redeems again; A's next success, decided on its stale version, loses the version check and is
    // decided again on the stored state.
    expect(
      (await runOn(b, memberId, { type: 'RedeemPoints', data: { orderId: 's-2', storeId: 's1', points: 1 } }))
        .ok,
    ).toBe(true);
    expect(
      (await runOn(a, memberId, { type: 'RedeemPoints', data: { orderId: 's-3', storeId: 's1', points: 1 } }))
        .ok,
    ).toBe(true);
    expect(headReads).toBe(readsAfterSeed + 2);
    const refused = await runOn(a, memberId, {
      type: 'RedeemPoints',
      data: { orderId: 's-4', storeId: 's1', points: 1 },
    });
    expect(refused.ok === false && refused.rejection.code).toBe('insufficient-points');

    const loaded = await loadStream(store, 'acme', memberStreamId(memberId), memberFolder);
    expect(loaded.state.registered && loaded.state.balance).toBe(0);
    const events = await store.readStream('acme', memberStreamId(memberId));
    expect(events.map((e) => e.type)).toEqual([
      'MemberRegistered',
      'PointsAdjusted',
      'PointsRedeemed',
      'PointsAdjusted',
      'PointsRedeemed',
      'PointsRedeemed',
      'PointsRedeemed',
    ]);
  });

  it('two processes taking turns on members answer exactly as one process would (property)', async () => {
    const store = new SqlEventStore(database.current.pool);
    // Each step runs on either runner and is awaited, so the store's order is the call order; whichever
    // runner did not write last holds a state that is behind. The oracle folds the same commands in memory.
    const stepArb = fc.record({
      runner: fc.nat(1),
      member: fc.nat(2),
      kind: fc.constantFrom('credit', 'redeem'),
      points: fc.integer({ min: 1, max: 40 }),
    });
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(stepArb, { minLength: 1, maxLength: 12 }), async (steps) => {
        run += 1;
        const runners = [new CommandRunner(store, clock), new CommandRunner(store, clock)];
        const members = [0, 1, 2].map((m) => `m-prop-${run}-${m}`);
        const oracle = new Map<string, MemberState>();
        const now = clock.nowIso();
        for (const memberId of members) {
          await memberWithPoints(runners[0]!, memberId, 10);
          let state = initialMemberState();
          for (const event of (await store.readStream('acme', memberStreamId(memberId))).map(
            (e) => ({ type: e.type, data: e.data }) as Parameters<typeof evolveMember>[1],
          ))
            state = evolveMember(state, event);
          oracle.set(memberId, state);
        }
        for (const [index, step] of steps.entries()) {
          const memberId = members[step.member]!;
          const command: MemberCommand =
            step.kind === 'credit'
              ? {
                  type: 'AdjustPoints',
                  data: {
                    adjustmentId: `adj-${run}-${index}`,
                    points: step.points,
                    reason: 'property',
                    actor: 'test',
                    lotId: `lot-${run}-${index}`,
                  },
                }
              : {
                  type: 'RedeemPoints',
                  data: { orderId: `o-${run}-${index}`, storeId: 's1', points: step.points },
                };
          const expected = decideMember(command, oracle.get(memberId)!, { now, tenant, actor: 'test' });
          const result = await runOn(runners[step.runner]!, memberId, command);
          expect(result.ok).toBe(expected.ok);
          if (!expected.ok && !result.ok) expect(result.rejection.code).toBe(expected.error.code);
          if (expected.ok) {
            let state = oracle.get(memberId)!;
            for (const event of expected.events) state = evolveMember(state, event);
            oracle.set(memberId, state);
          }
        }
        for (const memberId of members) {
          const stored = await loadStream(store, 'acme', memberStreamId(memberId), memberFolder);
          const expected = oracle.get(memberId)!;
          expect(stored.state.registered && stored.state.balance).toBe(
            expected.registered && expected.balance,
          );
        }
      }),
      { numRuns: 25 },
    );
  });
});
