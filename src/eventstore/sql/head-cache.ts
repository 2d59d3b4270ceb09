import type { AppendOutcome, PartitionedRequest } from './append-transaction.ts';

/** A stream's head as the append transaction needs it. */
export interface StreamHeadValue {
  version: number;
  lastHash: string;
}

/** A log partition's head: the next position to take and the hash of the event before it. */
export interface PartitionHeadValue {
  next: number;
  lastHash: string;
}

/** Heads an append transaction can start from without reading them under lock. */
export interface KnownHeads {
  streams: Map<string, StreamHeadValue>;
  partitions: Map<string, PartitionHeadValue>;
}

/**
 * Stream heads kept per store instance, least recently used out. About 250 bytes each (key, hash, entry):
 * 100,000 are about 25 MiB, and cover the members a busy API process served in the last minutes.
 */
export const STREAM_HEADS_CACHED_MAX = 100_000;

export const streamKey = (tenantId: string, streamId: string): string => `${tenantId}\u0000${streamId}`;
export const partitionKey = (tenantId: string, partition: number): string => `${tenantId}\u0000${partition}`;

/**
 * The heads this store instance's own committed transactions left (group-commit.ts, "One round trip").
 * Only a commit the server acknowledged writes here, so every position below a cached partition head and
 * every version up to a cached stream head has committed: the cache can be behind the database (another
 * process appended since) but never ahead of it, unless the database is set back (a backup restored under
 * a running process). Either is caught by the database before COMMIT: the transaction's guard fails when a
 * partition's committed head is not the one known (append-transaction.ts), an event at a position already
 * taken fails the events' primary key, one at a stream version already taken fails `events_by_stream`, and
 * the batch goes again the locking way. A transaction that rolled back forgets the heads it touched; any
 * other failure (a lost connection, a restarted server) forgets them all.
 */
export class HeadCache {
  private readonly streams = new Map<string, StreamHeadValue>();
  private readonly partitions = new Map<string, PartitionHeadValue>();

  /**
   * The heads of every stream and partition of the batch, when all are cached and every request expects
   * its stream's cached version (or any); else null, and the batch reads its heads under lock. A request
   * for a new stream always takes the locking way: absence is not cached.
   */
  knownFor(batch: readonly PartitionedRequest[]): KnownHeads | null {
    const known: KnownHeads = { streams: new Map(), partitions: new Map() };
    for (const { request, partition } of batch) {
      const key = streamKey(request.tenantId, request.streamId);
      const stream = this.streams.get(key);
      if (stream === undefined) return null;
      if (request.expectedVersion !== 'any' && request.expectedVersion !== stream.version) return null;
      const pKey = partitionKey(request.tenantId, partition);
      const head = this.partitions.get(pKey);
      if (head === undefined) return null;
      known.streams.set(key, { ...stream });
      known.partitions.set(pKey, { ...head });
    }
    return known;
  }

  /**
   * After an acknowledged COMMIT (or a rollback where every request lost its version check): the heads the
   * accepted requests left. A request that lost its version check forgets its stream: it was behind.
   */
  recordCommitted(batch: readonly PartitionedRequest[], outcomes: readonly AppendOutcome[]): void {
    outcomes.forEach((outcome, index) => {
      const { request } = batch[index]!;
      if (!outcome.ok) {
        this.streams.delete(streamKey(request.tenantId, request.streamId));
        return;
      }
      const events = outcome.result.events;
      const last = events[events.length - 1]!;
      const key = streamKey(request.tenantId, request.streamId);
      this.streams.delete(key);
      this.streams.set(key, { version: outcome.result.streamVersion, lastHash: last.streamHash });
      // Requests of one batch take their partition's positions in batch order: the last one sets the head.
      this.partitions.set(partitionKey(request.tenantId, last.partition), {
        next: last.position + 1,
        lastHash: last.partitionHash,
      });
    });
    while (this.streams.size > STREAM_HEADS_CACHED_MAX) {
      this.streams.delete(this.streams.keys().next().value!);
    }
  }

  /** Every head is read under lock next time. */
  clear(): void {
    this.streams.clear();
    this.partitions.clear();
  }

  /** After a transaction rolled back: the batch's heads are read under lock next time. */
  forget(batch: readonly PartitionedRequest[]): void {
    for (const { request, partition } of batch) {
      this.streams.delete(streamKey(request.tenantId, request.streamId));
      this.partitions.delete(partitionKey(request.tenantId, partition));
    }
  }
}
