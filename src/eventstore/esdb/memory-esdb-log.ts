import type { EsdbAppendOutcome, EsdbLog, EsdbPosition } from './esdb-log.ts';
import type { EsdbNewEvent, EsdbStoredEvent } from './mapping.ts';

/** Where the first event lands: a real log starts with system records, so no ledger event is ever at 0. */
const FIRST_POSITION = 1_024n;
/** Bytes of framing per record on top of its JSON, so positions have gaps as real byte offsets do. */
const RECORD_OVERHEAD_BYTES = 96n;

interface StoredRecord {
  streamName: string;
  eventId: string;
  type: string;
  revision: bigint;
  position: bigint;
  dataJson: string;
  metadataJson: string;
}

/**
 * A TEST DOUBLE of EventStoreDB, holding what ClientEsdbLog reads and writes in memory, with the server's documented
 * semantics: an append is atomic and checks the expected revision; an append whose event ids are already the events
 * right after the expected revision succeeds without writing (the server's best-effort idempotency, which the adapter
 * must neither rely on nor be fooled by); $all positions are increasing byte offsets with commit = prepare; reading
 * $all after a position is exclusive; data and metadata travel as JSON text. It never replaces a server in
 * production: it has no durability, and the real client's behaviour is only what its docs and types say.
 */
export class MemoryEsdbLog implements EsdbLog {
  private readonly streams = new Map<string, StoredRecord[]>();
  private readonly all: StoredRecord[] = [];
  private nextPosition = FIRST_POSITION;
  private closed = false;

  async append(
    streamName: string,
    events: readonly EsdbNewEvent[],
    expected: 'no_stream' | bigint,
  ): Promise<EsdbAppendOutcome> {
    await this.roundTrip();
    const stream = this.streams.get(streamName) ?? [];
    const firstRevision = expected === 'no_stream' ? 0 : Number(expected) + 1;
    const already = stream.slice(firstRevision, firstRevision + events.length);
    if (
      already.length === events.length &&
      already.every((record, index) => record.eventId === events[index]!.eventId)
    ) {
      const last = already[already.length - 1]!;
      return {
        kind: 'appended',
        lastRevision: last.revision,
        lastPosition: { commit: last.position, prepare: last.position },
      };
    }
    const current = stream.length === 0 ? 'no_stream' : BigInt(stream.length - 1);
    if (current !== expected) return { kind: 'wrong-expected-revision' };
    for (const event of events) {
      const dataJson = JSON.stringify(event.data);
      const metadataJson = JSON.stringify(event.metadata);
      const record: StoredRecord = {
        streamName,
        eventId: event.eventId,
        type: event.type,
        revision: BigInt(stream.length),
        position: this.nextPosition,
        dataJson,
        metadataJson,
      };
      this.nextPosition +=
        BigInt(Buffer.byteLength(dataJson) + Buffer.byteLength(metadataJson)) + RECORD_OVERHEAD_BYTES;
      stream.push(record);
      this.all.push(record);
    }
    this.streams.set(streamName, stream);
    const last = stream[stream.length - 1]!;
    return {
      kind: 'appended',
      lastRevision: last.revision,
      lastPosition: { commit: last.position, prepare: last.position },
    };
  }

  async readForward(streamName: string, fromRevision: bigint, maxCount: number): Promise<EsdbStoredEvent[]> {
    await this.roundTrip();
    const stream = this.streams.get(streamName) ?? [];
    return stream.slice(Number(fromRevision), Number(fromRevision) + maxCount).map(toStored);
  }

  async readLast(streamName: string): Promise<EsdbStoredEvent | null> {
    await this.roundTrip();
    const stream = this.streams.get(streamName) ?? [];
    const last = stream[stream.length - 1];
    return last === undefined ? null : toStored(last);
  }

  async readAllAfter(prefix: string, after: EsdbPosition, maxCount: number): Promise<EsdbStoredEvent[]> {
    await this.roundTrip();
    const found: EsdbStoredEvent[] = [];
    for (const record of this.all) {
      if (found.length >= maxCount) break;
      if (record.position > after.commit && record.streamName.startsWith(prefix))
        found.push(toStored(record));
    }
    return found;
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  /** Yields to other tasks as a network call would, so concurrent callers interleave. */
  private async roundTrip(): Promise<void> {
    if (this.closed) throw new Error('the log is closed');
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

function toStored(record: StoredRecord): EsdbStoredEvent {
  return {
    streamName: record.streamName,
    eventId: record.eventId,
    type: record.type,
    revision: record.revision,
    position: { commit: record.position, prepare: record.position },
    isJson: true,
    data: JSON.parse(record.dataJson) as unknown,
    metadata: JSON.parse(record.metadataJson) as unknown,
  };
}
