import { encodeSnapshot } from '../snapshot-codec.ts';
import type { RowDataPacket } from 'mysql2/promise';
import { isoToSqlTime, sqlInt, sqlTimeToIso, type PoolConnection } from '../../db/pool.ts';
import { GENESIS_HASH, partitionHash, streamHash } from '../hash.ts';
import { ConcurrencyError, type AppendRequest, type AppendResult, type RecordedEvent } from '../port.ts';
import {
  partitionKey,
  streamKey,
  type KnownHeads,
  type PartitionHeadValue,
  type StreamHeadValue,
} from './head-cache.ts';

export const EVENT_COLUMNS =
  'tenant_id, partition_no, position, stream_id, stream_version, event_id, event_type, data, metadata, recorded_at, stream_hash, partition_hash';

export type AppendOutcome = { ok: true; result: AppendResult } | { ok: false; error: ConcurrencyError };

interface Statement {
  sql: string;
  params: unknown[];
}

/**
 * Sends statements in one round trip (the pool allows multiple statements; every value still goes through
 * placeholders). The server stops at the first failing statement, so a COMMIT sent after a failing INSERT
 * never runs. Returns each statement's result.
 */
async function send(connection: PoolConnection, statements: readonly Statement[]): Promise<unknown[]> {
  const [results] = await connection.query(
    statements.map((s) => s.sql).join(';\n'),
    statements.flatMap((s) => s.params),
  );
  return statements.length === 1 ? [results] : (results as unknown[]);
}

function tuples(count: number, width: number): string {
  const one = `(${Array.from({ length: width }, () => '?').join(', ')})`;
  return Array.from({ length: count }, () => one).join(', ');
}

/**
 * Appends a batch of requests (at most one per stream) in one transaction with a fixed number of statements
 * whatever the batch size, in two round trips:
 *   1. START TRANSACTION
 *      SELECT streams ... FOR UPDATE          version check per request (a mismatch fails only that one)
 *      SELECT log_partitions ... FOR UPDATE   positions; held to COMMIT: commit order = position order
 *   2. INSERT commands; INSERT unique_keys    dedup by constraint (a duplicate fails the statement)
 *      upsert streams                          head + snapshot
 *      upsert log_partitions; INSERT events
 *      COMMIT                                  never runs if a statement before it failed
 * or, when the committer knows every head already (`known`, head-cache.ts), in one: START TRANSACTION and
 * the statements of 2, with a guard before the partition upsert that fails on a primary key when a
 * partition's committed head is not the one known. The upserts take the stream and partition rows' locks,
 * in the same order. A head known wrong fails the guard, or the events insert on a unique key (a position
 * or a stream version taken by a writer not yet committed), before the COMMIT: the caller then goes the
 * locking way.
 * Locks are taken in this order by every batch, rows inside a statement in primary-key order: no cycles.
 * Two round trips, not three: each costs a socket write and a wake-up on both sides, and the partition
 * rows are held for about one round trip either way (BENCHMARKS.md, bench:append).
 * On any failure the transaction is rolled back and the error rethrown.
 */
export async function appendBatch(
  connection: PoolConnection,
  items: readonly PartitionedRequest[],
  beforeCommit?: (request: AppendRequest) => Promise<void>,
  known?: KnownHeads,
): Promise<AppendOutcome[]> {
  try {
    return await appendBatchOrThrow(connection, items, beforeCommit, known);
  } catch (error) {
    await connection.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

/** A request and its log partition (partitionOf its stream: the committer has it already). */
export interface PartitionedRequest {
  request: AppendRequest;
  partition: number;
}

/** What a request writes that does not depend on the heads read under lock: encoded before the locks. */
interface Encoded {
  request: AppendRequest;
  partition: number;
  /** The first event's recording time as SQL DATETIME(3): the command's, and the stream head's, time. */
  recordedAtSql: string;
  responseJson: string | null;
  snapshotText: string | null;
  events: { dataJson: string; metadataJson: string; recordedAtSql: string }[];
}

function encode({ request, partition }: PartitionedRequest): Encoded {
  const events = request.events.map((event) => ({
    dataJson: JSON.stringify(event.data),
    metadataJson: JSON.stringify(event.metadata),
    recordedAtSql: isoToSqlTime(event.metadata.recordedAt),
  }));
  const response = request.command?.response;
  return {
    request,
    partition,
    recordedAtSql: events[0]!.recordedAtSql,
    responseJson: response === undefined ? null : JSON.stringify(response.body),
    // A stream appended without a snapshot gets its old snapshot cleared rather than left stale.
    snapshotText: request.snapshot === undefined ? null : encodeSnapshot(request.snapshot.state),
    events,
  };
}

async function appendBatchOrThrow(
  connection: PoolConnection,
  items: readonly PartitionedRequest[],
  beforeCommit: ((request: AppendRequest) => Promise<void>) | undefined,
  known: KnownHeads | undefined,
): Promise<AppendOutcome[]> {
  const requests = items.map((item) => item.request);
  // Everything that does not need the heads is done before the rows are locked: other batches wait on
  // the partition rows for as long as this one holds them.
  const encoded = items.map(encode);
  const partitions = partitionKeysOf(encoded);
  // The known partition heads as they were before this batch, for the guard below.
  const knownPartitionHeads =
    known === undefined
      ? []
      : partitions.map(([tenantId, partition]) => {
          const head = known.partitions.get(partitionKey(tenantId, partition))!;
          return [tenantId, partition, head.next, head.lastHash] as const;
        });
  const { streams: heads, partitions: partitionHeads } =
    known ?? (await lockHeads(connection, requests, partitions));
  const outcomes: AppendOutcome[] = new Array<AppendOutcome>(requests.length);
  const accepted: { index: number; encoded: Encoded; version: number; lastHash: string }[] = [];
  requests.forEach((request, index) => {
    const head = heads.get(streamKey(request.tenantId, request.streamId));
    const conflict = versionConflict(request, head?.version ?? null);
    if (conflict) outcomes[index] = { ok: false, error: conflict };
    else
      accepted.push({
        index,
        encoded: encoded[index]!,
        version: head?.version ?? 0,
        lastHash: head?.lastHash ?? GENESIS_HASH,
      });
  });
  if (accepted.length === 0) {
    // Known heads are taken only when every request expects its stream's: never nothing accepted there.
    if (known !== undefined) throw new Error('append: a batch on known heads accepted no request');
    await connection.query('ROLLBACK');
    return outcomes;
  }

  const writes: Statement[] = [];
  const withCommand = accepted.filter((a) => a.encoded.request.command !== undefined);
  if (withCommand.length > 0) {
    writes.push({
      sql: `INSERT INTO commands (tenant_id, command_id, request_hash, stream_id, first_version, event_count,
         response_status, response_body, recorded_at) VALUES ${tuples(withCommand.length, 9)}`,
      params: withCommand.flatMap(({ encoded: { request, responseJson, recordedAtSql }, version }) => {
        const command = request.command!;
        return [
          request.tenantId,
          command.commandId,
          command.requestHash,
          request.streamId,
          version + 1,
          request.events.length,
          command.response?.status ?? null,
          responseJson,
          recordedAtSql,
        ];
      }),
    });
  }
  const keys = accepted.flatMap(({ encoded: { request } }) =>
    [...new Set(request.uniqueKeys ?? [])].map((key) => [
      request.tenantId,
      key,
      request.streamId,
      request.command?.commandId ?? null,
    ]),
  );
  if (keys.length > 0) {
    keys.sort((a, b) => `${a[0]}\u0000${a[1]}`.localeCompare(`${b[0]}\u0000${b[1]}`));
    writes.push({
      sql: `INSERT INTO unique_keys (tenant_id, unique_key, stream_id, command_id) VALUES ${tuples(keys.length, 4)}`,
      params: keys.flat(),
    });
  }

  // Hash chains and positions: each event hashes its predecessor in its stream and in its partition.
  const streamValues: unknown[] = [];
  const eventValues: unknown[] = [];
  let eventCount = 0;
  for (const { index, encoded: item, version, lastHash } of accepted) {
    const { request, partition } = item;
    const partitionHead = partitionHeads.get(partitionKey(request.tenantId, partition));
    if (partitionHead === undefined)
      throw new Error(`log partition ${request.tenantId}/${partition} is missing`);
    let previousStreamHash = lastHash;
    const recorded: RecordedEvent[] = request.events.map((event, offset) => {
      const { dataJson, metadataJson, recordedAtSql } = item.events[offset]!;
      const streamVersion = version + 1 + offset;
      const eventStreamHash = streamHash(previousStreamHash, {
        tenantId: request.tenantId,
        streamId: request.streamId,
        streamVersion,
        eventId: event.eventId,
        type: event.type,
        dataJson,
        metadataJson,
      });
      const position = partitionHead.next;
      const eventPartitionHash = partitionHash(partitionHead.lastHash, partition, position, eventStreamHash);
      eventValues.push(
        request.tenantId,
        partition,
        position,
        request.streamId,
        streamVersion,
        event.eventId,
        event.type,
        dataJson,
        metadataJson,
        recordedAtSql,
        eventStreamHash,
        eventPartitionHash,
      );
      eventCount += 1;
      previousStreamHash = eventStreamHash;
      partitionHead.next = position + 1;
      partitionHead.lastHash = eventPartitionHash;
      return {
        eventId: event.eventId,
        type: event.type,
        data: event.data,
        metadata: event.metadata,
        tenantId: request.tenantId,
        streamId: request.streamId,
        streamVersion,
        partition,
        position,
        recordedAt: sqlTimeToIso(recordedAtSql),
        streamHash: eventStreamHash,
        partitionHash: eventPartitionHash,
        dataJson,
        metadataJson,
      };
    });
    const newVersion = version + request.events.length;
    streamValues.push(
      request.tenantId,
      request.streamId,
      partition,
      newVersion,
      previousStreamHash,
      request.snapshot?.schemaVersion ?? null,
      item.snapshotText,
      item.recordedAtSql,
    );
    outcomes[index] = { ok: true, result: { streamVersion: newVersion, events: recorded } };
  }

  const writtenPartitions = partitionKeysOf(accepted.map((a) => a.encoded));
  writes.push(
    {
      sql: `INSERT INTO streams (tenant_id, stream_id, partition_no, version, last_hash, snapshot_schema, snapshot, updated_at)
     VALUES ${tuples(accepted.length, 8)}
     ON DUPLICATE KEY UPDATE version = VALUES(version), last_hash = VALUES(last_hash),
       snapshot_schema = VALUES(snapshot_schema), snapshot = VALUES(snapshot), updated_at = VALUES(updated_at)`,
      params: streamValues,
    },
    ...(known === undefined
      ? []
      : [
          {
            // On known heads: every partition's committed head must be the one known, or this re-inserts
            // the row and fails on its primary key. A partition head pins its whole log (the hash chain),
            // so it also proves the batch's streams are where they were known: no process appended there
            // since, and no backup set the database back under this process.
            sql: `INSERT INTO log_partitions (tenant_id, partition_no, next_position, last_hash)
       SELECT tenant_id, partition_no, next_position, last_hash FROM log_partitions
       WHERE (tenant_id, partition_no) IN (${tuples(knownPartitionHeads.length, 2)})
         AND (tenant_id, partition_no, next_position, last_hash) NOT IN (${tuples(knownPartitionHeads.length, 4)})`,
            params: [...knownPartitionHeads.flatMap(([t, p]) => [t, p]), ...knownPartitionHeads.flat()],
          },
        ]),
    {
      // VALUES() in ON DUPLICATE KEY UPDATE runs on MySQL 8 (deprecated, still supported), MariaDB and TiDB alike.
      sql: `INSERT INTO log_partitions (tenant_id, partition_no, next_position, last_hash) VALUES ${tuples(writtenPartitions.length, 4)}
       ON DUPLICATE KEY UPDATE next_position = VALUES(next_position), last_hash = VALUES(last_hash)`,
      params: writtenPartitions.flatMap(([tenantId, partition]) => {
        const head = partitionHeads.get(partitionKey(tenantId, partition))!;
        return [tenantId, partition, head.next, head.lastHash];
      }),
    },
    // Last: on known heads its unique keys are what catch a head taken meanwhile by another writer.
    { sql: `INSERT INTO events (${EVENT_COLUMNS}) VALUES ${tuples(eventCount, 12)}`, params: eventValues },
  );
  const start: Statement[] = known === undefined ? [] : [{ sql: 'START TRANSACTION', params: [] }];
  if (beforeCommit === undefined) {
    await send(connection, [...start, ...writes, { sql: 'COMMIT', params: [] }]);
  } else {
    await send(connection, [...start, ...writes]);
    for (const [index, outcome] of outcomes.entries()) if (outcome.ok) await beforeCommit(requests[index]!);
    await connection.query('COMMIT');
  }
  return outcomes;
}

/**
 * The first round trip of the locking way: opens the transaction and reads the batch's stream and partition
 * heads FOR UPDATE. Every request's partition is locked, also those a version conflict will drop: the lock
 * is taken before the versions are known. Only the partitions of accepted requests are written.
 */
async function lockHeads(
  connection: PoolConnection,
  requests: readonly AppendRequest[],
  partitions: readonly (readonly [tenantId: string, partition: number])[],
): Promise<KnownHeads> {
  const [, streamResult, partitionResult] = await send(connection, [
    { sql: 'START TRANSACTION', params: [] },
    {
      sql: `SELECT tenant_id, stream_id, version, last_hash FROM streams WHERE (tenant_id, stream_id) IN (${tuples(requests.length, 2)})
       ORDER BY tenant_id, stream_id FOR UPDATE`,
      params: requests.flatMap((r) => [r.tenantId, r.streamId]),
    },
    {
      sql: `SELECT tenant_id, partition_no, next_position, last_hash FROM log_partitions
     WHERE (tenant_id, partition_no) IN (${tuples(partitions.length, 2)}) ORDER BY tenant_id, partition_no FOR UPDATE`,
      params: partitions.flat(),
    },
  ]);
  const streams = new Map<string, StreamHeadValue>();
  for (const row of streamResult as RowDataPacket[]) {
    streams.set(streamKey(String(row['tenant_id']), String(row['stream_id'])), {
      version: sqlInt(row['version']),
      lastHash: String(row['last_hash']),
    });
  }
  const partitionHeads = new Map<string, PartitionHeadValue>();
  for (const row of partitionResult as RowDataPacket[]) {
    partitionHeads.set(partitionKey(String(row['tenant_id']), sqlInt(row['partition_no'])), {
      next: sqlInt(row['next_position']),
      lastHash: String(row['last_hash']),
    });
  }
  return { streams, partitions: partitionHeads };
}

/** The (tenant, partition) pairs of the requests, each once, in key order. */
function partitionKeysOf(
  requests: readonly Pick<Encoded, 'request' | 'partition'>[],
): (readonly [tenantId: string, partition: number])[] {
  const keys = new Map<string, readonly [string, number]>();
  for (const { request, partition } of requests) {
    keys.set(`${request.tenantId}\u0000${partition}`, [request.tenantId, partition]);
  }
  return [...keys.values()].sort((a, b) => (a[0] === b[0] ? a[1] - b[1] : a[0] < b[0] ? -1 : 1));
}

function versionConflict(request: AppendRequest, currentVersion: number | null): ConcurrencyError | null {
  const expected = request.expectedVersion;
  if (expected === 'any') return null;
  if (expected === 'no-stream' || expected === 0) {
    return currentVersion === null ? null : new ConcurrencyError(request.streamId, expected, currentVersion);
  }
  return currentVersion === expected
    ? null
    : new ConcurrencyError(request.streamId, expected, currentVersion);
}
