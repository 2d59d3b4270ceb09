import type { ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import {
  ER_DUP_ENTRY,
  ER_LOCK_DEADLOCK,
  ER_LOCK_WAIT_TIMEOUT,
  isoToSqlTime,
  sqlErrno,
  sqlInt,
  sqlTimeToIso,
  type Pool,
  type PoolConnection,
} from '../../db/pool.ts';
import { GENESIS_HASH, partitionHash, streamHash } from '../hash.ts';
import { LOG_PARTITIONS, partitionOf } from '../partition.ts';
import {
  APPEND_EVENTS_MAX,
  COMMAND_ID_CHARS_MAX,
  ConcurrencyError,
  DuplicateCommandError,
  EventStoreUsageError,
  READ_EVENTS_MAX,
  STREAM_ID_CHARS_MAX,
  UNIQUE_KEYS_MAX,
  UNIQUE_KEY_CHARS_MAX,
  UniqueKeyError,
  type AppendRequest,
  type AppendResult,
  type CommandRecord,
  type EventMetadata,
  type EventStore,
  type PartitionHead,
  type ReadStreamOptions,
  type RecordedEvent,
  type Snapshot,
  type StreamHead,
} from '../port.ts';

/** Deadlocks and lock-wait timeouts roll the whole transaction back; retrying it is safe. */
const APPEND_TRANSIENT_RETRIES_MAX = 5;

export interface SqlEventStoreOptions {
  /** Test hook: runs inside the append transaction just before COMMIT (to force commit interleavings). */
  beforeCommit?: (request: AppendRequest) => Promise<void>;
}

const EVENT_COLUMNS =
  'tenant_id, partition_no, position, stream_id, stream_version, event_id, event_type, data, metadata, recorded_at, stream_hash, partition_hash';

/**
 * The SQL adapter. One append is one transaction:
 *   SELECT streams FOR UPDATE (version check)  ->  INSERT commands (dedup)  ->  INSERT unique_keys
 *   ->  SELECT log_partitions FOR UPDATE (positions)  ->  INSERT events  ->  UPDATE log_partitions
 *   ->  UPSERT streams (head + snapshot)  ->  COMMIT.
 * The partition row lock is taken last and held to COMMIT, so within a partition positions commit in order
 * and a reader never sees position p+1 before p. Locks are always taken in this order: no lock cycles.
 */
export class SqlEventStore implements EventStore {
  readonly kind = 'sql' as const;
  readonly partitions = LOG_PARTITIONS;
  private readonly tenantsWithPartitions = new Set<string>();

  constructor(
    private readonly pool: Pool,
    private readonly options: SqlEventStoreOptions = {},
  ) {}

  async append(request: AppendRequest): Promise<AppendResult> {
    validateAppend(request);
    await this.ensurePartitions(request.tenantId);
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.appendOnce(request);
      } catch (error) {
        const errno = sqlErrno(error);
        const transient = errno === ER_LOCK_DEADLOCK || errno === ER_LOCK_WAIT_TIMEOUT;
        if (!transient || attempt >= APPEND_TRANSIENT_RETRIES_MAX) throw error;
      }
    }
  }

  private async appendOnce(request: AppendRequest): Promise<AppendResult> {
    const connection = await this.pool.getConnection();
    try {
      await connection.beginTransaction();
      try {
        const result = await this.appendInTransaction(connection, request);
        if (this.options.beforeCommit) await this.options.beforeCommit(request);
        await connection.commit();
        return result;
      } catch (error) {
        await connection.rollback().catch(() => undefined);
        if (sqlErrno(error) === ER_DUP_ENTRY) throw await this.explainDuplicate(request, error);
        throw error;
      }
    } finally {
      connection.release();
    }
  }

  private async appendInTransaction(connection: PoolConnection, request: AppendRequest): Promise<AppendResult> {
    const { tenantId, streamId, events } = request;
    const recordedAt = events[0]!.metadata.recordedAt;
    const recordedAtSql = isoToSqlTime(recordedAt);

    const [streamRows] = await connection.query<RowDataPacket[]>(
      'SELECT version, last_hash FROM streams WHERE tenant_id = ? AND stream_id = ? FOR UPDATE',
      [tenantId, streamId],
    );
    const current = streamRows[0];
    const currentVersion = current === undefined ? null : sqlInt(current['version']);
    checkExpectedVersion(request, currentVersion);
    const firstVersion = (currentVersion ?? 0) + 1;

    if (request.command) {
      await connection.query(
        `INSERT INTO commands (tenant_id, command_id, request_hash, stream_id, first_version, event_count,
           response_status, response_body, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        [
          tenantId,
          request.command.commandId,
          request.command.requestHash,
          streamId,
          firstVersion,
          events.length,
          request.command.response?.status ?? null,
          request.command.response === undefined ? null : JSON.stringify(request.command.response.body),
          recordedAtSql,
        ],
      );
    }
    const uniqueKeys = [...new Set(request.uniqueKeys ?? [])].sort();
    if (uniqueKeys.length > 0) {
      const placeholders = uniqueKeys.map(() => '(?, ?, ?, ?)').join(', ');
      await connection.query(
        `INSERT INTO unique_keys (tenant_id, unique_key, stream_id, command_id) VALUES ${placeholders}`,
        uniqueKeys.flatMap((key) => [tenantId, key, streamId, request.command?.commandId ?? null]),
      );
    }

    const partition = partitionOf(streamId, this.partitions);
    const [partitionRows] = await connection.query<RowDataPacket[]>(
      'SELECT next_position, last_hash FROM log_partitions WHERE tenant_id = ? AND partition_no = ? FOR UPDATE',
      [tenantId, partition],
    );
    const partitionRow = partitionRows[0];
    if (partitionRow === undefined) throw new Error(`log partition ${tenantId}/${partition} is missing`);
    let position = sqlInt(partitionRow['next_position']);
    let previousPartitionHash = String(partitionRow['last_hash']);
    let previousStreamHash = current === undefined ? GENESIS_HASH : String(current['last_hash']);

    const recorded: RecordedEvent[] = [];
    const values: unknown[] = [];
    events.forEach((event, index) => {
      const streamVersion = firstVersion + index;
      const dataJson = JSON.stringify(event.data);
      const metadataJson = JSON.stringify(event.metadata);
      const eventStreamHash = streamHash(previousStreamHash, {
        tenantId,
        streamId,
        streamVersion,
        eventId: event.eventId,
        type: event.type,
        dataJson,
        metadataJson,
      });
      const eventPartitionHash = partitionHash(previousPartitionHash, partition, position, eventStreamHash);
      values.push(
        tenantId,
        partition,
        position,
        streamId,
        streamVersion,
        event.eventId,
        event.type,
        dataJson,
        metadataJson,
        isoToSqlTime(event.metadata.recordedAt),
        eventStreamHash,
        eventPartitionHash,
      );
      recorded.push({
        eventId: event.eventId,
        type: event.type,
        data: event.data,
        metadata: event.metadata,
        tenantId,
        streamId,
        streamVersion,
        partition,
        position,
        recordedAt: sqlTimeToIso(isoToSqlTime(event.metadata.recordedAt)),
        streamHash: eventStreamHash,
        partitionHash: eventPartitionHash,
        dataJson,
        metadataJson,
      });
      previousStreamHash = eventStreamHash;
      previousPartitionHash = eventPartitionHash;
      position += 1;
    });
    await connection.query(
      `INSERT INTO events (${EVENT_COLUMNS}) VALUES ${events.map(() => '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').join(', ')}`,
      values,
    );
    await connection.query(
      'UPDATE log_partitions SET next_position = ?, last_hash = ? WHERE tenant_id = ? AND partition_no = ?',
      [position, previousPartitionHash, tenantId, partition],
    );

    const newVersion = firstVersion + events.length - 1;
    const snapshotJson = request.snapshot === undefined ? null : JSON.stringify(request.snapshot.state);
    const snapshotSchema = request.snapshot?.schemaVersion ?? null;
    if (current === undefined) {
      await connection.query(
        `INSERT INTO streams (tenant_id, stream_id, partition_no, version, last_hash, snapshot_schema, snapshot, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
        [tenantId, streamId, partition, newVersion, previousStreamHash, snapshotSchema, snapshotJson, recordedAtSql],
      );
    } else {
      // Without a new snapshot the old one no longer matches the head: clear it rather than leave it stale.
      await connection.query(
        `UPDATE streams SET version = ?, last_hash = ?, snapshot_schema = ?, snapshot = ?, updated_at = ?
         WHERE tenant_id = ? AND stream_id = ?`,
        [newVersion, previousStreamHash, snapshotSchema, snapshotJson, recordedAtSql, tenantId, streamId],
      );
    }
    return { streamVersion: newVersion, events: recorded };
  }

  /** Turns a duplicate-key failure into the typed error a caller can act on. */
  private async explainDuplicate(request: AppendRequest, error: unknown): Promise<Error> {
    if (request.command) {
      const existing = await this.findCommand(request.tenantId, request.command.commandId);
      if (existing) return new DuplicateCommandError(existing);
    }
    for (const key of request.uniqueKeys ?? []) {
      const holder = await this.findUniqueKey(request.tenantId, key);
      if (holder !== null) return new UniqueKeyError(key, holder);
    }
    // The stream row was created by a concurrent first append.
    const head = await this.streamHead(request.tenantId, request.streamId);
    if (head) return new ConcurrencyError(request.streamId, request.expectedVersion, head.version);
    return error instanceof Error ? error : new Error(String(error));
  }

  async readStream(tenantId: string, streamId: string, options: ReadStreamOptions = {}): Promise<RecordedEvent[]> {
    const fromVersion = options.fromVersion ?? 1;
    const limit = Math.min(options.limit ?? READ_EVENTS_MAX, READ_EVENTS_MAX);
    const [rows] = await this.pool.query<RowDataPacket[]>(
      `SELECT ${EVENT_COLUMNS} FROM events WHERE tenant_id = ? AND stream_id = ? AND stream_version >= ?
       ORDER BY stream_version LIMIT ?`,
      [tenantId, streamId, fromVersion, limit],
    );
    return rows.map(rowToEvent);
  }

  async readLog(tenantId: string, partition: number, afterPosition: number, limit: number): Promise<RecordedEvent[]> {
    const [rows] = await this.pool.query<RowDataPacket[]>(
      `SELECT ${EVENT_COLUMNS} FROM events WHERE tenant_id = ? AND partition_no = ? AND position > ?
       ORDER BY position LIMIT ?`,
      [tenantId, partition, afterPosition, Math.min(limit, READ_EVENTS_MAX)],
    );
    return rows.map(rowToEvent);
  }

  async streamHead(tenantId: string, streamId: string): Promise<StreamHead | null> {
    const [rows] = await this.pool.query<RowDataPacket[]>(
      'SELECT version, last_hash, snapshot_schema, snapshot FROM streams WHERE tenant_id = ? AND stream_id = ?',
      [tenantId, streamId],
    );
    const row = rows[0];
    if (row === undefined) return null;
    const version = sqlInt(row['version']);
    const snapshot: Snapshot | null =
      row['snapshot'] === null || row['snapshot_schema'] === null
        ? null
        : { schemaVersion: sqlInt(row['snapshot_schema']), state: JSON.parse(String(row['snapshot'])) };
    return { version, lastHash: String(row['last_hash']), snapshot, snapshotVersion: snapshot ? version : 0 };
  }

  async partitionHeads(tenantId: string): Promise<PartitionHead[]> {
    const [rows] = await this.pool.query<RowDataPacket[]>(
      'SELECT partition_no, next_position, last_hash FROM log_partitions WHERE tenant_id = ? ORDER BY partition_no',
      [tenantId],
    );
    return rows.map((row) => ({
      partition: sqlInt(row['partition_no']),
      position: sqlInt(row['next_position']) - 1,
      lastHash: String(row['last_hash']),
    }));
  }

  async findCommand(tenantId: string, commandId: string): Promise<CommandRecord | null> {
    const [rows] = await this.pool.query<RowDataPacket[]>(
      `SELECT command_id, request_hash, stream_id, first_version, event_count, response_status, response_body, recorded_at
       FROM commands WHERE tenant_id = ? AND command_id = ?`,
      [tenantId, commandId],
    );
    const row = rows[0];
    if (row === undefined) return null;
    return {
      commandId: String(row['command_id']),
      requestHash: String(row['request_hash']),
      streamId: String(row['stream_id']),
      firstVersion: sqlInt(row['first_version']),
      eventCount: sqlInt(row['event_count']),
      response:
        row['response_status'] === null
          ? null
          : { status: sqlInt(row['response_status']), body: JSON.parse(String(row['response_body'])) },
      recordedAt: sqlTimeToIso(String(row['recorded_at'])),
    };
  }

  async findUniqueKey(tenantId: string, key: string): Promise<string | null> {
    const [rows] = await this.pool.query<RowDataPacket[]>(
      'SELECT stream_id FROM unique_keys WHERE tenant_id = ? AND unique_key = ?',
      [tenantId, key],
    );
    return rows[0] === undefined ? null : String(rows[0]['stream_id']);
  }

  async saveSnapshot(tenantId: string, streamId: string, version: number, snapshot: Snapshot): Promise<void> {
    await this.pool.query<ResultSetHeader>(
      'UPDATE streams SET snapshot_schema = ?, snapshot = ? WHERE tenant_id = ? AND stream_id = ? AND version = ?',
      [snapshot.schemaVersion, JSON.stringify(snapshot.state), tenantId, streamId, version],
    );
  }

  async listTenants(): Promise<string[]> {
    const [rows] = await this.pool.query<RowDataPacket[]>(
      'SELECT DISTINCT tenant_id FROM log_partitions ORDER BY tenant_id',
    );
    return rows.map((row) => String(row['tenant_id']));
  }

  async close(): Promise<void> {
    // The pool belongs to the caller.
  }

  /** A tenant's partition rows exist before its first append; INSERT IGNORE makes this safe to race. */
  private async ensurePartitions(tenantId: string): Promise<void> {
    if (this.tenantsWithPartitions.has(tenantId)) return;
    const rows = Array.from({ length: this.partitions }, (_, partition) => [tenantId, partition, 1, GENESIS_HASH]);
    await this.pool.query(
      `INSERT IGNORE INTO log_partitions (tenant_id, partition_no, next_position, last_hash) VALUES ${rows
        .map(() => '(?, ?, ?, ?)')
        .join(', ')}`,
      rows.flat(),
    );
    this.tenantsWithPartitions.add(tenantId);
  }
}

function checkExpectedVersion(request: AppendRequest, currentVersion: number | null): void {
  const expected = request.expectedVersion;
  if (expected === 'any') return;
  if (expected === 'no-stream' || expected === 0) {
    if (currentVersion !== null) throw new ConcurrencyError(request.streamId, expected, currentVersion);
    return;
  }
  if (currentVersion !== expected) throw new ConcurrencyError(request.streamId, expected, currentVersion);
}

function validateAppend(request: AppendRequest): void {
  const fail = (message: string): never => {
    throw new EventStoreUsageError(message);
  };
  if (!/^[a-z0-9][a-z0-9-]{0,63}$/.test(request.tenantId)) fail(`bad tenant id: ${request.tenantId}`);
  if (request.streamId.length === 0 || request.streamId.length > STREAM_ID_CHARS_MAX) fail('bad stream id');
  if (request.events.length === 0 || request.events.length > APPEND_EVENTS_MAX) {
    fail(`an append carries 1..${APPEND_EVENTS_MAX} events, got ${request.events.length}`);
  }
  if ((request.uniqueKeys?.length ?? 0) > UNIQUE_KEYS_MAX) fail(`at most ${UNIQUE_KEYS_MAX} unique keys`);
  for (const key of request.uniqueKeys ?? []) {
    if (key.length === 0 || key.length > UNIQUE_KEY_CHARS_MAX) fail(`bad unique key: ${key}`);
  }
  if (request.command && (request.command.commandId.length === 0 || request.command.commandId.length > COMMAND_ID_CHARS_MAX)) {
    fail('bad command id');
  }
  const recordedAt = request.events[0]?.metadata.recordedAt;
  for (const event of request.events) {
    if (event.metadata.tenantId !== request.tenantId) fail('event metadata names another tenant');
    if (event.metadata.recordedAt !== recordedAt) fail('events of one append share one recording time');
  }
  if (typeof request.expectedVersion === 'number' && (!Number.isSafeInteger(request.expectedVersion) || request.expectedVersion < 0)) {
    fail('expected version must be a non-negative integer');
  }
}

function rowToEvent(row: RowDataPacket): RecordedEvent {
  const dataJson = String(row['data']);
  const metadataJson = String(row['metadata']);
  return {
    eventId: String(row['event_id']),
    type: String(row['event_type']),
    data: JSON.parse(dataJson) as unknown,
    metadata: JSON.parse(metadataJson) as EventMetadata,
    tenantId: String(row['tenant_id']),
    streamId: String(row['stream_id']),
    streamVersion: sqlInt(row['stream_version']),
    partition: sqlInt(row['partition_no']),
    position: sqlInt(row['position']),
    recordedAt: sqlTimeToIso(String(row['recorded_at'])),
    streamHash: String(row['stream_hash']),
    partitionHash: String(row['partition_hash']),
    dataJson,
    metadataJson,
  };
}
