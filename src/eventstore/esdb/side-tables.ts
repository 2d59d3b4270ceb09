import { rowToCommandRecord } from '../sql/sql-event-store.ts';
import { decodeSnapshot, encodeSnapshot } from '../snapshot-codec.ts';
import type { ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import {
  ER_DUP_ENTRY,
  ER_LOCK_DEADLOCK,
  ER_LOCK_WAIT_TIMEOUT,
  inTransaction,
  isoToSqlTime,
  sqlErrno,
  sqlInt,
  type Pool,
  type PoolConnection,
} from '../../db/pool.ts';
import { GENESIS_HASH } from '../hash.ts';
import {
  ConcurrencyError,
  DuplicateCommandError,
  UniqueKeyError,
  type CommandRecord,
  type Snapshot,
} from '../port.ts';

/**
 * What EventStoreDB cannot hold transactionally, kept in the SQL database (TiDB in production) in the tables the SQL
 * adapter uses (migration 001): `commands` (idempotency), `unique_keys`, `streams` (head and snapshot) and
 * `log_partitions` (the tenant registry, one row, partition 0). esdb-event-store.ts describes the protocol.
 *
 * A command row is in one of two states, told apart by event_count (a recorded append has 1..APPEND_EVENTS_MAX):
 *  - pending (event_count = 0): an attempt claimed the command id and its unique keys and may be writing to
 *    EventStoreDB. first_version is the lowest stream version its events can land at (where a later attempt looks
 *    for them), recorded_at is the start of the attempt's lease (database clock, UTC).
 *  - recorded (event_count > 0): first_version, event_count, response and recorded_at describe the append, as in
 *    the SQL adapter. A command recorded without a response keeps NULLs there, which is why "response IS NULL" cannot
 *    be what marks a pending row.
 */

/**
 * How long a claim excludes other attempts of the same command, and keeps its keys from being reclaimed. An attempt
 * starts no append after APPEND_START_WINDOW_MS (esdb-event-store.ts) and each append has a server deadline of
 * APPEND_DEADLINE_MS (esdb-log.ts); this lease outlasts both, so an expired lease means no write of it is in flight.
 */
export const COMMAND_LEASE_MS = 30_000;

/** Duplicate keys, deadlocks and lock-wait timeouts roll a side-table transaction back; it is retried from the top. */
const SIDE_TABLE_TRANSACTION_ATTEMPTS_MAX = 5;

/** A lease ended on purpose: the attempt gave up without knowing whether its write landed; the next may take over. */
const LEASE_ENDED_SQL = '1970-01-01 00:00:00.000';

const COMMAND_COLUMNS =
  'command_id, request_hash, stream_id, first_version, event_count, response_status, response_body, recorded_at';

/** Another request with the same command id is being written right now. Retrying later is the remedy. */
export class CommandInProgressError extends ConcurrencyError {
  constructor(
    streamId: string,
    readonly commandId: string,
  ) {
    super(streamId, 'any', null);
    this.message = `command ${commandId} is being written by another request; retry`;
    this.name = 'CommandInProgressError';
  }
}

export interface ClaimRequest {
  tenantId: string;
  streamId: string;
  command: { commandId: string; requestHash: string } | null;
  /** Sorted, without duplicates. */
  uniqueKeys: readonly string[];
  /** For a new command row: one past the stream version read before claiming. */
  searchFromVersion: number;
}

export interface Claim {
  tenantId: string;
  streamId: string;
  commandId: string | null;
  uniqueKeys: readonly string[];
  /** Where an earlier attempt's events would be: the command row's first_version. */
  searchFromVersion: number;
  /** The lease stamp (recorded_at) this attempt holds; null without a command. */
  lease: string | null;
  /** The command row existed (an earlier attempt ended without an answer): its events may have landed. */
  resumed: boolean;
}

/** A pending command whose lease has expired and which stands in the way of a claim. */
export interface AbandonedCommand {
  tenantId: string;
  commandId: string;
  streamId: string;
  searchFromVersion: number;
  lease: string;
}

export type ClaimOutcome =
  { kind: 'claimed'; claim: Claim } | { kind: 'blocked'; abandoned: AbandonedCommand };

export interface AppendRecord {
  tenantId: string;
  streamId: string;
  command: {
    commandId: string;
    requestHash: string;
    response: { status: number; body: unknown } | null;
  } | null;
  uniqueKeys: readonly string[];
  firstVersion: number;
  eventCount: number;
  lastHash: string;
  lastPosition: number;
  recordedAt: string;
  /** The state after these events, or null (a snapshot of an older version is then cleared, as in the SQL adapter). */
  snapshot: Snapshot | null;
}

/** Thrown inside the claim transaction so that it rolls back before the caller resolves the abandoned command. */
class BlockedByAbandoned extends Error {
  constructor(readonly abandoned: AbandonedCommand) {
    super(`blocked by abandoned command ${abandoned.commandId}`);
  }
}

export class EsdbSideTables {
  private readonly registeredTenants = new Set<string>();

  constructor(private readonly pool: Pool) {}

  /** The tenant's registry row (listTenants, partitionHeads); INSERT IGNORE makes the first appends safe to race. */
  async registerTenant(tenantId: string): Promise<void> {
    if (this.registeredTenants.has(tenantId)) return;
    await this.pool.query(
      'INSERT IGNORE INTO log_partitions (tenant_id, partition_no, next_position, last_hash) VALUES (?, 0, 1, ?)',
      [tenantId, GENESIS_HASH],
    );
    this.registeredTenants.add(tenantId);
  }

  /**
   * One transaction: the command row (new, or taken over from an attempt whose lease expired) and every unique key.
   * Throws DuplicateCommandError, UniqueKeyError or CommandInProgressError and then writes nothing.
   */
  async claim(request: ClaimRequest): Promise<ClaimOutcome> {
    try {
      const claim = await this.transaction((connection) => this.claimIn(connection, request));
      return { kind: 'claimed', claim };
    } catch (error) {
      if (error instanceof BlockedByAbandoned) return { kind: 'blocked', abandoned: error.abandoned };
      throw error;
    }
  }

  private async claimIn(connection: PoolConnection, request: ClaimRequest): Promise<Claim> {
    const { tenantId, streamId, command, uniqueKeys } = request;
    let searchFromVersion = request.searchFromVersion;
    let resumed = false;
    if (command !== null) {
      const [rows] = await connection.query<RowDataPacket[]>(
        `SELECT ${COMMAND_COLUMNS}, TIMESTAMPDIFF(MICROSECOND, recorded_at, UTC_TIMESTAMP(3)) AS lease_age_us
         FROM commands WHERE tenant_id = ? AND command_id = ? FOR UPDATE`,
        [tenantId, command.commandId],
      );
      const row = rows[0];
      if (row === undefined) {
        await connection.query(
          `INSERT INTO commands (tenant_id, command_id, request_hash, stream_id, first_version, event_count,
             response_status, response_body, recorded_at) VALUES (?, ?, ?, ?, ?, 0, NULL, NULL, UTC_TIMESTAMP(3))`,
          [tenantId, command.commandId, command.requestHash, streamId, searchFromVersion],
        );
      } else if (sqlInt(row['event_count']) > 0 || row['response_status'] !== null) {
        // Recorded: an append (events) or a refusal (no events, a response).
        throw new DuplicateCommandError(rowToCommandRecord(row));
      } else {
        const sameRequest =
          String(row['request_hash']) === command.requestHash && String(row['stream_id']) === streamId;
        if (!sameRequest) {
          // Another request under this id: refused like a recorded one while it may still land, resolved once abandoned.
          if (leaseLive(row)) throw new DuplicateCommandError(rowToCommandRecord(row));
          throw new BlockedByAbandoned(rowToAbandoned(tenantId, row));
        }
        if (leaseLive(row)) throw new CommandInProgressError(streamId, command.commandId);
        await connection.query(
          'UPDATE commands SET recorded_at = UTC_TIMESTAMP(3) WHERE tenant_id = ? AND command_id = ?',
          [tenantId, command.commandId],
        );
        searchFromVersion = sqlInt(row['first_version']);
        resumed = true;
      }
    }
    if (uniqueKeys.length > 0) await this.claimKeysIn(connection, request);
    let lease: string | null = null;
    if (command !== null) {
      const [leaseRows] = await connection.query<RowDataPacket[]>(
        'SELECT recorded_at FROM commands WHERE tenant_id = ? AND command_id = ?',
        [tenantId, command.commandId],
      );
      lease = String(leaseRows[0]?.['recorded_at']);
    }
    return {
      tenantId,
      streamId,
      commandId: command?.commandId ?? null,
      uniqueKeys,
      searchFromVersion,
      lease,
      resumed,
    };
  }

  private async claimKeysIn(connection: PoolConnection, request: ClaimRequest): Promise<void> {
    const { tenantId, streamId, uniqueKeys } = request;
    const ownCommandId = request.command?.commandId ?? null;
    const [keyRows] = await connection.query<RowDataPacket[]>(
      'SELECT unique_key, stream_id, command_id FROM unique_keys WHERE tenant_id = ? AND unique_key IN (?) FOR UPDATE',
      [tenantId, uniqueKeys],
    );
    const held = new Map(keyRows.map((row) => [String(row['unique_key']), row]));
    const holderIds = [
      ...new Set(
        keyRows
          .map((row) => (row['command_id'] === null ? null : String(row['command_id'])))
          .filter((id): id is string => id !== null && id !== ownCommandId),
      ),
    ];
    const holders = new Map<string, RowDataPacket>();
    if (holderIds.length > 0) {
      const [holderRows] = await connection.query<RowDataPacket[]>(
        `SELECT ${COMMAND_COLUMNS}, TIMESTAMPDIFF(MICROSECOND, recorded_at, UTC_TIMESTAMP(3)) AS lease_age_us
         FROM commands WHERE tenant_id = ? AND command_id IN (?)`,
        [tenantId, holderIds],
      );
      for (const row of holderRows) holders.set(String(row['command_id']), row);
    }
    for (const key of uniqueKeys) {
      const row = held.get(key);
      if (row === undefined) continue;
      const holderId = row['command_id'] === null ? null : String(row['command_id']);
      if (holderId !== null && holderId === ownCommandId) continue;
      const holder = holderId === null ? undefined : holders.get(holderId);
      // A key of a pending command nobody is writing any more may be free: the caller checks EventStoreDB first.
      if (holder !== undefined && sqlInt(holder['event_count']) === 0 && !leaseLive(holder)) {
        throw new BlockedByAbandoned(rowToAbandoned(tenantId, holder));
      }
      throw new UniqueKeyError(key, String(row['stream_id']));
    }
    const missing = uniqueKeys.filter((key) => !held.has(key));
    if (missing.length > 0) {
      await connection.query(
        `INSERT INTO unique_keys (tenant_id, unique_key, stream_id, command_id) VALUES ${missing.map(() => '(?, ?, ?, ?)').join(', ')}`,
        missing.flatMap((key) => [tenantId, key, streamId, ownCommandId]),
      );
    }
  }

  /** Undoes a claim whose append definitely did not land and cannot land any more: the command id and keys are free. */
  async release(claim: Claim): Promise<void> {
    await this.transaction(async (connection) => {
      if (claim.commandId !== null) {
        const [deleted] = await connection.query<ResultSetHeader>(
          'DELETE FROM commands WHERE tenant_id = ? AND command_id = ? AND event_count = 0 AND response_status IS NULL AND recorded_at = ?',
          [claim.tenantId, claim.commandId, claim.lease],
        );
        if (deleted.affectedRows === 1) {
          await connection.query('DELETE FROM unique_keys WHERE tenant_id = ? AND command_id = ?', [
            claim.tenantId,
            claim.commandId,
          ]);
        }
      } else if (claim.uniqueKeys.length > 0) {
        await connection.query(
          'DELETE FROM unique_keys WHERE tenant_id = ? AND unique_key IN (?) AND command_id IS NULL AND stream_id = ?',
          [claim.tenantId, claim.uniqueKeys, claim.streamId],
        );
      }
    });
  }

  /**
   * Ends a claim whose append may have landed: the row stays pending (so the next attempt looks for the events from
   * first_version) but its lease ends now, so that attempt need not wait for it to expire.
   */
  async endLease(claim: Claim): Promise<void> {
    if (claim.commandId === null) return;
    await this.pool.query(
      'UPDATE commands SET recorded_at = ? WHERE tenant_id = ? AND command_id = ? AND event_count = 0 AND response_status IS NULL AND recorded_at = ?',
      [LEASE_ENDED_SQL, claim.tenantId, claim.commandId, claim.lease],
    );
  }

  /** Deletes an abandoned command whose events are not in EventStoreDB, unless an attempt took it over meanwhile. */
  async deleteAbandoned(abandoned: AbandonedCommand): Promise<void> {
    await this.transaction(async (connection) => {
      const [deleted] = await connection.query<ResultSetHeader>(
        'DELETE FROM commands WHERE tenant_id = ? AND command_id = ? AND event_count = 0 AND response_status IS NULL AND recorded_at = ?',
        [abandoned.tenantId, abandoned.commandId, abandoned.lease],
      );
      if (deleted.affectedRows === 1) {
        await connection.query('DELETE FROM unique_keys WHERE tenant_id = ? AND command_id = ?', [
          abandoned.tenantId,
          abandoned.commandId,
        ]);
      }
    });
  }

  /**
   * After the events are in EventStoreDB: the command's outcome, the stream head (and snapshot) guarded by version,
   * and the tenant's last known log position. Idempotent: a second call for the same events changes nothing.
   */
  async recordAppend(record: AppendRecord): Promise<void> {
    const lastVersion = record.firstVersion + record.eventCount - 1;
    const recordedAtSql = isoToSqlTime(record.recordedAt);
    await this.transaction(async (connection) => {
      if (record.command !== null) await this.recordCommandIn(connection, record, recordedAtSql);
      const [streamRows] = await connection.query<RowDataPacket[]>(
        'SELECT version FROM streams WHERE tenant_id = ? AND stream_id = ? FOR UPDATE',
        [record.tenantId, record.streamId],
      );
      const current = streamRows[0] === undefined ? null : sqlInt(streamRows[0]['version']);
      const snapshotSchema = record.snapshot?.schemaVersion ?? null;
      const snapshotJson = record.snapshot === null ? null : encodeSnapshot(record.snapshot.state);
      if (current === null) {
        await connection.query(
          `INSERT INTO streams (tenant_id, stream_id, partition_no, version, last_hash, snapshot_schema, snapshot, updated_at)
           VALUES (?, ?, 0, ?, ?, ?, ?, ?)`,
          [
            record.tenantId,
            record.streamId,
            lastVersion,
            record.lastHash,
            snapshotSchema,
            snapshotJson,
            recordedAtSql,
          ],
        );
      } else if (current < lastVersion) {
        await connection.query(
          `UPDATE streams SET version = ?, last_hash = ?, snapshot_schema = ?, snapshot = ?, updated_at = ?
           WHERE tenant_id = ? AND stream_id = ?`,
          [
            lastVersion,
            record.lastHash,
            snapshotSchema,
            snapshotJson,
            recordedAtSql,
            record.tenantId,
            record.streamId,
          ],
        );
      }
      await connection.query(
        'UPDATE log_partitions SET next_position = GREATEST(next_position, ?) WHERE tenant_id = ? AND partition_no = 0',
        [record.lastPosition + 1, record.tenantId],
      );
    });
  }

  private async recordCommandIn(
    connection: PoolConnection,
    record: AppendRecord,
    recordedAtSql: string,
  ): Promise<void> {
    const command = record.command!;
    const values = [
      record.firstVersion,
      record.eventCount,
      command.response?.status ?? null,
      command.response === null ? null : JSON.stringify(command.response.body),
      recordedAtSql,
    ];
    const [updated] = await connection.query<ResultSetHeader>(
      `UPDATE commands SET first_version = ?, event_count = ?, response_status = ?, response_body = ?, recorded_at = ?
       WHERE tenant_id = ? AND command_id = ? AND event_count = 0 AND response_status IS NULL AND request_hash = ?`,
      [...values, record.tenantId, command.commandId, command.requestHash],
    );
    if (updated.affectedRows === 1) return;
    // Already recorded (a concurrent completion of the same events), or, against the lease's promise, released while
    // its write was still in flight: then the row and its keys come back, and a key taken meanwhile is a breach.
    const [inserted] = await connection.query<ResultSetHeader>(
      `INSERT IGNORE INTO commands (tenant_id, command_id, request_hash, stream_id, first_version, event_count,
         response_status, response_body, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [record.tenantId, command.commandId, command.requestHash, record.streamId, ...values],
    );
    if (inserted.affectedRows === 0 || record.uniqueKeys.length === 0) return;
    await connection.query(
      `INSERT IGNORE INTO unique_keys (tenant_id, unique_key, stream_id, command_id) VALUES ${record.uniqueKeys
        .map(() => '(?, ?, ?, ?)')
        .join(', ')}`,
      record.uniqueKeys.flatMap((key) => [record.tenantId, key, record.streamId, command.commandId]),
    );
    const [holders] = await connection.query<RowDataPacket[]>(
      'SELECT unique_key, command_id FROM unique_keys WHERE tenant_id = ? AND unique_key IN (?)',
      [record.tenantId, record.uniqueKeys],
    );
    const lost = holders.filter((row) => row['command_id'] !== command.commandId);
    if (lost.length > 0) {
      throw new Error(
        `invariant breach: command ${command.commandId} is in the event store, but unique key ${String(lost[0]!['unique_key'])} ` +
          `was taken by command ${String(lost[0]!['command_id'])} meanwhile; both are recorded, reconcile by hand`,
      );
    }
  }

  /**
   * Records a refusal (event_count 0 with a response), unless the id is taken: by a recorded outcome, which
   * is returned and stands, or by a pending claim, whose attempt may still land and decides the outcome
   * (then the refusal is answered but not recorded, and null is returned as for a recorded one).
   */
  async recordRejection(
    tenantId: string,
    streamId: string,
    command: { commandId: string; requestHash: string; response: { status: number; body: unknown } },
    recordedAtSql: string,
  ): Promise<CommandRecord | null> {
    const [inserted] = await this.pool.query<ResultSetHeader>(
      `INSERT IGNORE INTO commands (tenant_id, command_id, request_hash, stream_id, first_version, event_count,
         response_status, response_body, recorded_at) VALUES (?, ?, ?, ?, 0, 0, ?, ?, ?)`,
      [
        tenantId,
        command.commandId,
        command.requestHash,
        streamId,
        command.response.status,
        JSON.stringify(command.response.body),
        recordedAtSql,
      ],
    );
    if (inserted.affectedRows === 1) return null;
    return this.findRecordedCommand(tenantId, command.commandId);
  }

  /** A recorded command (an append or a refusal); a pending one is not recorded yet and reads as null. */
  async findRecordedCommand(tenantId: string, commandId: string): Promise<CommandRecord | null> {
    const [rows] = await this.pool.query<RowDataPacket[]>(
      `SELECT ${COMMAND_COLUMNS} FROM commands
       WHERE tenant_id = ? AND command_id = ? AND (event_count > 0 OR response_status IS NOT NULL)`,
      [tenantId, commandId],
    );
    return rows[0] === undefined ? null : rowToCommandRecord(rows[0]);
  }

  async findUniqueKey(tenantId: string, key: string): Promise<string | null> {
    const [rows] = await this.pool.query<RowDataPacket[]>(
      'SELECT stream_id FROM unique_keys WHERE tenant_id = ? AND unique_key = ?',
      [tenantId, key],
    );
    return rows[0] === undefined ? null : String(rows[0]['stream_id']);
  }

  /** The snapshot row: the version it reflects (which may trail EventStoreDB's head) and the snapshot, if any. */
  async snapshotRow(
    tenantId: string,
    streamId: string,
  ): Promise<{ version: number; snapshot: Snapshot | null } | null> {
    const [rows] = await this.pool.query<RowDataPacket[]>(
      'SELECT version, snapshot_schema, snapshot FROM streams WHERE tenant_id = ? AND stream_id = ?',
      [tenantId, streamId],
    );
    const row = rows[0];
    if (row === undefined) return null;
    const snapshot: Snapshot | null =
      row['snapshot'] === null || row['snapshot_schema'] === null
        ? null
        : { schemaVersion: sqlInt(row['snapshot_schema']), state: decodeSnapshot(String(row['snapshot'])) };
    return { version: sqlInt(row['version']), snapshot };
  }

  /** Moves the stream row to `version` with its snapshot, never backwards. */
  async saveSnapshot(
    tenantId: string,
    streamId: string,
    version: number,
    lastHash: string,
    snapshot: Snapshot,
    recordedAt: string,
  ): Promise<void> {
    const recordedAtSql = isoToSqlTime(recordedAt);
    await this.transaction(async (connection) => {
      const [rows] = await connection.query<RowDataPacket[]>(
        'SELECT version FROM streams WHERE tenant_id = ? AND stream_id = ? FOR UPDATE',
        [tenantId, streamId],
      );
      const current = rows[0] === undefined ? null : sqlInt(rows[0]['version']);
      const stateJson = JSON.stringify(snapshot.state);
      if (current === null) {
        await connection.query(
          `INSERT INTO streams (tenant_id, stream_id, partition_no, version, last_hash, snapshot_schema, snapshot, updated_at)
           VALUES (?, ?, 0, ?, ?, ?, ?, ?)`,
          [tenantId, streamId, version, lastHash, snapshot.schemaVersion, stateJson, recordedAtSql],
        );
      } else if (current <= version) {
        await connection.query(
          `UPDATE streams SET version = ?, last_hash = ?, snapshot_schema = ?, snapshot = ?
           WHERE tenant_id = ? AND stream_id = ?`,
          [version, lastHash, snapshot.schemaVersion, stateJson, tenantId, streamId],
        );
      }
    });
  }

  /** The last $all position recorded for the tenant (0 = none yet), or null for a tenant never appended to. */
  async recordedLogHead(tenantId: string): Promise<number | null> {
    const [rows] = await this.pool.query<RowDataPacket[]>(
      'SELECT next_position FROM log_partitions WHERE tenant_id = ? AND partition_no = 0',
      [tenantId],
    );
    return rows[0] === undefined ? null : sqlInt(rows[0]['next_position']) - 1;
  }

  async listTenants(): Promise<string[]> {
    const [rows] = await this.pool.query<RowDataPacket[]>(
      'SELECT DISTINCT tenant_id FROM log_partitions ORDER BY tenant_id',
    );
    return rows.map((row) => String(row['tenant_id']));
  }

  private async transaction<T>(work: (connection: PoolConnection) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await inTransaction(this.pool, work);
      } catch (error) {
        const errno = sqlErrno(error);
        const retriable =
          errno === ER_DUP_ENTRY || errno === ER_LOCK_DEADLOCK || errno === ER_LOCK_WAIT_TIMEOUT;
        if (!retriable || attempt >= SIDE_TABLE_TRANSACTION_ATTEMPTS_MAX) throw error;
      }
    }
  }
}

function leaseLive(row: RowDataPacket): boolean {
  return sqlInt(row['lease_age_us']) < COMMAND_LEASE_MS * 1_000;
}

function rowToAbandoned(tenantId: string, row: RowDataPacket): AbandonedCommand {
  return {
    tenantId,
    commandId: String(row['command_id']),
    streamId: String(row['stream_id']),
    searchFromVersion: sqlInt(row['first_version']),
    lease: String(row['recorded_at']),
  };
}
