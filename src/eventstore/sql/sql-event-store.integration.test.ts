import type { RowDataPacket } from 'mysql2/promise';
import { describe, expect, it } from 'vitest';
import { proxiedDatabase, useTestDatabase } from '../../../test/helpers/database.ts';
import { expectSoundLog, newEvent, streamIds } from '../../../test/helpers/events.ts';
import { openPool } from '../../db/pool.ts';
import { newId } from '../../ids.ts';
import { eventStoreContract } from '../contract.testsuite.ts';
import { partitionOf } from '../partition.ts';
import {
  ConcurrencyError,
  EventStoreBusyError,
  DuplicateCommandError,
  UniqueKeyError,
  type AppendRequest,
  type EventStore,
  type RecordedEvent,
} from '../port.ts';
import { PartitionChainVerifier, StreamChainVerifier, type ChainProblem } from '../verify.ts';
import { GROUP_LANES, type AppendTransactionObservation } from './group-commit.ts';
import { SqlEventStore, type SqlEventStoreOptions } from './sql-event-store.ts';

const database = useTestDatabase();
let sharedStore: SqlEventStore | undefined;
eventStoreContract('sql', () => (sharedStore ??= new SqlEventStore(database.current.pool)));

/**
 * Two stream ids whose events land in the same log partition, and one in a partition of another lane of
 * the group committer (so appended by another transaction).
 */
function streamsInPartitions(): { sameA: string; sameB: string; other: string } {
  const sameA = 'member-ooo-a';
  const target = partitionOf(sameA);
  let sameB = '';
  let other = '';
  // Bounded: with a single lane there is no stream in another lane, and the tests that need one must fail.
  for (let i = 0; (sameB === '' || other === '') && i < 10_000; i++) {
    const candidate = `member-ooo-${i}`;
    if (partitionOf(candidate) === target && sameB === '') sameB = candidate;
    if (partitionOf(candidate) % GROUP_LANES !== target % GROUP_LANES && other === '') other = candidate;
  }
  if (sameB === '' || other === '') throw new Error(`no stream beside ${sameA} or in another lane`);
  return { sameA, sameB, other };
}

/**
 * A store whose append to `heldStream` stops just before its COMMIT, with its rows and partition counter
 * locked, until `release()`; `reachedCommit` resolves when it gets there.
 */
function storeHoldingCommitOf(
  heldStream: string,
  options: SqlEventStoreOptions = {},
): { store: SqlEventStore; reachedCommit: Promise<void>; release: () => void } {
  let release: () => void = () => undefined;
  let reached: () => void = () => undefined;
  const held = new Promise<void>((resolve) => (release = resolve));
  const reachedCommit = new Promise<void>((resolve) => (reached = resolve));
  const store = new SqlEventStore(database.current.pool, {
    ...options,
    beforeCommit: async (request: AppendRequest) => {
      if (request.streamId === heldStream) {
        reached();
        await held;
      }
    },
  });
  return { store, reachedCommit, release };
}

/** `count` stream ids in the log partition of `streamId`, other than it. */
const streamsBeside = (streamId: string, count: number): string[] =>
  streamIds(streamId, count, (partition) => partition === partitionOf(streamId));

/** A consumer as the projector runs it: per-partition checkpoints, reading forward. */
async function drain(
  store: EventStore,
  tenantId: string,
  checkpoints: Map<number, number>,
): Promise<RecordedEvent[]> {
  const seen: RecordedEvent[] = [];
  for (let partition = 0; partition < store.partitions; partition++) {
    let after = checkpoints.get(partition) ?? 0;
    for (const e of await store.readLog(tenantId, partition, after, 1000)) {
      seen.push(e);
      after = e.position;
    }
    checkpoints.set(partition, after);
  }
  return seen;
}

describe('sql event store: group commit', () => {
  it('fails the bad requests of a shared batch alone, commits the good ones, and keeps the chains whole', async () => {
    const store = new SqlEventStore(database.current.pool);
    const tenantId = `gc-${newId().slice(0, 8)}`;
    // What the bad requests collide with, written first.
    await store.append({
      tenantId,
      streamId: 'member-existing',
      expectedVersion: 'no-stream',
      events: [newEvent(tenantId)],
      uniqueKeys: ['order:taken'],
      command: { commandId: 'cmd-recorded', requestHash: 'a'.repeat(64) },
    });
    const good = (i: number): AppendRequest => ({
      tenantId,
      streamId: `member-good-${i}`,
      expectedVersion: 'no-stream',
      events: [newEvent(tenantId, { i }), newEvent(tenantId, { i, second: true })],
      uniqueKeys: [`order:good-${i}`],
      command: { commandId: `cmd-good-${i}`, requestHash: 'b'.repeat(64) },
    });
    const bad: Record<string, AppendRequest> = {
      staleVersion: {
        tenantId,
        streamId: 'member-existing',
        expectedVersion: 7,
        events: [newEvent(tenantId)],
      },
      takenKey: { ...good(100), uniqueKeys: ['order:taken'] },
      recordedCommand: { ...good(101), command: { commandId: 'cmd-recorded', requestHash: 'a'.repeat(64) } },
    };
    // All are sent in one turn of the event loop: they go in one transaction per lane, the bad ones among
    // the good.
    const requests = [
      good(0),
      good(1),
      good(2),
      bad['staleVersion']!,
      good(3),
      bad['takenKey']!,
      good(4),
      good(5),
      bad['recordedCommand']!,
      good(6),
    ];
    const outcomes = await Promise.allSettled(requests.map((request) => store.append(request)));

    const reasonOf = (index: number) => {
      const outcome = outcomes[index]!;
      expect(outcome.status).toBe('rejected');
      return (outcome as PromiseRejectedResult).reason as unknown;
    };
    expect(reasonOf(3)).toBeInstanceOf(ConcurrencyError);
    expect(reasonOf(5)).toBeInstanceOf(UniqueKeyError);
    expect(reasonOf(8)).toBeInstanceOf(DuplicateCommandError);
    for (const index of [0, 1, 2, 4, 6, 7, 9]) {
      const outcome = outcomes[index]!;
      expect(outcome.status, String((outcome as PromiseRejectedResult).reason)).toBe('fulfilled');
      expect((outcome as PromiseFulfilledResult<{ streamVersion: number }>).value.streamVersion).toBe(2);
    }
    // Nothing of the bad requests was written; everything of the good ones was.
    expect(await store.readStream(tenantId, 'member-existing')).toHaveLength(1);
    expect(await store.readStream(tenantId, 'member-good-100')).toEqual([]);
    expect(await store.readStream(tenantId, 'member-good-101')).toEqual([]);
    expect(await store.findUniqueKey(tenantId, 'order:good-100')).toBeNull();
    for (const i of [0, 1, 2, 3, 4, 5, 6]) {
      expect((await store.readStream(tenantId, `member-good-${i}`)).map((e) => e.streamVersion)).toEqual([
        1, 2,
      ]);
    }
    // Every partition's log is dense from 1 and every chain verifies against its recorded head.
    const log = await expectSoundLog(store, tenantId);
    expect([...log.values()].reduce((total, events) => total + events.length, 0)).toBe(1 + 7 * 2);
  });
});

describe('sql event store: commit order', () => {
  it('delivers a transaction that started first but commits after a later one (held transaction)', async () => {
    const tenantId = 'ooo';
    const { sameA, sameB, other } = streamsInPartitions();
    const { store: holding, reachedCommit, release: releaseHeld } = storeHoldingCommitOf(sameA);
    const plain = new SqlEventStore(database.current.pool);
    const checkpoints = new Map<number, number>();
    // Partition rows exist before the race so both writers contend only on the rows that matter.
    await plain.append({
      tenantId,
      streamId: 'warm-up',
      expectedVersion: 'no-stream',
      events: [newEvent(tenantId)],
    });
    await drain(plain, tenantId, checkpoints);

    // A takes its position first and holds its transaction open just before COMMIT.
    const first = holding.append({
      tenantId,
      streamId: sameA,
      expectedVersion: 'no-stream',
      events: [newEvent(tenantId, 'A')],
    });
    await reachedCommit;
    // B in another partition commits while A is still open; C in A's partition must wait behind A.
    await plain.append({
      tenantId,
      streamId: other,
      expectedVersion: 'no-stream',
      events: [newEvent(tenantId, 'B')],
    });
    const third = plain.append({
      tenantId,
      streamId: sameB,
      expectedVersion: 'no-stream',
      events: [newEvent(tenantId, 'C')],
    });
    await new Promise((resolve) => setTimeout(resolve, 200));

    const early = await drain(plain, tenantId, checkpoints);
    expect(early.map((e) => e.data)).toEqual(['B']);

    releaseHeld();
    await Promise.all([first, third]);
    const late = await drain(plain, tenantId, checkpoints);
    // A committed after B, and after the consumer moved past B: it is still delivered, and before C.
    expect(late.map((e) => e.data)).toEqual(['A', 'C']);
    const partitionA = late[0]!.partition;
    expect(late[1]!.partition).toBe(partitionA);
    expect(late[1]!.position).toBe(late[0]!.position + 1);
  });
});

describe('sql event store: group commit', () => {
  it("keeps committing to the other lane's partitions while a transaction holds one open", async () => {
    const tenantId = 'lanes';
    const { sameA, sameB, other } = streamsInPartitions();
    const { store, reachedCommit, release: releaseHeld } = storeHoldingCommitOf(sameA);
    const append = (streamId: string, data: string) =>
      store.append({ tenantId, streamId, expectedVersion: 'no-stream', events: [newEvent(tenantId, data)] });
    await append('warm-up', 'W');

    const first = append(sameA, 'A');
    await reachedCommit;
    // B waits in the queue for A's lane; it must not take a second transaction on A's partition.
    let secondDone = false;
    const second = append(sameB, 'B').then((result) => {
      secondDone = true;
      return result;
    });
    const elsewhere = await Promise.race([
      append(other, 'C'),
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error('an append to the other lane waited on the held one')), 5_000),
      ),
    ]);
    expect(elsewhere.events[0]!.partition % GROUP_LANES).not.toBe(partitionOf(sameA) % GROUP_LANES);
    expect(secondDone).toBe(false);

    releaseHeld();
    const [a, b] = await Promise.all([first, second]);
    expect(b.events[0]!.partition).toBe(a.events[0]!.partition);
    expect(b.events[0]!.position).toBe(a.events[0]!.position + 1);
  });

  it('writes the appends sent in one turn of the event loop in one transaction per lane', async () => {
    const tenantId = 'one-turn';
    const transactions: AppendTransactionObservation[] = [];
    const store = new SqlEventStore(database.current.pool, {
      observeTransaction: (observation) => transactions.push(observation),
    });
    const append = (streamId: string, events = 1) =>
      store.append({
        tenantId,
        streamId,
        expectedVersion: 'no-stream',
        events: Array.from({ length: events }, () => newEvent(tenantId)),
      });
    await append('warm-up');
    const streams = streamIds('member-turn', 20, (partition) => partition % GROUP_LANES === 0);
    transactions.length = 0;
    const results = await Promise.all(streams.map((streamId, i) => append(streamId, 1 + (i % 3))));
    expect(results.map((r) => r.streamVersion)).toEqual(streams.map((_, i) => 1 + (i % 3)));
    expect(transactions).toHaveLength(1);
    expect(transactions[0]).toMatchObject({
      requests: 20,
      events: streams.reduce((n, _, i) => n + 1 + (i % 3), 0),
    });
    expect(transactions[0]!.seconds).toBeGreaterThan(0);
  });
});

describe('sql event store: a bounded queue', () => {
  it('turns an append away at once when as many wait as its lane queues, writing nothing for it', async () => {
    const tenantId = 'queue';
    const { sameA, other } = streamsInPartitions();
    const [waitingA, waitingB, refused] = streamsBeside(sameA, 3) as [string, string, string];
    const {
      store,
      reachedCommit,
      release: releaseHeld,
    } = storeHoldingCommitOf(sameA, { laneQueueRequestsMax: 2 });
    const append = (streamId: string) =>
      store.append({
        tenantId,
        streamId,
        expectedVersion: 'no-stream',
        events: [newEvent(tenantId, streamId)],
      });
    await append('warm-up');
    const first = append(sameA);
    await reachedCommit;
    // The held transaction owns the partition: appends to it wait in its lane's queue, which holds two.
    const waiting = [append(waitingA), append(waitingB)];
    await expect(append(refused)).rejects.toBeInstanceOf(EventStoreBusyError);
    // The other lane's queue is its own: its partitions keep taking appends while this lane is full.
    expect((await append(other)).streamVersion).toBe(1);
    releaseHeld();
    await Promise.all([first, ...waiting]);
    expect(await store.readStream(tenantId, refused)).toEqual([]);
    expect(await store.readStream(tenantId, waitingB)).toHaveLength(1);
    // With the queue drained, the refused append goes through when sent again.
    expect((await append(refused)).streamVersion).toBe(1);
  });
});

describe('sql event store: a client that goes silent inside its transaction', () => {
  it('loses its transaction after the idle timeout, and the partition it locked is writable again', async () => {
    const tenantId = 'silent';
    const { sameA, sameB } = streamsInPartitions();
    const { proxy, url } = await proxiedDatabase(database.current.url);
    const silentPool = await openPool(url, 2, { idleTransactionTimeoutSeconds: 2 });
    try {
      let silenced: () => void = () => undefined;
      const wentSilent = new Promise<void>((resolve) => (silenced = resolve));
      // The hook runs with the writes sent and the partition's counter row locked, just before COMMIT:
      // from here on nothing this client sends reaches the server, and nothing comes back.
      const silent = new SqlEventStore(silentPool, {
        beforeCommit: async () => {
          proxy.freeze();
          silenced();
        },
      });
      const plain = new SqlEventStore(database.current.pool);
      await plain.append({
        tenantId,
        streamId: 'warm-up',
        expectedVersion: 'no-stream',
        events: [newEvent(tenantId)],
      });
      const lost = silent
        .append({
          tenantId,
          streamId: sameA,
          expectedVersion: 'no-stream',
          events: [newEvent(tenantId, 'A')],
        })
        .then(
          () => 'committed',
          () => 'failed',
        );
      await wentSilent;
      const started = Date.now();
      const other = await Promise.race([
        plain.append({
          tenantId,
          streamId: sameB,
          expectedVersion: 'no-stream',
          events: [newEvent(tenantId, 'B')],
        }),
        new Promise<never>((_, reject) =>
          setTimeout(() => reject(new Error('the silent transaction still holds the partition')), 20_000),
        ),
      ]);
      expect(Date.now() - started).toBeGreaterThanOrEqual(1_000);
      expect(other.events[0]!.partition).toBe(partitionOf(sameA));
      expect(await plain.readStream(tenantId, sameA)).toEqual([]);
      await proxy.close();
      expect(await lost).toBe('failed');
    } finally {
      await proxy.close();
      await silentPool.end();
    }
  });
});

describe('sql event store: tamper detection with direct SQL', () => {
  const tenantId = 'tamper';

  async function seed(streamId: string, count: number): Promise<void> {
    const store = new SqlEventStore(database.current.pool);
    for (let i = 0; i < count; i++) {
      await store.append({
        tenantId,
        streamId,
        expectedVersion: i === 0 ? 'no-stream' : i,
        events: [newEvent(tenantId, { i })],
      });
    }
  }

  async function verify(streamId: string): Promise<ChainProblem[]> {
    const store = new SqlEventStore(database.current.pool);
    const streamVerifier = new StreamChainVerifier(tenantId, streamId);
    for (const e of await store.readStream(tenantId, streamId)) streamVerifier.add(e);
    const head = await store.streamHead(tenantId, streamId);
    const problems = streamVerifier.finish(head ?? undefined);
    const partition = partitionOf(streamId);
    const partitionVerifier = new PartitionChainVerifier(tenantId, partition);
    for (const e of await store.readLog(tenantId, partition, 0, 10_000)) partitionVerifier.add(e);
    const partitionHead = (await store.partitionHeads(tenantId)).find((h) => h.partition === partition);
    return [...problems, ...partitionVerifier.finish(partitionHead)];
  }

  async function exec(sql: string, params: unknown[]): Promise<void> {
    await database.current.pool.query(sql, params);
  }

  it('finds nothing wrong with an untouched stream', async () => {
    await seed('member-clean', 4);
    expect(await verify('member-clean')).toEqual([]);
  });

  it('detects a modified event and names its stream and version', async () => {
    await seed('member-modified', 4);
    await exec(
      `UPDATE events SET data = '{"i":99}' WHERE tenant_id = ? AND stream_id = ? AND stream_version = 2`,
      [tenantId, 'member-modified'],
    );
    const problems = await verify('member-modified');
    expect(problems).toContainEqual(
      expect.objectContaining({ kind: 'content-changed', streamId: 'member-modified', streamVersion: 2 }),
    );
  });

  it('detects a deleted event', async () => {
    await seed('member-deleted', 4);
    await exec('DELETE FROM events WHERE tenant_id = ? AND stream_id = ? AND stream_version = 3', [
      tenantId,
      'member-deleted',
    ]);
    const problems = await verify('member-deleted');
    expect(problems).toContainEqual(
      expect.objectContaining({ kind: 'gap', streamId: 'member-deleted', streamVersion: 4 }),
    );
  });

  it('detects a truncated tail against the recorded head', async () => {
    await seed('member-truncated', 4);
    await exec('DELETE FROM events WHERE tenant_id = ? AND stream_id = ? AND stream_version = 4', [
      tenantId,
      'member-truncated',
    ]);
    const problems = await verify('member-truncated');
    expect(problems).toContainEqual(
      expect.objectContaining({ kind: 'head-mismatch', streamId: 'member-truncated' }),
    );
  });

  it('detects an inserted event', async () => {
    await seed('member-inserted', 3);
    // A forged event placed at the end of the stream, hashed with a made-up predecessor.
    const [rows] = await database.current.pool.query<RowDataPacket[]>(
      'SELECT * FROM events WHERE tenant_id = ? AND stream_id = ? AND stream_version = 3',
      [tenantId, 'member-inserted'],
    );
    const row = rows[0]!;
    await exec(
      `INSERT INTO events (tenant_id, partition_no, position, stream_id, stream_version, event_id, event_type, data, metadata,
        recorded_at, stream_hash, partition_hash) VALUES (?, ?, ?, ?, 4, ?, 'Thing', '{"i":1000}', ?, ?, ?, ?)`,
      [
        tenantId,
        row['partition_no'],
        Number(row['position']) + 100_000,
        'member-inserted',
        newId(),
        row['metadata'],
        row['recorded_at'],
        'f'.repeat(64),
        'f'.repeat(64),
      ],
    );
    const problems = await verify('member-inserted');
    expect(problems).toContainEqual(
      expect.objectContaining({ kind: 'content-changed', streamId: 'member-inserted', streamVersion: 4 }),
    );
    expect(problems.some((p) => p.kind === 'gap' || p.kind === 'chain-broken')).toBe(true);
  });

  it('detects two events swapped', async () => {
    await seed('member-swapped', 4);
    const pool = database.current.pool;
    const [rows] = await pool.query<RowDataPacket[]>(
      'SELECT stream_version, data FROM events WHERE tenant_id = ? AND stream_id = ? AND stream_version IN (2, 3) ORDER BY stream_version',
      [tenantId, 'member-swapped'],
    );
    await exec('UPDATE events SET data = ? WHERE tenant_id = ? AND stream_id = ? AND stream_version = 2', [
      rows[1]!['data'],
      tenantId,
      'member-swapped',
    ]);
    await exec('UPDATE events SET data = ? WHERE tenant_id = ? AND stream_id = ? AND stream_version = 3', [
      rows[0]!['data'],
      tenantId,
      'member-swapped',
    ]);
    const problems = await verify('member-swapped');
    const flagged = problems.filter((p) => p.kind === 'content-changed').map((p) => p.streamVersion);
    expect(flagged).toEqual([2, 3]);
  });
});
