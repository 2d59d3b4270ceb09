/**
 * The event store port (DESIGN.md, "Shape"). Two adapters implement it: SQL (the default; MySQL, MariaDB,
 * TiDB) and EventStoreDB. One contract suite (contract.ts) runs against each.
 */

/** 'no-stream': the stream must not exist; 'any': no check; a number: the stream's current version (0 = empty). */
export type ExpectedVersion = 'no-stream' | 'any' | number;

export interface EventMetadata {
  tenantId: string;
  /** The ledger's recording time (the one clock), ISO-8601 UTC with ms. */
  recordedAt: string;
  correlationId?: string;
  causationId?: string;
  /** The command that produced the event (Idempotency-Key or a derived id). */
  commandId?: string;
  actor?: string;
}

export interface NewEvent {
  eventId: string;
  type: string;
  data: unknown;
  metadata: EventMetadata;
}

export interface RecordedEvent {
  eventId: string;
  type: string;
  data: unknown;
  metadata: EventMetadata;
  tenantId: string;
  streamId: string;
  /** 1 for a stream's first event. */
  streamVersion: number;
  /** Log partition (SQL) or 0 (EventStoreDB, whose $all is one log). */
  partition: number;
  /** Position in the partition's log: 1, 2, 3 ... without gaps (SQL); the $all commit position (EventStoreDB). */
  position: number;
  recordedAt: string;
  /** sha256 chained over the stream: covers this event and the previous event's streamHash. */
  streamHash: string;
  /** sha256 chained over the partition (SQL); '' where the adapter has no partition chain. */
  partitionHash: string;
  /** The exact stored JSON of data and metadata: what the hashes cover. */
  dataJson: string;
  metadataJson: string;
}

export interface Snapshot {
  schemaVersion: number;
  state: unknown;
}

/** The stored outcome of a command, returned again to a retry of the same command id. */
export interface CommandRecord {
  commandId: string;
  requestHash: string;
  streamId: string;
  firstVersion: number;
  eventCount: number;
  response: { status: number; body: unknown } | null;
  recordedAt: string;
}

export interface AppendRequest {
  tenantId: string;
  streamId: string;
  expectedVersion: ExpectedVersion;
  /** 1..APPEND_EVENTS_MAX events, all or nothing. */
  events: readonly NewEvent[];
  /**
   * A second append with the same command id in the tenant writes nothing and fails with DuplicateCommandError.
   * The EventStoreDB adapter replaces each event id with derivedId(tenantId, commandId, String(index)) (uuid v5), so
   * that a retry after an unknown outcome is recognised by reading the stream tail.
   */
  command?: { commandId: string; requestHash: string; response?: { status: number; body: unknown } };
  /** Business keys unique within the tenant (e.g. 'purchase:<orderId>'); a taken key fails the append. */
  uniqueKeys?: readonly string[];
  /** The command-side state after these events, stored with the stream head in the same transaction. */
  snapshot?: Snapshot;
}

export interface AppendResult {
  streamVersion: number;
  events: RecordedEvent[];
}

export interface StreamHead {
  version: number;
  lastHash: string;
  snapshot: Snapshot | null;
  /** The stream version the snapshot reflects (equals version for the SQL store, may trail elsewhere). */
  snapshotVersion: number;
}

export interface PartitionHead {
  partition: number;
  /** The last position written (0 = empty). */
  position: number;
  lastHash: string;
}

export interface ReadStreamOptions {
  /** First version to return (default 1). */
  fromVersion?: number;
  /** At most this many events (default and max READ_EVENTS_MAX). */
  limit?: number;
}

export interface EventStore {
  readonly kind: 'sql' | 'esdb';
  /** Number of log partitions a tenant's log is split into. */
  readonly partitions: number;
  append(request: AppendRequest): Promise<AppendResult>;
  readStream(tenantId: string, streamId: string, options?: ReadStreamOptions): Promise<RecordedEvent[]>;
  /** Events of one partition with position > afterPosition, in position order, at most limit. */
  readLog(
    tenantId: string,
    partition: number,
    afterPosition: number,
    limit: number,
  ): Promise<RecordedEvent[]>;
  streamHead(tenantId: string, streamId: string): Promise<StreamHead | null>;
  partitionHeads(tenantId: string): Promise<PartitionHead[]>;
  findCommand(tenantId: string, commandId: string): Promise<CommandRecord | null>;
  /**
   * Records that a command was refused (no events), so every later attempt with its id gets the same answer.
   * Returns null when recorded, or the outcome already recorded under the id (which stands).
   */
  recordRejection(
    tenantId: string,
    streamId: string,
    command: { commandId: string; requestHash: string; response: { status: number; body: unknown } },
    recordedAt: string,
  ): Promise<CommandRecord | null>;
  /** The stream that holds a business key, if taken. */
  findUniqueKey(tenantId: string, key: string): Promise<string | null>;
  /** Stores a snapshot for a stream at a version, if the stream is still at that version. */
  saveSnapshot(tenantId: string, streamId: string, version: number, snapshot: Snapshot): Promise<void>;
  listTenants(): Promise<string[]>;
  close(): Promise<void>;
}

/** Limits of the port, with units. */
export const APPEND_EVENTS_MAX = 1_000;
export const READ_EVENTS_MAX = 10_000;
export const UNIQUE_KEYS_MAX = 16;
export const STREAM_ID_CHARS_MAX = 128;
export const COMMAND_ID_CHARS_MAX = 160;
export const UNIQUE_KEY_CHARS_MAX = 255;

/** Another writer moved the stream first. Reload and decide again. */
export class ConcurrencyError extends Error {
  constructor(
    readonly streamId: string,
    readonly expected: ExpectedVersion,
    readonly actual: number | null,
  ) {
    super(`stream ${streamId}: expected version ${String(expected)}, found ${actual ?? 'no stream'}`);
    this.name = 'ConcurrencyError';
  }
}

/** The command id was already recorded: the first outcome stands and nothing was written. */
export class DuplicateCommandError extends Error {
  constructor(readonly record: CommandRecord) {
    super(`command ${record.commandId} was already recorded`);
    this.name = 'DuplicateCommandError';
  }
}

/** A business key is already taken in the tenant. */
export class UniqueKeyError extends Error {
  constructor(
    readonly key: string,
    readonly streamId: string | null,
  ) {
    super(`unique key ${key} is already taken`);
    this.name = 'UniqueKeyError';
  }
}

/**
 * The store turned the append away before writing anything: more appends are waiting than it queues
 * (the database is slower than the requests arrive). Nothing was written; the same append may be sent again.
 */
export class EventStoreBusyError extends Error {
  override name = 'EventStoreBusyError';
  constructor(readonly waiting: number) {
    super(`the event store is busy: ${waiting} appends are waiting; nothing was written`);
  }
}

/** Argument outside the port's limits: a bug in the caller. */
export class EventStoreUsageError extends Error {
  override name = 'EventStoreUsageError';
}
