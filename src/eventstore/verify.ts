import { GENESIS_HASH, partitionHash, streamHash } from './hash.ts';
import type { RecordedEvent } from './port.ts';

/** What a broken chain looks like to an auditor: where, and which check failed. */
/**
 * A blank event to fill in row by row and hand to a verifier: StreamChainVerifier.add and
 * PartitionChainVerifier.add read the fields they need and keep no reference to the object, so one such
 * event serves a whole pass (the audit reads millions of rows; none becomes a RecordedEvent of its own).
 */
export function scratchEvent(tenantId: string, partition = 0): RecordedEvent {
  return {
    eventId: '',
    type: '',
    data: null,
    metadata: { tenantId, recordedAt: '' },
    tenantId,
    streamId: '',
    streamVersion: 0,
    partition,
    position: 0,
    recordedAt: '',
    streamHash: '',
    partitionHash: '',
    dataJson: '',
    metadataJson: '',
  };
}

export interface ChainProblem {
  kind: 'content-changed' | 'chain-broken' | 'gap' | 'head-mismatch';
  tenantId: string;
  streamId?: string;
  streamVersion?: number;
  partition?: number;
  position?: number;
  detail: string;
}

/**
 * Verifies one stream's events (in version order, from version 1): versions are 1..n without gaps,
 * each streamHash is recomputed from the stored bytes and the previous hash, and the last hash equals
 * the head recorded elsewhere (catches a truncated tail).
 */
export class StreamChainVerifier {
  private previousHash = GENESIS_HASH;
  private expectedVersion = 1;
  readonly problems: ChainProblem[] = [];

  constructor(
    private readonly tenantId: string,
    private readonly streamId: string,
  ) {}

  add(event: RecordedEvent): void {
    if (event.streamVersion !== this.expectedVersion) {
      this.problems.push({
        kind: 'gap',
        tenantId: this.tenantId,
        streamId: this.streamId,
        streamVersion: event.streamVersion,
        position: event.position,
        detail: `expected version ${this.expectedVersion}, found ${event.streamVersion}`,
      });
      this.expectedVersion = event.streamVersion;
    }
    const recomputed = streamHash(this.previousHash, {
      tenantId: event.tenantId,
      streamId: event.streamId,
      streamVersion: event.streamVersion,
      eventId: event.eventId,
      type: event.type,
      dataJson: event.dataJson,
      metadataJson: event.metadataJson,
    });
    if (recomputed !== event.streamHash) {
      // Recomputing from the event's own content with the stored predecessor tells a changed event
      // from a broken link (an event removed, inserted or moved before it).
      this.problems.push({
        kind: 'content-changed',
        tenantId: this.tenantId,
        streamId: this.streamId,
        streamVersion: event.streamVersion,
        position: event.position,
        detail: 'stream hash does not match the stored content and its predecessor',
      });
    }
    this.previousHash = event.streamHash;
    this.expectedVersion += 1;
  }

  finish(head?: { version: number; lastHash: string }): ChainProblem[] {
    if (head && (head.version !== this.expectedVersion - 1 || head.lastHash !== this.previousHash)) {
      this.problems.push({
        kind: 'head-mismatch',
        tenantId: this.tenantId,
        streamId: this.streamId,
        streamVersion: this.expectedVersion - 1,
        detail: `recorded head is version ${head.version}; the events end at version ${this.expectedVersion - 1}`,
      });
    }
    return this.problems;
  }
}

/** The same for one log partition, in position order from position 1. */
export class PartitionChainVerifier {
  private previousHash = GENESIS_HASH;
  private expectedPosition = 1;
  readonly problems: ChainProblem[] = [];

  constructor(
    private readonly tenantId: string,
    private readonly partition: number,
  ) {}

  add(event: RecordedEvent): void {
    if (event.position !== this.expectedPosition) {
      this.problems.push({
        kind: 'gap',
        tenantId: this.tenantId,
        partition: this.partition,
        position: event.position,
        streamId: event.streamId,
        streamVersion: event.streamVersion,
        detail: `expected position ${this.expectedPosition}, found ${event.position}`,
      });
      this.expectedPosition = event.position;
    }
    const recomputed = partitionHash(this.previousHash, this.partition, event.position, event.streamHash);
    if (recomputed !== event.partitionHash) {
      this.problems.push({
        kind: 'chain-broken',
        tenantId: this.tenantId,
        partition: this.partition,
        position: event.position,
        streamId: event.streamId,
        streamVersion: event.streamVersion,
        detail: 'partition hash does not follow from its predecessor',
      });
    }
    this.previousHash = event.partitionHash;
    this.expectedPosition += 1;
  }

  finish(head?: { position: number; lastHash: string }): ChainProblem[] {
    if (head && (head.position !== this.expectedPosition - 1 || head.lastHash !== this.previousHash)) {
      this.problems.push({
        kind: 'head-mismatch',
        tenantId: this.tenantId,
        partition: this.partition,
        position: this.expectedPosition - 1,
        detail: `recorded head is position ${head.position}; the log ends at position ${this.expectedPosition - 1}`,
      });
    }
    return this.problems;
  }
}
