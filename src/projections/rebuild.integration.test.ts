import type { RowDataPacket } from 'mysql2/promise';
import { describe, expect, it } from 'vitest';
import { appendMember, generateHistory, simulateMember } from '../../scripts/generate-history.ts';
import { useTestDatabase } from '../../test/helpers/database.ts';
import { movementsOf, type MemberEvent } from '../domain/member/index.ts';
import { SqlEventStore } from '../eventstore/sql/sql-event-store.ts';
import type { RecordedEvent } from '../eventstore/port.ts';
import { rebuildProjections, RebuildInProgressError } from './rebuild.ts';
import { readModelContent, replayModel } from './replay-model.ts';
import { Projector } from './runtime.ts';
import { projectionStatus } from './status.ts';
import { setTagRules, type TagRule } from './tags.ts';

const database = useTestDatabase();
const store = () => new SqlEventStore(database.current.pool);
const RULES: TagRule[] = [
  { category: '*', minPurchases: 3, windowDays: 90, tagPattern: 'regular:{category}' },
];

interface Sample {
  checkpoints: Map<number, number>;
  entries: number;
  balance: number;
  memberTotal: number;
}

async function caughtUp(tenantId: string): Promise<boolean> {
  const status = await projectionStatus(database.current.pool, store());
  return status.partitions.filter((p) => p.tenantId === tenantId).every((p) => p.lag === 0);
}

describe('rebuild without downtime', () => {
  it('rebuilds while the live projector runs and writers append; readers only ever see complete models', async () => {
    const tenantId = 'rb';
    const pool = database.current.pool;
    await setTagRules(pool, tenantId, RULES);
    await generateHistory(store(), { tenantId, seed: 21, members: 80, eventsPerMember: 30, stores: 6 });
    const errors: unknown[] = [];
    const live = new Projector(pool, store(), {
      owner: 'live-1',
      leaseSeconds: 3,
      idleSleepMs: 20,
      onError: (error) => errors.push(error),
    });
    live.start();

    // A reader: one statement = one snapshot. Every snapshot must be a whole model at some checkpoint.
    const samples: Sample[] = [];
    let reading = true;
    const reader = (async () => {
      while (reading) {
        const [rows] = await pool.query<RowDataPacket[]>(
          `SELECT
             (SELECT GROUP_CONCAT(CONCAT(partition_no, ':', position)) FROM projection_checkpoints WHERE tenant_id = ?) AS cps,
             (SELECT COUNT(*) FROM ledger_entries WHERE tenant_id = ?) AS entries,
             (SELECT COALESCE(SUM(balance), 0) FROM member_accounts WHERE tenant_id = ?) AS balance,
             (SELECT COALESCE(SUM(points), 0) FROM tenant_totals WHERE tenant_id = ? AND account = 'member') AS member_total`,
          [tenantId, tenantId, tenantId, tenantId],
        );
        const row = rows[0]!;
        const checkpoints = new Map<number, number>(
          String(row['cps'] ?? '')
            .split(',')
            .filter((pair) => pair !== '')
            .map((pair) => pair.split(':').map(Number) as [number, number]),
        );
        samples.push({
          checkpoints,
          entries: Number(row['entries']),
          balance: Number(row['balance']),
          memberTotal: Number(row['member_total']),
        });
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();

    let writing = true;
    let next = 80;
    const writer = (async () => {
      while (writing)
        await appendMember(
          store(),
          tenantId,
          simulateMember({ tenantId, seed: 21, eventsPerMember: 30, stores: 6 }, next++),
        );
    })();

    let swapped = false;
    const result = await rebuildProjections(pool, store(), {
      owner: 'rebuild-1',
      batchEvents: 200,
      leaseSeconds: 3,
      hooks: {
        beforeSwap: async () => {
          // A second rebuild is refused while this one runs.
          await expect(rebuildProjections(pool, store())).rejects.toBeInstanceOf(RebuildInProgressError);
          swapped = true;
        },
      },
    });
    expect(swapped).toBe(true);
    expect(result.events).toBeGreaterThan(2000);

    // Writers go on after the swap; the live projector takes its partitions back and continues on the new tables.
    await new Promise((resolve) => setTimeout(resolve, 300));
    writing = false;
    await writer;
    const deadline = Date.now() + 20_000;
    while (!(await caughtUp(tenantId))) {
      if (Date.now() > deadline) throw new Error('live projector did not catch up after the swap');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    reading = false;
    await reader;
    await live.stop();
    expect(errors).toEqual([]);

    // Every snapshot any reader saw was complete and consistent, and progress never went backwards.
    const log = await readLog(tenantId);
    const prefix = movementPrefixes(log);
    expect(samples.length).toBeGreaterThan(20);
    let previous = -1;
    for (const sample of samples) {
      let expectedEntries = 0;
      let applied = 0;
      for (const [partition, position] of sample.checkpoints) {
        expectedEntries += prefix.get(partition)?.[position] ?? 0;
        applied += position;
      }
      expect(sample.entries).toBe(expectedEntries);
      expect(sample.balance).toBe(sample.memberTotal);
      expect(applied).toBeGreaterThanOrEqual(previous);
      previous = applied;
    }

    expect(await readModelContent(pool, tenantId)).toEqual(
      await replayModel(store(), tenantId, { rules: RULES }),
    );
    const [tables] = await pool.query<RowDataPacket[]>(
      "SELECT table_name AS t FROM information_schema.tables WHERE table_schema = DATABASE() AND (table_name LIKE '%\\_rebuild' OR table_name LIKE '%\\_old')",
    );
    expect(tables).toEqual([]);
  });
});

async function readLog(tenantId: string): Promise<RecordedEvent[]> {
  const all: RecordedEvent[] = [];
  for (let partition = 0; partition < store().partitions; partition++) {
    let after = 0;
    for (;;) {
      const page = await store().readLog(tenantId, partition, after, 1000);
      all.push(...page);
      if (page.length < 1000) break;
      after = page[page.length - 1]!.position;
    }
  }
  return all;
}

/** partition -> (position -> ledger entries from events at positions <= position). */
function movementPrefixes(events: readonly RecordedEvent[]): Map<number, number[]> {
  const prefixes = new Map<number, number[]>();
  const sorted = [...events].sort((a, b) => a.partition - b.partition || a.position - b.position);
  for (const event of sorted) {
    const list = prefixes.get(event.partition) ?? [0];
    const movements = event.streamId.startsWith('member-')
      ? movementsOf({ type: event.type, data: event.data } as MemberEvent).length
      : 0;
    list[event.position] = list[event.position - 1]! + movements;
    prefixes.set(event.partition, list);
  }
  return prefixes;
}
