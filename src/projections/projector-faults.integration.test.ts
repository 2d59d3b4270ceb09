import { describe, expect, it } from 'vitest';
import { appendMember, createTenantStream, prng, simulateMember } from '../../scripts/generate-history.ts';
import { useTestDatabase } from '../../test/helpers/database.ts';
import { memberStreamId } from '../commands/streams.ts';
import { partitionOf } from '../eventstore/partition.ts';
import type { AppendRequest } from '../eventstore/port.ts';
import { SqlEventStore } from '../eventstore/sql/sql-event-store.ts';
import type { BatchInfo, CommittedBatch } from './batch.ts';
import { readModelContent, replayModel } from './replay-model.ts';
import { Projector } from './runtime.ts';
import { projectionStatus } from './status.ts';
import { setTagRules, type TagRule } from './tags.ts';

const database = useTestDatabase();
const store = () => new SqlEventStore(database.current.pool);
const RULES: TagRule[] = [
  { category: '*', minPurchases: 2, windowDays: 60, tagPattern: 'repeat:{category}' },
];

class InjectedCrash extends Error {
  override name = 'InjectedCrash';
}

async function waitFor(condition: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function caughtUp(tenantId: string): Promise<boolean> {
  const status = await projectionStatus(database.current.pool, store());
  return status.partitions.filter((p) => p.tenantId === tenantId).every((p) => p.lag === 0);
}

describe('projector under faults', () => {
  it('crashing at random points, many times, during a run still ends exactly at a fresh replay', async () => {
    const tenantId = 'crashy';
    const pool = database.current.pool;
    await setTagRules(pool, tenantId, RULES);
    await createTenantStream(store(), tenantId);
    const random = prng(2024);
    let crashes = 0;
    let steps = 0;
    const crashAt = (where: string) => {
      steps += 1;
      // About one crash per two batches, at any statement or just before COMMIT.
      if (random() < 0.06) {
        crashes += 1;
        throw new InjectedCrash(`crash at ${where}`);
      }
    };
    let member = 0;
    for (let round = 0; round < 40; round++) {
      // Events keep arriving between crashes.
      for (let i = 0; i < 3; i++)
        await appendMember(
          store(),
          tenantId,
          simulateMember({ tenantId, seed: 5, eventsPerMember: 25, stores: 4 }, member++),
        );
      // A crashed process restarts with the same owner id (a pod restarting) and so takes its leases back at once.
      const projector = new Projector(pool, store(), {
        owner: 'crashy-pod-0',
        batchEvents: 13,
        hooks: {
          beforeStatement: (step: string) => crashAt(step),
          beforeCommit: () => crashAt('commit'),
        },
      });
      await projector.runOnce().catch((error: unknown) => {
        if (!(error instanceof InjectedCrash)) throw error;
      });
    }
    // Finally a clean run.
    await new Projector(pool, store(), { owner: 'crashy-pod-0', batchEvents: 13 }).runOnce();
    expect(crashes).toBeGreaterThan(30);
    expect(steps).toBeGreaterThan(crashes * 5);

    const expected = await replayModel(store(), tenantId, { rules: RULES });
    const actual = await readModelContent(pool, tenantId);
    // Ledger entry count = movement count, lifetime totals exact: nothing applied twice, nothing skipped.
    expect(Object.keys(actual.ledger).length).toBe(Object.keys(expected.ledger).length);
    expect(actual).toEqual(expected);
  });

  it('two projectors started together never process one partition at once, and end exact', async () => {
    const tenantId = 'pair';
    const pool = database.current.pool;
    await createTenantStream(store(), tenantId);
    const committed: CommittedBatch[] = [];
    const inFlight = new Map<string, string>();
    const overlaps: string[] = [];
    const hooks = {
      beforeStatement: (step: string, info: BatchInfo) => {
        if (step !== 'lock-checkpoint') return;
        const key = `${info.tenantId}/${info.partition}`;
        const other = inFlight.get(key);
        if (other !== undefined && other !== info.owner)
          overlaps.push(`${key}: ${info.owner} while ${other}`);
        inFlight.set(key, info.owner);
      },
      afterCommit: (batch: CommittedBatch) => {
        committed.push(batch);
        inFlight.delete(`${batch.tenantId}/${batch.partition}`);
      },
    };
    const errors: unknown[] = [];
    const options = {
      leaseSeconds: 3,
      idleSleepMs: 20,
      batchEvents: 50,
      hooks,
      onError: (error: unknown) => errors.push(error),
    };
    const a = new Projector(pool, store(), { ...options, owner: 'proj-a' });
    const b = new Projector(pool, store(), { ...options, owner: 'proj-b' });
    a.start();
    b.start();
    try {
      let member = 0;
      const writeMembersUpTo = (last: number) =>
        Promise.all(
          Array.from({ length: 4 }, async () => {
            while (member < last)
              await appendMember(
                store(),
                tenantId,
                simulateMember({ tenantId, seed: 9, eventsPerMember: 20, stores: 4 }, member++),
              );
          }),
        );
      await writeMembersUpTo(80);
      await waitFor(() => caughtUp(tenantId), 30_000);
      // Once they see each other, each holds a fair share: half of each tenant's partitions (this file's
      // other tenants are in the database too; half of all partitions could be all of one tenant's).
      const tenants = await store().listTenants();
      expect(tenants.length).toBeGreaterThan(1);
      const half = store().partitions / 2;
      const fair = (projector: Projector) =>
        tenants.every(
          (tenant) =>
            projector.ownedPartitions().filter((lease) => lease.tenantId === tenant).length === half,
        );
      await waitFor(async () => fair(a) && fair(b), 10_000);
      // On a loaded machine one projector may apply the whole first round before the other takes a share; a
      // second round, written while each owns half, is applied by both.
      await writeMembersUpTo(120);
      await waitFor(() => caughtUp(tenantId), 30_000);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
    expect(errors).toEqual([]);
    expect(overlaps).toEqual([]);
    // Committed batches of one partition never overlap in time, and positions chain without gaps or repeats.
    const byPartition = new Map<number, CommittedBatch[]>();
    for (const batch of committed)
      byPartition.set(batch.partition, [...(byPartition.get(batch.partition) ?? []), batch]);
    for (const batches of byPartition.values()) {
      batches.sort((x, y) => x.fromPosition - y.fromPosition);
      for (let i = 1; i < batches.length; i++) {
        expect(batches[i]!.fromPosition).toBe(batches[i - 1]!.toPosition);
        if (batches[i]!.owner !== batches[i - 1]!.owner)
          expect(batches[i]!.startedAtMs).toBeGreaterThanOrEqual(batches[i - 1]!.committedAtMs - 1);
      }
    }
    expect(new Set(committed.map((batch) => batch.owner))).toEqual(new Set(['proj-a', 'proj-b']));
    expect(await readModelContent(pool, tenantId)).toEqual(await replayModel(store(), tenantId));
  });

  it("three projectors share every tenant's partitions out, each held once, and rebalance when one stops", async () => {
    const pool = database.current.pool;
    // This file's other tenants are in the database too; one more makes sure there are several.
    await createTenantStream(store(), 'trio');
    const tenants = await store().listTenants();
    expect(tenants.length).toBeGreaterThan(1);
    const partitions = store().partitions;
    const options = { leaseSeconds: 3, idleSleepMs: 20, onError: () => undefined };
    const projectors = ['trio-a', 'trio-b', 'trio-c'].map(
      (owner) => new Projector(pool, store(), { ...options, owner }),
    );
    /** Every tenant's partitions held exactly once, no process above its share of any tenant. */
    const sharedOut = (running: Projector[]) => {
      const share = Math.ceil(partitions / running.length);
      return tenants.every((tenant) => {
        const held = running.map((p) => p.ownedPartitions().filter((lease) => lease.tenantId === tenant));
        const all = held.flat().map((lease) => lease.partition);
        return (
          all.length === partitions &&
          new Set(all).size === partitions &&
          held.every((h) => h.length <= share)
        );
      });
    };
    for (const projector of projectors) projector.start();
    try {
      await waitFor(async () => sharedOut(projectors), 20_000);
      // One stops (gives its leases back): the other two take its partitions, at most 8 of a tenant each.
      await projectors[2]!.stop();
      await waitFor(async () => sharedOut(projectors.slice(0, 2)), 20_000);
    } finally {
      await Promise.all(projectors.map((projector) => projector.stop()));
    }
  });

  it('an append that commits after later ones (held transaction) still reaches the read models', async () => {
    const tenantId = 'ooo';
    const pool = database.current.pool;
    // One writer whose partition rows are known before the race, so it contends only on the rows that matter.
    const plain = store();
    await createTenantStream(plain, tenantId);
    // Two members whose streams share a partition, and one in another partition.
    const members = Array.from({ length: 400 }, (_, i) =>
      simulateMember({ tenantId, seed: 13, eventsPerMember: 6, stores: 2 }, i),
    );
    const first = members[0]!;
    const partition = partitionOf(memberStreamId(first.memberId));
    const same = members.find((m, i) => i > 0 && partitionOf(memberStreamId(m.memberId)) === partition)!;
    const other = members.find((m) => partitionOf(memberStreamId(m.memberId)) !== partition)!;

    let release: () => void = () => undefined;
    let reached: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    const atCommit = new Promise<void>((resolve) => (reached = resolve));
    const holding = new SqlEventStore(pool, {
      beforeCommit: async (request: AppendRequest) => {
        if (request.streamId === memberStreamId(first.memberId)) {
          reached();
          await held;
        }
      },
    });
    const projector = new Projector(pool, store(), {
      owner: 'ooo-1',
      idleSleepMs: 10,
      onError: () => undefined,
    });
    projector.start();
    try {
      const slow = appendMember(holding, tenantId, first);
      await atCommit;
      await appendMember(plain, tenantId, other);
      const behind = appendMember(plain, tenantId, same); // waits on the partition row behind the held append
      await waitFor(
        async () => (await readModelContent(pool, tenantId)).accounts[other.memberId] !== undefined,
        10_000,
      );
      const early = await readModelContent(pool, tenantId);
      expect(early.accounts[first.memberId]).toBeUndefined();
      expect(early.accounts[same.memberId]).toBeUndefined();
      release();
      await Promise.all([slow, behind]);
      await waitFor(() => caughtUp(tenantId), 10_000);
    } finally {
      release();
      await projector.stop();
    }
    const actual = await readModelContent(pool, tenantId);
    expect(actual.accounts[first.memberId]?.version).toBe(first.events.length);
    expect(actual.accounts[same.memberId]?.version).toBe(same.events.length);
    expect(actual).toEqual(await replayModel(store(), tenantId));
  });
});
