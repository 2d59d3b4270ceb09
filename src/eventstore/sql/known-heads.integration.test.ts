import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../../test/helpers/database.ts';
import { expectSoundLog, newEvent, streamIds } from '../../../test/helpers/events.ts';
import {
  ConcurrencyError,
  DuplicateCommandError,
  type AppendRequest,
  type AppendResult,
  type RecordedEvent,
} from '../port.ts';
import type { AppendTransactionObservation } from './group-commit.ts';
import { SqlEventStore, type SqlEventStoreOptions } from './sql-event-store.ts';

/**
 * Appends in one round trip from the heads a store's own commits left (head-cache.ts), and what happens
 * when another writer (another process: here another store instance on the same database) moved a head.
 */
const database = useTestDatabase();

/** A store whose every transaction is recorded, in order. */
function observedStore(options: SqlEventStoreOptions = {}): {
  store: SqlEventStore;
  transactions: AppendTransactionObservation[];
} {
  const transactions: AppendTransactionObservation[] = [];
  const store = new SqlEventStore(database.current.pool, {
    ...options,
    observeTransaction: (observation) => transactions.push(observation),
  });
  return { store, transactions };
}

/** `count` stream ids (prefix-0, prefix-1, ...) whose events land in log partition `partition`. */
const streamsInPartition = (prefix: string, partition: number, count: number): string[] =>
  streamIds(prefix, count, (p) => p === partition);

const append = (
  store: SqlEventStore,
  tenantId: string,
  streamId: string,
  expectedVersion: AppendRequest['expectedVersion'],
  extra: Partial<AppendRequest> = {},
): Promise<AppendResult> =>
  store.append({ tenantId, streamId, expectedVersion, events: [newEvent(tenantId, streamId)], ...extra });

describe('sql event store: appends on known heads', () => {
  it('appends again to a stream it appended before in one round trip, and the log stays sound', async () => {
    const tenantId = 'known-own';
    const { store, transactions } = observedStore();
    const [stream] = streamsInPartition('member-own', 3, 1) as [string];
    await append(store, tenantId, stream, 'no-stream');
    const second = await append(store, tenantId, stream, 1);
    const third = await append(store, tenantId, stream, 'any');
    expect([second.streamVersion, third.streamVersion]).toEqual([2, 3]);
    expect(transactions.map((t) => t.oneRoundTrip)).toEqual([false, true, true]);
    expect(third.events[0]!.position).toBe(second.events[0]!.position + 1);
    expect((await expectSoundLog(store, tenantId)).get(stream)).toHaveLength(3);
  });

  it('takes the locking way when another writer moved the partition, and writes at the next position', async () => {
    const tenantId = 'known-partition';
    const mine = observedStore();
    const other = observedStore();
    const [ours, theirs] = streamsInPartition('member-partition', 5, 2) as [string, string];
    await append(mine.store, tenantId, ours, 'no-stream');
    // Another process appends twice to the same partition: this store's partition head is now behind.
    await append(other.store, tenantId, theirs, 'no-stream');
    await append(other.store, tenantId, theirs, 1);
    const result = await append(mine.store, tenantId, ours, 1);
    expect(result.streamVersion).toBe(2);
    expect(result.events[0]!.position).toBe(4);
    // The one-round-trip attempt failed on the taken position and wrote nothing; the locking one wrote.
    expect(mine.transactions.map((t) => t.oneRoundTrip)).toEqual([false, false]);
    const log = await expectSoundLog(mine.store, tenantId);
    expect(log.get(ours)!.map((e) => e.streamVersion)).toEqual([1, 2]);
    // And from the heads that left, the next append is one round trip again.
    await append(mine.store, tenantId, ours, 2);
    expect(mine.transactions.at(-1)!.oneRoundTrip).toBe(true);
  });

  it('refuses an expected version another writer overtook, writing nothing, though its head was known', async () => {
    const tenantId = 'known-stream';
    const mine = observedStore();
    const other = observedStore();
    const [stream] = streamsInPartition('member-stream', 7, 1) as [string];
    await append(mine.store, tenantId, stream, 'no-stream');
    await append(other.store, tenantId, stream, 1);
    // This store still knows version 1: its expectation matches its cache, and the database says no.
    await expect(append(mine.store, tenantId, stream, 1)).rejects.toBeInstanceOf(ConcurrencyError);
    const afterRefusal = await append(mine.store, tenantId, stream, 2);
    expect(afterRefusal.streamVersion).toBe(3);
    expect((await expectSoundLog(mine.store, tenantId)).get(stream)!.map((e) => e.data)).toEqual([
      stream,
      stream,
      stream,
    ]);
  });

  it('refuses a command id already recorded, on known heads too, and writes nothing', async () => {
    const tenantId = 'known-command';
    const { store } = observedStore();
    const [stream] = streamsInPartition('member-command', 2, 1) as [string];
    const command = { commandId: 'cmd-1', requestHash: 'a'.repeat(64) };
    await append(store, tenantId, stream, 'no-stream', { command });
    await expect(append(store, tenantId, stream, 1, { command })).rejects.toBeInstanceOf(
      DuplicateCommandError,
    );
    expect((await store.streamHead(tenantId, stream))!.version).toBe(1);
    expect(await append(store, tenantId, stream, 1)).toMatchObject({ streamVersion: 2 });
    await expectSoundLog(store, tenantId);
  });

  it('keeps commit order equal to position order when it meets another writer holding its partition', async () => {
    const tenantId = 'known-held';
    const mine = observedStore();
    const [ours, held] = streamsInPartition('member-held', 9, 2) as [string, string];
    let release: () => void = () => undefined;
    let reached: () => void = () => undefined;
    const holding = new Promise<void>((resolve) => (release = resolve));
    const reachedCommit = new Promise<void>((resolve) => (reached = resolve));
    const other = new SqlEventStore(database.current.pool, {
      beforeCommit: async (request) => {
        if (request.streamId !== held) return;
        reached();
        await holding;
      },
    });
    await append(mine.store, tenantId, ours, 'no-stream'); // position 1; this store now knows next = 2
    const first = append(other, tenantId, held, 'no-stream'); // takes position 2 and holds its COMMIT
    await reachedCommit;
    const second = append(mine.store, tenantId, ours, 1);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await mine.store.readLog(tenantId, 9, 1, 10)).toEqual([]);
    release();
    const [a, b] = await Promise.all([first, second]);
    expect(a.events[0]!.position).toBe(2);
    expect(b.events[0]!.position).toBe(3);
    await expectSoundLog(mine.store, tenantId);
  });

  it('finds the database set back under it (a restored backup) and leaves no gap in the log', async () => {
    const tenantId = 'known-restore';
    const { store, transactions } = observedStore();
    const [stream] = streamsInPartition('member-restore', 6, 1) as [string];
    const first = await append(store, tenantId, stream, 'no-stream');
    await append(store, tenantId, stream, 1);
    // A backup from between the two appends is restored while the store runs: the second event and the
    // heads it left are gone, and the store still knows version 2 and position 3 as next.
    const [event] = first.events as [RecordedEvent];
    const pool = database.current.pool;
    await pool.query('DELETE FROM events WHERE tenant_id = ? AND stream_id = ? AND stream_version = 2', [
      tenantId,
      stream,
    ]);
    await pool.query('UPDATE streams SET version = 1, last_hash = ? WHERE tenant_id = ? AND stream_id = ?', [
      event.streamHash,
      tenantId,
      stream,
    ]);
    await pool.query(
      'UPDATE log_partitions SET next_position = 2, last_hash = ? WHERE tenant_id = ? AND partition_no = 6',
      [event.partitionHash, tenantId],
    );
    // Its caller expects version 2, as the store does: the database's version 1 refuses it, writing nothing.
    await expect(append(store, tenantId, stream, 2)).rejects.toBeInstanceOf(ConcurrencyError);
    const again = await append(store, tenantId, stream, 1);
    expect(again.streamVersion).toBe(2);
    expect(again.events[0]!.position).toBe(2);
    expect(transactions.at(-1)!.oneRoundTrip).toBe(false);
    await expectSoundLog(store, tenantId);
  });

  it('holds every invariant of the log under random appends from three writers', async () => {
    // Streams over two partitions, so writers meet on partitions as well as on streams.
    const streams = [...streamsInPartition('member-prop', 1, 3), ...streamsInPartition('member-prop', 4, 3)];
    const step = fc.record({
      writer: fc.integer({ min: 0, max: 2 }),
      stream: fc.integer({ min: 0, max: streams.length - 1 }),
      events: fc.integer({ min: 1, max: 3 }),
    });
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(step, { minLength: 1, maxLength: 4 }), { maxLength: 12 }),
        async (rounds) => {
          const tenantId = `known-prop-${run++}`;
          const writers = [0, 1, 2].map(() => new SqlEventStore(database.current.pool));
          // What each writer believes each stream's version is: what it last saw, possibly stale.
          const beliefs = writers.map(() => new Map<string, number>());
          const appended = new Map<string, string[]>(); // stream -> event ids of accepted appends, in order
          for (const round of rounds) {
            // One round's appends run at once; two of them may meet on a stream or a partition.
            const outcomes = await Promise.allSettled(
              round.map(({ writer, stream, events }) => {
                const streamId = streams[stream]!;
                const believed = beliefs[writer]!.get(streamId) ?? 0;
                const batch = Array.from({ length: events }, () => newEvent(tenantId, streamId));
                return writers[writer]!.append({
                  tenantId,
                  streamId,
                  expectedVersion: believed === 0 ? 'no-stream' : believed,
                  events: batch,
                }).then((result) => ({ result, ids: batch.map((e) => e.eventId), believed }));
              }),
            );
            for (const [index, outcome] of outcomes.entries()) {
              const { writer, stream, events } = round[index]!;
              const streamId = streams[stream]!;
              if (outcome.status === 'fulfilled') {
                const { result, ids, believed } = outcome.value;
                expect(result.streamVersion).toBe(believed + events);
                beliefs[writer]!.set(streamId, result.streamVersion);
                appended.set(streamId, [...(appended.get(streamId) ?? []), ...ids]);
              } else {
                const error: unknown = outcome.reason;
                expect(error).toBeInstanceOf(ConcurrencyError);
                beliefs[writer]!.set(streamId, (error as ConcurrencyError).actual ?? 0);
              }
            }
          }
          const log = await expectSoundLog(writers[0]!, tenantId);
          for (const streamId of streams) {
            const events = [...(log.get(streamId) ?? [])].sort((a, b) => a.streamVersion - b.streamVersion);
            // Every accepted append exactly once, in the order the stream accepted them; nothing else.
            expect(events.map((e) => e.eventId)).toEqual(appended.get(streamId) ?? []);
          }
        },
      ),
      { numRuns: 40 },
    );
  });
});
