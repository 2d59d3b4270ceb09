import { describe, expect, it } from 'vitest';
import { newId } from '../ids.ts';
import { PartitionChainVerifier, StreamChainVerifier } from './verify.ts';
import {
  ConcurrencyError,
  DuplicateCommandError,
  UniqueKeyError,
  type EventStore,
  type NewEvent,
  type RecordedEvent,
} from './port.ts';

/**
 * The contract every event store adapter keeps. Each adapter's integration test calls this with a factory
 * that returns a store on fresh storage; tenants are unique per test so tests never see each other's data.
 */
export function eventStoreContract(name: string, store: () => EventStore): void {
  let tenantCounter = 0;
  const freshTenant = () => `t${Date.now().toString(36)}-${(tenantCounter += 1)}`;
  const at = '2026-03-01T08:00:00.000Z';
  const event = (tenantId: string, type = 'Thing', data: unknown = { n: 1 }): NewEvent => ({
    eventId: newId(),
    type,
    data,
    metadata: { tenantId, recordedAt: at },
  });

  describe(`event store contract: ${name}`, () => {
    it('appends and reads a stream with versions from 1 and verifiable hashes', async () => {
      const tenantId = freshTenant();
      const first = await store().append({
        tenantId,
        streamId: 'member-a',
        expectedVersion: 'no-stream',
        events: [event(tenantId, 'A', { n: 1 }), event(tenantId, 'B', { n: 2 })],
      });
      expect(first.streamVersion).toBe(2);
      const second = await store().append({
        tenantId,
        streamId: 'member-a',
        expectedVersion: 2,
        events: [event(tenantId, 'C', { text: 'héllo "quoted" \u2028' })],
      });
      expect(second.streamVersion).toBe(3);
      const read = await store().readStream(tenantId, 'member-a');
      expect(read.map((e) => [e.type, e.streamVersion])).toEqual([
        ['A', 1],
        ['B', 2],
        ['C', 3],
      ]);
      expect(read[2]?.data).toEqual({ text: 'héllo "quoted" \u2028' });
      expect(read[0]?.metadata.recordedAt).toBe(at);
      const verifier = new StreamChainVerifier(tenantId, 'member-a');
      read.forEach((e) => verifier.add(e));
      const head = await store().streamHead(tenantId, 'member-a');
      expect(head?.version).toBe(3);
      expect(verifier.finish(head ?? undefined)).toEqual([]);
      expect((await store().readStream(tenantId, 'member-a', { fromVersion: 3 })).map((e) => e.type)).toEqual(
        ['C'],
      );
    });

    it('lets exactly one of two writers at the same expected version win', async () => {
      const tenantId = freshTenant();
      await store().append({
        tenantId,
        streamId: 's',
        expectedVersion: 'no-stream',
        events: [event(tenantId)],
      });
      const results = await Promise.allSettled([
        store().append({ tenantId, streamId: 's', expectedVersion: 1, events: [event(tenantId, 'X')] }),
        store().append({ tenantId, streamId: 's', expectedVersion: 1, events: [event(tenantId, 'Y')] }),
      ]);
      const won = results.filter((r) => r.status === 'fulfilled');
      const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      expect(won).toHaveLength(1);
      expect(lost).toHaveLength(1);
      expect(lost[0]?.reason).toBeInstanceOf(ConcurrencyError);
      expect(await store().readStream(tenantId, 's')).toHaveLength(2);
    });

    it('refuses a stream that exists when no stream is expected, and a wrong version', async () => {
      const tenantId = freshTenant();
      await store().append({
        tenantId,
        streamId: 's',
        expectedVersion: 'no-stream',
        events: [event(tenantId)],
      });
      await expect(
        store().append({ tenantId, streamId: 's', expectedVersion: 'no-stream', events: [event(tenantId)] }),
      ).rejects.toBeInstanceOf(ConcurrencyError);
      await expect(
        store().append({ tenantId, streamId: 's', expectedVersion: 5, events: [event(tenantId)] }),
      ).rejects.toBeInstanceOf(ConcurrencyError);
      await expect(
        store().append({ tenantId, streamId: 'missing', expectedVersion: 1, events: [event(tenantId)] }),
      ).rejects.toBeInstanceOf(ConcurrencyError);
      const any = await store().append({
        tenantId,
        streamId: 's',
        expectedVersion: 'any',
        events: [event(tenantId)],
      });
      expect(any.streamVersion).toBe(2);
    });

    it('writes a multi-event append all or nothing', async () => {
      const tenantId = freshTenant();
      await store().append({
        tenantId,
        streamId: 'holder',
        expectedVersion: 'no-stream',
        events: [event(tenantId)],
        uniqueKeys: ['order:1'],
      });
      await expect(
        store().append({
          tenantId,
          streamId: 'other',
          expectedVersion: 'no-stream',
          events: [event(tenantId), event(tenantId), event(tenantId)],
          uniqueKeys: ['order:2', 'order:1'],
        }),
      ).rejects.toBeInstanceOf(UniqueKeyError);
      expect(await store().readStream(tenantId, 'other')).toEqual([]);
      expect(await store().streamHead(tenantId, 'other')).toBeNull();
      expect(await store().findUniqueKey(tenantId, 'order:2')).toBeNull();
      expect(await store().findUniqueKey(tenantId, 'order:1')).toBe('holder');
    });

    it('writes nothing for a command id recorded before, and returns the first outcome', async () => {
      const tenantId = freshTenant();
      const command = {
        commandId: 'idem-1',
        requestHash: 'a'.repeat(64),
        response: { status: 201, body: { ok: 1 } },
      };
      await store().append({
        tenantId,
        streamId: 's',
        expectedVersion: 'any',
        events: [event(tenantId)],
        command,
      });
      const second = store().append({
        tenantId,
        streamId: 's',
        expectedVersion: 'any',
        events: [event(tenantId)],
        command: { ...command, response: { status: 201, body: { ok: 2 } } },
      });
      await expect(second).rejects.toBeInstanceOf(DuplicateCommandError);
      const error = await second.catch((e: unknown) => e);
      expect((error as DuplicateCommandError).record.response).toEqual({ status: 201, body: { ok: 1 } });
      expect(await store().readStream(tenantId, 's')).toHaveLength(1);
      // The same command id in another tenant is another command.
      const otherTenant = freshTenant();
      await store().append({
        tenantId: otherTenant,
        streamId: 's',
        expectedVersion: 'any',
        events: [event(otherTenant)],
        command,
      });
      expect(await store().readStream(otherTenant, 's')).toHaveLength(1);
    });

    it('yields every event of the log exactly once, in order within each partition', async () => {
      const tenantId = freshTenant();
      const streams = Array.from({ length: 24 }, (_, i) => `member-${i}`);
      const appended = new Set<string>();
      // 24 writers, 5 appends each, concurrently: positions are handed out under contention.
      await Promise.all(
        streams.map(async (streamId) => {
          for (let version = 0; version < 5; version++) {
            const events = [event(tenantId, 'E', { streamId, version })];
            await store().append({
              tenantId,
              streamId,
              expectedVersion: version === 0 ? 'no-stream' : version,
              events,
            });
            appended.add(events[0]!.eventId);
          }
        }),
      );
      const seen: RecordedEvent[] = [];
      for (let partition = 0; partition < store().partitions; partition++) {
        let after = 0;
        const verifier = new PartitionChainVerifier(tenantId, partition);
        for (;;) {
          const page = await store().readLog(tenantId, partition, after, 7);
          if (page.length === 0) break;
          for (const e of page) {
            expect(e.position).toBeGreaterThan(after);
            after = e.position;
            verifier.add(e);
            seen.push(e);
          }
        }
        if (store().kind === 'sql') {
          const head = (await store().partitionHeads(tenantId)).find((h) => h.partition === partition);
          expect(verifier.finish(head)).toEqual([]);
        }
      }
      expect(seen).toHaveLength(appended.size);
      expect(new Set(seen.map((e) => e.eventId))).toEqual(appended);
      // Within a stream, log order is version order.
      for (const streamId of streams) {
        const versions = seen.filter((e) => e.streamId === streamId).map((e) => e.streamVersion);
        expect(versions).toEqual([1, 2, 3, 4, 5]);
      }
    });

    it('keeps and returns a snapshot with the stream head', async () => {
      const tenantId = freshTenant();
      await store().append({
        tenantId,
        streamId: 's',
        expectedVersion: 'no-stream',
        events: [event(tenantId)],
        snapshot: { schemaVersion: 3, state: { balance: 10 } },
      });
      const head = await store().streamHead(tenantId, 's');
      expect(head?.snapshot).toEqual({ schemaVersion: 3, state: { balance: 10 } });
      expect(head?.snapshotVersion).toBe(1);
    });

    it('never shows one tenant the streams, commands or keys of another', async () => {
      const a = freshTenant();
      const b = freshTenant();
      await store().append({
        tenantId: a,
        streamId: 'member-x',
        expectedVersion: 'no-stream',
        events: [event(a)],
        uniqueKeys: ['phone:1'],
        command: { commandId: 'k', requestHash: 'b'.repeat(64) },
      });
      expect(await store().readStream(b, 'member-x')).toEqual([]);
      expect(await store().streamHead(b, 'member-x')).toBeNull();
      expect(await store().findCommand(b, 'k')).toBeNull();
      expect(await store().findUniqueKey(b, 'phone:1')).toBeNull();
      for (let partition = 0; partition < store().partitions; partition++) {
        expect(await store().readLog(b, partition, 0, 100)).toEqual([]);
      }
    });
  });
}
