import { validateAppend } from '../validate-append.ts';
import { decodeSnapshot, encodeSnapshot } from '../snapshot-codec.ts';
import type { ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { ER_DUP_ENTRY, isoToSqlTime, sqlErrno, sqlInt, sqlTimeToIso, type Pool } from '../../db/pool.ts';
import { GENESIS_HASH } from '../hash.ts';
import { LOG_PARTITIONS } from '../partition.ts';
import { EVENT_COLUMNS } from './append-transaction.ts';
import { GroupCommitter, type AppendTransactionObserver } from './group-commit.ts';
import {
  ConcurrencyError,
  DuplicateCommandError,
  READ_EVENTS_MAX,
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

export interface SqlEventStoreOptions {
  /** Test hook: runs inside the append transaction just before COMMIT (to force commit interleavings). */
  beforeCommit?: (request: AppendRequest) => Promise<void>;
  /** Appends that may wait for a transaction, per lane (GROUP_LANE_QUEUE_REQUESTS_MAX unless given). */
  laneQueueRequestsMax?: number;
  /** Told of each append transaction's size and time (the process's metrics, bench:append). */
  observeTransaction?: AppendTransactionObserver;
}

/**
 * The SQL adapter (MySQL 8, MariaDB 10.11, TiDB 7.5+). Appends go through a group committer: concurrent
 * appends share one transaction (append-transaction.ts has the statements and the lock order). Positions
 * come from each partition's counter row, locked until COMMIT, so within a partition positions commit in
 * order and a reader never sees position p+1 before p.
 */
export class SqlEventStore implements EventStore {
  readonly kind = 'sql' as const;
  readonly partitions = LOG_PARTITIONS;
  private readonly tenantsWithPartitions = new Set<string>();
  private readonly committer: GroupCommitter;

  constructor(
    private readonly pool: Pool,
    options: SqlEventStoreOptions = {},
  ) {
    this.committer = new GroupCommitter(pool, this.partitions, {
      ...(options.beforeCommit === undefined ? {} : { beforeCommit: options.beforeCommit }),
      ...(options.laneQueueRequestsMax === undefined
        ? {}
        : { laneQueueRequestsMax: options.laneQueueRequestsMax }),
      ...(options.observeTransaction === undefined ? {} : { observeTransaction: options.observeTransaction }),
      explainDuplicate: (request, error) => this.explainDuplicate(request, error),
    });
  }

  async append(request: AppendRequest): Promise<AppendResult> {
    validateAppend(request);
    await this.ensurePartitions(request.tenantId);
    return this.committer.append(request);
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

  async readStream(
    tenantId: string,
    streamId: string,
    options: ReadStreamOptions = {},
  ): Promise<RecordedEvent[]> {
    const fromVersion = options.fromVersion ?? 1;
    const limit = Math.min(options.limit ?? READ_EVENTS_MAX, READ_EVENTS_MAX);
    const [rows] = await this.pool.query<RowDataPacket[]>(
      `SELECT ${EVENT_COLUMNS} FROM events WHERE tenant_id = ? AND stream_id = ? AND stream_version >= ?
       ORDER BY stream_version LIMIT ?`,
      [tenantId, streamId, fromVersion, limit],
    );
    return rows.map(rowToEvent);
  }

  async readLog(
    tenantId: string,
    partition: number,
    afterPosition: number,
    limit: number,
  ): Promise<RecordedEvent[]> {
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
        : { schemaVersion: sqlInt(row['snapshot_schema']), state: decodeSnapshot(String(row['snapshot'])) };
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
    return row === undefined ? null : rowToCommandRecord(row);
  }

  async recordRejection(
    tenantId: string,
    streamId: string,
    command: { commandId: string; requestHash: string; response: { status: number; body: unknown } },
    recordedAt: string,
  ): Promise<CommandRecord | null> {
    try {
      // event_count 0: a refusal wrote no events; the same primary key as an append's row, so whichever
      // outcome is recorded first stands for every attempt.
      await this.pool.query(
        `INSERT INTO commands (tenant_id, command_id, request_hash, stream_id, first_version, event_count,
           response_status, response_body, recorded_at) VALUES (?, ?, ?, ?, 0, 0, ?, ?, ?)`,
        [
          tenantId,
          command.commandId,
          command.requestHash,
          streamId,
          command.response.status,
          JSON.stringify(command.response.body),
          isoToSqlTime(recordedAt),
        ],
      );
      return null;
    } catch (error) {
      if (sqlErrno(error) !== ER_DUP_ENTRY) throw error;
      const existing = await this.findCommand(tenantId, command.commandId);
      if (existing === null) throw error;
      return existing;
    }
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
      [snapshot.schemaVersion, encodeSnapshot(snapshot.state), tenantId, streamId, version],
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
    const rows = Array.from({ length: this.partitions }, (_, partition) => [
      tenantId,
      partition,
      1,
      GENESIS_HASH,
    ]);
    await this.pool.query(
      `INSERT IGNORE INTO log_partitions (tenant_id, partition_no, next_position, last_hash) VALUES ${rows
        .map(() => '(?, ?, ?, ?)')
        .join(', ')}`,
      rows.flat(),
    );
    this.tenantsWithPartitions.add(tenantId);
  }
}

/** A row of `events` (all of EVENT_COLUMNS) as a RecordedEvent. Readers of the table use this one mapping. */
export function rowToEvent(row: RowDataPacket): RecordedEvent {
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

/** A row of `commands` as a CommandRecord; the EventStoreDB adapter's side tables read it the same way. */
export function rowToCommandRecord(row: RowDataPacket): CommandRecord {
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
