/**
 * npm run bench:commands — command latency for a member with 1 event of history and for one with 10,000,
 * through the real command path (CommandRunner: snapshot read, decide, group-committed append with the
 * idempotency row) on the local server. The runner keeps no states in memory (a cache of size 0), so every
 * command reads its snapshot, as one does in a process that did not write the member last. The snapshot holds the live state (open lots, holds, orders inside the
 * refund window), so cost follows that state, not the length of history. To show both sides, the
 * 10,000-event history is built at a steady member's pace (BENCH_EVENTS_PER_YEAR, default 100: twice the
 * 50 a year of DESIGN.md), and a third member is built at ten times that pace, whose window holds many
 * more orders. Target: p50 ratio (10,000 events / 1 event) <= 1.2.
 */
import { ManualClock } from '../test/helpers/ledger.ts';
import { CommandRunner, requestHash, type CommandResult } from '../src/commands/run-command.ts';
import { StreamStateCache } from '../src/commands/state-cache.ts';
import {
  explainMemberUniqueKey,
  memberDecider,
  memberFolder,
  uniqueKeysOf,
} from '../src/commands/members.ts';
import { loadStream } from '../src/commands/stream-loader.ts';
import { memberStreamId } from '../src/commands/streams.ts';
import { TenantDirectory } from '../src/commands/tenants.ts';
import type { MemberCommand } from '../src/domain/member/commands.ts';
import type { TenantContext } from '../src/domain/member/context.ts';
import { SqlEventStore } from '../src/eventstore/sql/sql-event-store.ts';
import { newId } from '../src/ids.ts';
import { fmt, machineLine, percentiles, scratchDatabase } from './lib/bench.ts';

const HISTORY_EVENTS = Number(process.env['BENCH_HISTORY_EVENTS'] ?? 10_000);
const HEAVY_EVENTS = Number(process.env['BENCH_HEAVY_EVENTS'] ?? 3_000);
const SAMPLES = Number(process.env['BENCH_SAMPLES'] ?? 1_000);
const EVENTS_PER_YEAR = Number(process.env['BENCH_EVENTS_PER_YEAR'] ?? 100);
/** A purchase round below averages about 1.6 events. */
const EVENTS_PER_ROUND = 1.6;
const SECONDS_PER_YEAR = 365 * 86_400;

async function main(): Promise<void> {
  const db = await scratchDatabase('pl_bench_commands', 8);
  try {
    const clock = new ManualClock('2012-01-01T02:00:00.000Z');
    const store = new SqlEventStore(db.pool);
    const runner = new CommandRunner(store, clock, new StreamStateCache(0));
    const tenants = new TenantDirectory(store, runner, clock);
    await tenants.create({ tenantId: 'bench' });
    const tenant = (await tenants.get('bench')) as TenantContext;
    const run = (memberId: string, command: MemberCommand): Promise<CommandResult> =>
      runner.run(
        {
          tenantId: 'bench',
          streamId: memberStreamId(memberId),
          commandId: newId(),
          requestHash: requestHash(command),
          uniqueKeys: uniqueKeysOf(command),
        },
        memberDecider(tenant, 'bench'),
        command,
        { respond: () => ({ status: 200, body: {} }), explainUniqueKey: explainMemberUniqueKey },
      );
    const must = async (memberId: string, command: MemberCommand) => {
      const result = await run(memberId, command);
      if (!result.ok) throw new Error(`${command.type}: ${result.rejection.code} ${result.rejection.detail}`);
    };

    const register = (memberId: string, phone: string) =>
      must(memberId, { type: 'RegisterMember', data: { memberId, phone, storeId: 's1', channel: 'store' } });

    // A member's history: purchases, holds captured or released, partial refunds, yearly expiry runs.
    let order = 0;
    const buildHistory = async (memberId: string, phone: string, events: number, eventsPerYear: number) => {
      await register(memberId, phone);
      const stepSeconds = Math.round((SECONDS_PER_YEAR * EVENTS_PER_ROUND) / eventsPerYear);
      while ((await store.streamHead('bench', memberStreamId(memberId)))!.version < events) {
        clock.advanceSeconds(stepSeconds);
        order += 1;
        const orderId = `o-${order}`;
        await must(memberId, {
          type: 'RecordPurchase',
          data: {
            orderId,
            storeId: 's1',
            lines: [{ sku: 'x', category: 'otc', quantity: 1, amountFen: 9_900 }],
            lotId: newId(),
          },
        });
        if (order % 3 === 0) {
          const holdId = newId();
          await must(memberId, { type: 'PlaceHold', data: { holdId, orderId, storeId: 's1', points: 20 } });
          await must(
            memberId,
            order % 2 === 0
              ? { type: 'CaptureHold', data: { holdId } }
              : { type: 'ReleaseHold', data: { holdId } },
          );
        }
        if (order % 7 === 0) {
          await must(memberId, {
            type: 'RefundPurchase',
            data: { refundId: newId(), orderId, storeId: 's1', amountFen: 3_300, lotId: newId() },
          });
        }
        if (order % 50 === 0) await must(memberId, { type: 'ExpireLots', data: { asOf: clock.nowIso() } });
      }
    };
    const started = performance.now();
    const veteran = newId();
    await buildHistory(veteran, '+8613900000001', HISTORY_EVENTS, EVENTS_PER_YEAR);
    const veteranYears = (clock.nowMs() - Date.parse('2012-01-01')) / 1000 / SECONDS_PER_YEAR;
    const heavy = newId();
    await buildHistory(heavy, '+8613900000003', HEAVY_EVENTS, EVENTS_PER_YEAR * 10);
    const buildSeconds = (performance.now() - started) / 1000;

    const newcomer = newId();
    await register(newcomer, '+8613900000002');
    await must(newcomer, {
      type: 'AdjustPoints',
      data: {
        adjustmentId: 'seed-newcomer',
        points: 1_000_000,
        reason: 'bench',
        actor: 'bench',
        lotId: newId(),
      },
    });
    for (const memberId of [veteran, heavy]) {
      await must(memberId, {
        type: 'AdjustPoints',
        data: {
          adjustmentId: `seed-${memberId}`,
          points: 1_000_000,
          reason: 'bench',
          actor: 'bench',
          lotId: newId(),
        },
      });
    }

    const measure = async (memberId: string) => {
      const latencies: number[] = [];
      for (let i = 0; i < SAMPLES; i++) {
        const t0 = performance.now();
        await must(memberId, {
          type: 'RedeemPoints',
          data: { orderId: 'till-order', storeId: 's1', points: 1 },
        });
        latencies.push(performance.now() - t0);
      }
      return percentiles(latencies);
    };
    // Snapshot sizes before measuring (the measured redemptions add orders of their own).
    const snapshotBytes = async (memberId: string) =>
      Buffer.byteLength(
        JSON.stringify((await loadStream(store, 'bench', memberStreamId(memberId), memberFolder)).state),
      );
    const sizes = {
      newcomer: await snapshotBytes(newcomer),
      veteran: await snapshotBytes(veteran),
      heavy: await snapshotBytes(heavy),
    };
    // Interleaved rounds, so no member gets a colder or a busier server than the others.
    const rounds = { newcomer: [] as number[], veteran: [] as number[], heavy: [] as number[] };
    for (let round = 0; round < 4; round++) {
      rounds.newcomer.push((await measure(newcomer)).p50);
      rounds.veteran.push((await measure(veteran)).p50);
      rounds.heavy.push((await measure(heavy)).p50);
    }
    const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
    const fresh = median(rounds.newcomer);
    const long = median(rounds.veteran);
    const dense = median(rounds.heavy);
    const lines = [
      `machine: ${machineLine()}`,
      `histories built in ${fmt(buildSeconds, 1)} s; ${fmt(SAMPLES)} one-point redemptions per round, 4 interleaved rounds, median of round p50s`,
      `member with 2 events:                                   p50 ${fmt(fresh, 2)} ms (snapshot ${fmt(sizes.newcomer)} bytes)`,
      `member with ${fmt(HISTORY_EVENTS)} events over ${fmt(veteranYears, 0)} years (${EVENTS_PER_YEAR}/year): p50 ${fmt(long, 2)} ms (snapshot ${fmt(sizes.veteran)} bytes)`,
      `member with ${fmt(HEAVY_EVENTS)} events at ${EVENTS_PER_YEAR * 10}/year:              p50 ${fmt(dense, 2)} ms (snapshot ${fmt(sizes.heavy)} bytes)`,
      `p50 ratio 10,000-event member / 2-event member: ${fmt(long / fresh, 2)} (target <= 1.2)`,
      `p50 ratio dense member / 2-event member:        ${fmt(dense / fresh, 2)} (cost follows the live state)`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    await db.drop();
  }
}

await main();
