import { afterAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../../test/helpers/database.ts';
import { derivedId, newId } from '../../ids.ts';
import { eventStoreContract } from '../contract.testsuite.ts';
import { openEventStore } from '../open.ts';
import {
  ConcurrencyError,
  DuplicateCommandError,
  UniqueKeyError,
  type AppendRequest,
  type EventStore,
  type NewEvent,
} from '../port.ts';
import { StreamChainVerifier } from '../verify.ts';
import { CommandInProgressError, EsdbEventStore } from './esdb-event-store.ts';
import {
  ClientEsdbLog,
  EsdbUnknownOutcomeError,
  type EsdbAppendOutcome,
  type EsdbLog,
  type EsdbPosition,
} from './esdb-log.ts';
import type { EsdbNewEvent, EsdbStoredEvent } from './mapping.ts';
import { MemoryEsdbLog } from './memory-esdb-log.ts';

/**
 * With LEDGER_EVENT_STORE=esdb://... (or kurrentdb://...) everything here runs against that server; without it, the
 * same tests run against MemoryEsdbLog, the in-memory double of the server's documented semantics. Either way the side
 * tables live in a fresh SQL test database. docs/eventstore-esdb.md says what was verified where.
 */
const serverUrl = process.env['LEDGER_EVENT_STORE'];
const onServer = serverUrl !== undefined && /^(esdb|kurrentdb)(\+discover)?:\/\//.test(serverUrl);

const database = useTestDatabase();
let sharedLog: EsdbLog | undefined;
const log = (): EsdbLog => (sharedLog ??= onServer ? ClientEsdbLog.connect(serverUrl!) : new MemoryEsdbLog());
afterAll(async () => {
  await sharedLog?.close();
});

let sharedStore: EsdbEventStore | undefined;
eventStoreContract(
  onServer ? 'esdb' : 'esdb over the in-memory log (no server)',
  () => (sharedStore ??= new EsdbEventStore(log(), database.current.pool)),
);

/**
 * Wraps the log to stage what a network does: answers lost after a write landed, an outage, a write held in flight.
 * It wraps the real client as well as the double, so these tests mean the same on a server.
 */
class StagedLog implements EsdbLog {
  private answersToLose = 0;
  private downAfterNextWrite = false;
  private down = false;
  private appendsFail = false;
  private held: { reached: () => void; release: Promise<void> } | null = null;

  constructor(private readonly inner: EsdbLog) {}

  /** The next n appends land, but their answers are lost. */
  loseAnswers(count: number): void {
    this.answersToLose = count;
  }

  /** The next append lands, and from then on EventStoreDB is unreachable (until up()). */
  failAfterNextWrite(): void {
    this.downAfterNextWrite = true;
  }

  /** Every append times out without landing; reads still work (a leader that cannot commit). */
  failAppends(): void {
    this.appendsFail = true;
  }

  up(): void {
    this.down = false;
    this.appendsFail = false;
  }

  /** The next append waits at the wire until released. */
  holdNextAppend(): { reached: Promise<void>; release: () => void } {
    let release: () => void = () => undefined;
    let reached: () => void = () => undefined;
    const released = new Promise<void>((resolve) => (release = resolve));
    const reachedPromise = new Promise<void>((resolve) => (reached = resolve));
    this.held = { reached, release: released };
    return { reached: reachedPromise, release };
  }

  async append(
    streamName: string,
    events: readonly EsdbNewEvent[],
    expected: 'no_stream' | bigint,
  ): Promise<EsdbAppendOutcome> {
    if (this.held !== null) {
      const held = this.held;
      this.held = null;
      held.reached();
      await held.release;
    }
    if (this.down || this.appendsFail) throw new EsdbUnknownOutcomeError('staged: no answer');
    const outcome = await this.inner.append(streamName, events, expected);
    if (this.downAfterNextWrite) {
      this.downAfterNextWrite = false;
      this.down = true;
      throw new EsdbUnknownOutcomeError('staged: connection lost after the write');
    }
    if (this.answersToLose > 0) {
      this.answersToLose -= 1;
      throw new EsdbUnknownOutcomeError('staged: answer lost');
    }
    return outcome;
  }

  async readForward(streamName: string, fromRevision: bigint, maxCount: number): Promise<EsdbStoredEvent[]> {
    this.failIfDown();
    return this.inner.readForward(streamName, fromRevision, maxCount);
  }

  async readLast(streamName: string): Promise<EsdbStoredEvent | null> {
    this.failIfDown();
    return this.inner.readLast(streamName);
  }

  async readAllAfter(prefix: string, after: EsdbPosition, maxCount: number): Promise<EsdbStoredEvent[]> {
    this.failIfDown();
    return this.inner.readAllAfter(prefix, after, maxCount);
  }

  async close(): Promise<void> {
    // The inner log is shared by the file and closed once, in afterAll.
  }

  private failIfDown(): void {
    if (this.down) throw new Error('staged: EventStoreDB unavailable');
  }
}

const at = '2026-03-01T08:00:00.000Z';
const run = Date.now().toString(36);
let tenantCounter = 0;
const freshTenant = () => `e${run}-${(tenantCounter += 1)}`;
const event = (tenantId: string, data: unknown = { n: 1 }, recordedAt = at): NewEvent => ({
  eventId: newId(),
  type: 'Thing',
  data,
  metadata: { tenantId, recordedAt },
});
const plainStore = () => new EsdbEventStore(log(), database.current.pool);
const stagedStore = () => {
  const staged = new StagedLog(log());
  return { staged, store: new EsdbEventStore(staged, database.current.pool) };
};

async function setLease(tenantId: string, commandId: string, state: 'live' | 'expired'): Promise<void> {
  const value = state === 'live' ? 'UTC_TIMESTAMP(3)' : "'2000-01-01 00:00:00.000'";
  await database.current.pool.query(
    `UPDATE commands SET recorded_at = ${value} WHERE tenant_id = ? AND command_id = ? AND event_count = 0`,
    [tenantId, commandId],
  );
}

function commandAppend(
  tenantId: string,
  commandId: string,
  overrides: Partial<AppendRequest> = {},
): AppendRequest {
  return {
    tenantId,
    streamId: 'member-1',
    expectedVersion: 'any',
    events: [event(tenantId)],
    command: { commandId, requestHash: 'a'.repeat(64), response: { status: 201, body: { attempt: 1 } } },
    ...overrides,
  };
}

describe(`esdb event store: commands across unknown outcomes (${onServer ? 'server' : 'in-memory log'})`, () => {
  it('writes event ids derived from the command, not the ones given', async () => {
    const tenantId = freshTenant();
    const given = event(tenantId);
    const result = await plainStore().append(
      commandAppend(tenantId, 'idem-ids', { events: [given, event(tenantId)] }),
    );
    expect(result.events.map((e) => e.eventId)).toEqual([
      derivedId(tenantId, 'idem-ids', '0'),
      derivedId(tenantId, 'idem-ids', '1'),
    ]);
    expect(result.events[0]!.eventId).not.toBe(given.eventId);
    const read = await plainStore().readStream(tenantId, 'member-1');
    expect(read.map((e) => e.eventId)).toEqual(result.events.map((e) => e.eventId));
    expect(read.map((e) => e.position)).toEqual(result.events.map((e) => e.position));
  });

  it('recognises its own write after a lost answer and records it once', async () => {
    const tenantId = freshTenant();
    const { staged, store } = stagedStore();
    staged.loseAnswers(1);
    const result = await store.append(commandAppend(tenantId, 'idem-lost'));
    expect(result.streamVersion).toBe(1);
    expect(await plainStore().readStream(tenantId, 'member-1')).toHaveLength(1);
    expect((await plainStore().findCommand(tenantId, 'idem-lost'))?.response).toEqual({
      status: 201,
      body: { attempt: 1 },
    });
    expect(result.events[0]!.position).toBe(
      (await plainStore().readStream(tenantId, 'member-1'))[0]!.position,
    );
  });

  it('gives a retry the first outcome when the first attempt landed but never heard back, and writes nothing', async () => {
    const tenantId = freshTenant();
    const { staged, store } = stagedStore();
    staged.failAfterNextWrite();
    await expect(
      store.append(commandAppend(tenantId, 'idem-crash', { uniqueKeys: ['purchase:1'] })),
    ).rejects.toThrow();
    staged.up();
    // Not recorded yet: the command row is pending, its events are in EventStoreDB.
    expect(await plainStore().findCommand(tenantId, 'idem-crash')).toBeNull();
    expect(await plainStore().readStream(tenantId, 'member-1')).toHaveLength(1);

    // A process that died mid-write leaves its lease running: another request waits for it.
    await setLease(tenantId, 'idem-crash', 'live');
    const during = plainStore().append(commandAppend(tenantId, 'idem-crash'));
    await expect(during).rejects.toBeInstanceOf(CommandInProgressError);
    await expect(during).rejects.toBeInstanceOf(ConcurrencyError);

    await setLease(tenantId, 'idem-crash', 'expired');
    // The retry decides again (other data, another time and response); the first outcome stands.
    const retry = plainStore().append(
      commandAppend(tenantId, 'idem-crash', {
        events: [event(tenantId, { n: 2 }, '2026-03-01T08:05:00.000Z')],
        uniqueKeys: ['purchase:1'],
        command: {
          commandId: 'idem-crash',
          requestHash: 'a'.repeat(64),
          response: { status: 201, body: { attempt: 2 } },
        },
      }),
    );
    const error = await retry.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DuplicateCommandError);
    expect((error as DuplicateCommandError).record).toMatchObject({
      commandId: 'idem-crash',
      firstVersion: 1,
      eventCount: 1,
      response: { status: 201, body: { attempt: 1 } },
      recordedAt: at,
    });
    const read = await plainStore().readStream(tenantId, 'member-1');
    expect(read.map((e) => e.data)).toEqual([{ n: 1 }]);
    expect((await plainStore().findCommand(tenantId, 'idem-crash'))?.response).toEqual({
      status: 201,
      body: { attempt: 1 },
    });
    expect(await plainStore().findUniqueKey(tenantId, 'purchase:1')).toBe('member-1');
    expect((await plainStore().streamHead(tenantId, 'member-1'))?.version).toBe(1);
  });

  it('tells a second request of a command being written to retry, then replays the outcome', async () => {
    const tenantId = freshTenant();
    const { staged, store } = stagedStore();
    const hold = staged.holdNextAppend();
    const first = store.append(commandAppend(tenantId, 'idem-busy'));
    await hold.reached;
    await expect(plainStore().append(commandAppend(tenantId, 'idem-busy'))).rejects.toBeInstanceOf(
      CommandInProgressError,
    );
    expect(await plainStore().findCommand(tenantId, 'idem-busy')).toBeNull();
    hold.release();
    expect((await first).streamVersion).toBe(1);
    await expect(plainStore().append(commandAppend(tenantId, 'idem-busy'))).rejects.toBeInstanceOf(
      DuplicateCommandError,
    );
    expect(await plainStore().readStream(tenantId, 'member-1')).toHaveLength(1);
  });

  it('frees the command id and unique keys of an append that lost its version race', async () => {
    const tenantId = freshTenant();
    await expect(
      plainStore().append(
        commandAppend(tenantId, 'idem-race', { expectedVersion: 4, uniqueKeys: ['purchase:9'] }),
      ),
    ).rejects.toBeInstanceOf(ConcurrencyError);
    expect(await plainStore().findUniqueKey(tenantId, 'purchase:9')).toBeNull();
    expect(await plainStore().findCommand(tenantId, 'idem-race')).toBeNull();
    // Reload and decide again under the same command id, as the command runner does.
    const retried = await plainStore().append(
      commandAppend(tenantId, 'idem-race', { expectedVersion: 'no-stream', uniqueKeys: ['purchase:9'] }),
    );
    expect(retried.streamVersion).toBe(1);
    expect(await plainStore().findUniqueKey(tenantId, 'purchase:9')).toBe('member-1');
  });

  it('frees the keys of an abandoned command whose events never landed', async () => {
    const tenantId = freshTenant();
    const { staged, store } = stagedStore();
    staged.failAppends();
    await expect(
      store.append(commandAppend(tenantId, 'idem-gone', { uniqueKeys: ['purchase:5'] })),
    ).rejects.toBeInstanceOf(EsdbUnknownOutcomeError);
    staged.up();
    // The outcome was unknown, so the claim is kept; its lease ended when the attempt gave up.
    expect(await plainStore().findUniqueKey(tenantId, 'purchase:5')).toBe('member-1');
    const other = await plainStore().append(
      commandAppend(tenantId, 'idem-other', { streamId: 'member-2', uniqueKeys: ['purchase:5'] }),
    );
    expect(other.streamVersion).toBe(1);
    expect(await plainStore().findUniqueKey(tenantId, 'purchase:5')).toBe('member-2');
    expect(await plainStore().readStream(tenantId, 'member-1')).toEqual([]);
  });

  it('records an abandoned command whose events landed, and keeps its keys taken', async () => {
    const tenantId = freshTenant();
    const { staged, store } = stagedStore();
    staged.failAfterNextWrite();
    await expect(
      store.append(commandAppend(tenantId, 'idem-landed', { uniqueKeys: ['purchase:7'] })),
    ).rejects.toThrow();
    staged.up();
    const other = plainStore().append(
      commandAppend(tenantId, 'idem-later', { streamId: 'member-2', uniqueKeys: ['purchase:7'] }),
    );
    await expect(other).rejects.toBeInstanceOf(UniqueKeyError);
    expect((await plainStore().findCommand(tenantId, 'idem-landed'))?.eventCount).toBe(1);
    expect(await plainStore().readStream(tenantId, 'member-2')).toEqual([]);
  });

  it("keeps one hash chain when commands append with expected version 'any' at once", async () => {
    const tenantId = freshTenant();
    const results = await Promise.allSettled(
      Array.from({ length: 6 }, (_, i) =>
        plainStore().append(commandAppend(tenantId, `idem-any-${i}`, { events: [event(tenantId, { i })] })),
      ),
    );
    const won = results.filter((r) => r.status === 'fulfilled');
    for (const lost of results.filter((r): r is PromiseRejectedResult => r.status === 'rejected')) {
      expect(lost.reason).toBeInstanceOf(ConcurrencyError);
    }
    const read = await plainStore().readStream(tenantId, 'member-1');
    expect(read).toHaveLength(won.length);
    expect(won.length).toBeGreaterThan(0);
    const verifier = new StreamChainVerifier(tenantId, 'member-1');
    read.forEach((e) => verifier.add(e));
    expect(verifier.finish((await plainStore().streamHead(tenantId, 'member-1')) ?? undefined)).toEqual([]);
  });
});

describe(`esdb event store: log, heads and snapshots (${onServer ? 'server' : 'in-memory log'})`, () => {
  it('never mixes the logs of tenants whose ids extend one another', async () => {
    const short = freshTenant();
    const long = `${short}-eu`;
    await plainStore().append({
      tenantId: short,
      streamId: 'eu.member-1',
      expectedVersion: 'no-stream',
      events: [event(short)],
    });
    await plainStore().append({
      tenantId: long,
      streamId: 'member-1',
      expectedVersion: 'no-stream',
      events: [event(long)],
    });
    expect((await plainStore().readLog(short, 0, 0, 100)).map((e) => [e.tenantId, e.streamId])).toEqual([
      [short, 'eu.member-1'],
    ]);
    expect((await plainStore().readLog(long, 0, 0, 100)).map((e) => [e.tenantId, e.streamId])).toEqual([
      [long, 'member-1'],
    ]);
    expect(await plainStore().readStream(long, 'eu.member-1')).toEqual([]);
  });

  it('pages the log in position order and finds its head past the recorded one', async () => {
    const tenantId = freshTenant();
    for (let i = 0; i < 5; i++) {
      await plainStore().append({
        tenantId,
        streamId: `member-${i % 2}`,
        expectedVersion: 'any',
        events: [event(tenantId, { i })],
      });
    }
    const seen: number[] = [];
    let after = 0;
    for (;;) {
      const page = await plainStore().readLog(tenantId, 0, after, 2);
      if (page.length === 0) break;
      for (const e of page) {
        expect(e.position).toBeGreaterThan(after);
        expect(e.partition).toBe(0);
        expect(e.partitionHash).toBe('');
        after = e.position;
        seen.push((e.data as { i: number }).i);
      }
    }
    expect(seen).toEqual([0, 1, 2, 3, 4]);
    expect(await plainStore().partitionHeads(tenantId)).toEqual([
      { partition: 0, position: after, lastHash: '' },
    ]);
    // As if step 4 of the last appends never ran: the head is still found by reading on.
    await database.current.pool.query('UPDATE log_partitions SET next_position = 1 WHERE tenant_id = ?', [
      tenantId,
    ]);
    expect(await plainStore().partitionHeads(tenantId)).toEqual([
      { partition: 0, position: after, lastHash: '' },
    ]);
    expect(await plainStore().partitionHeads(freshTenant())).toEqual([]);
    expect(await plainStore().listTenants()).toContain(tenantId);
    await expect(plainStore().readLog(tenantId, 1, 0, 10)).rejects.toThrow(/partition 0/);
  });

  it('keeps a snapshot with the version it reflects, which may trail the stream', async () => {
    const tenantId = freshTenant();
    const store = plainStore();
    await store.append({
      tenantId,
      streamId: 's',
      expectedVersion: 'no-stream',
      events: [event(tenantId)],
      snapshot: { schemaVersion: 1, state: { balance: 10 } },
    });
    expect(await store.streamHead(tenantId, 's')).toMatchObject({
      version: 1,
      snapshotVersion: 1,
      snapshot: { state: { balance: 10 } },
    });
    await store.append({ tenantId, streamId: 's', expectedVersion: 1, events: [event(tenantId)] });
    expect(await store.streamHead(tenantId, 's')).toMatchObject({
      version: 2,
      snapshotVersion: 0,
      snapshot: null,
    });
    await store.saveSnapshot(tenantId, 's', 1, { schemaVersion: 1, state: { stale: true } });
    expect((await store.streamHead(tenantId, 's'))?.snapshot).toBeNull();
    await store.saveSnapshot(tenantId, 's', 2, { schemaVersion: 1, state: { balance: 20 } });
    const head = await store.streamHead(tenantId, 's');
    expect(head).toMatchObject({
      version: 2,
      snapshotVersion: 2,
      snapshot: { schemaVersion: 1, state: { balance: 20 } },
    });
    const verifier = new StreamChainVerifier(tenantId, 's');
    (await store.readStream(tenantId, 's')).forEach((e) => verifier.add(e));
    expect(verifier.finish(head ?? undefined)).toEqual([]);
  });
});

describe('openEventStore', () => {
  it('is the one place that picks the adapter', async () => {
    const pool = database.current.pool;
    const stores: EventStore[] = [
      await openEventStore({ eventStore: 'sql' }, pool),
      await openEventStore({ eventStore: 'esdb://localhost:2113?tls=false' }, pool),
      await openEventStore({ eventStore: 'kurrentdb://localhost:2113?tls=false' }, pool),
      await openEventStore({ eventStore: 'kurrentdb+discover://localhost:2113?tls=false' }, pool),
    ];
    expect(stores.map((store) => [store.kind, store.partitions])).toEqual([
      ['sql', 16],
      ['esdb', 1],
      ['esdb', 1],
      ['esdb', 1],
    ]);
    // The client connects lazily: closing one that never connected needs no server.
    for (const store of stores) await store.close();
    await expect(openEventStore({ eventStore: 'postgres://x' }, pool)).rejects.toThrow(/LEDGER_EVENT_STORE/);
  });
});
