import { expect } from 'vitest';
import { newId } from '../../src/ids.ts';
import { partitionOf } from '../../src/eventstore/partition.ts';
import type { EventStore, NewEvent, RecordedEvent } from '../../src/eventstore/port.ts';
import { PartitionChainVerifier, StreamChainVerifier } from '../../src/eventstore/verify.ts';

/** A recording time for events the event-store tests append: the store takes it as given. */
export const EVENT_RECORDED_AT = '2026-03-01T08:00:00.000Z';

/** An event for the event-store tests: a fresh id, the tenant in its metadata, `data` as given. */
export const newEvent = (tenantId: string, data: unknown = { n: 1 }): NewEvent => ({
  eventId: newId(),
  type: 'Thing',
  data,
  metadata: { tenantId, recordedAt: EVENT_RECORDED_AT },
});

/** `count` stream ids (`prefix-0`, `prefix-1`, ...) whose log partition satisfies `where`. */
export function streamIds(prefix: string, count: number, where: (partition: number) => boolean): string[] {
  const found: string[] = [];
  for (let i = 0; found.length < count && i < 100_000; i++) {
    if (where(partitionOf(`${prefix}-${i}`))) found.push(`${prefix}-${i}`);
  }
  if (found.length < count)
    throw new Error(`not ${count} stream ids ${prefix}-* in the partitions asked for`);
  return found;
}

/**
 * Every partition's log of the tenant is dense from position 1 and its chain verifies to the recorded head;
 * every stream's chain verifies to its recorded head. Returns the events by stream, in log order.
 */
export async function expectSoundLog(
  store: EventStore,
  tenantId: string,
): Promise<Map<string, RecordedEvent[]>> {
  const byStream = new Map<string, RecordedEvent[]>();
  const heads = await store.partitionHeads(tenantId);
  for (let partition = 0; partition < store.partitions; partition++) {
    const log = await store.readLog(tenantId, partition, 0, 10_000);
    const verifier = new PartitionChainVerifier(tenantId, partition);
    log.forEach((event) => verifier.add(event));
    expect(verifier.finish(heads.find((head) => head.partition === partition))).toEqual([]);
    for (const event of log) byStream.set(event.streamId, [...(byStream.get(event.streamId) ?? []), event]);
  }
  for (const [streamId, events] of byStream) {
    const verifier = new StreamChainVerifier(tenantId, streamId);
    [...events].sort((a, b) => a.streamVersion - b.streamVersion).forEach((event) => verifier.add(event));
    expect(verifier.finish((await store.streamHead(tenantId, streamId)) ?? undefined)).toEqual([]);
  }
  return byStream;
}
