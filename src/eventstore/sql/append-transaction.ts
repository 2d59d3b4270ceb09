import { encodeSnapshot } from '../snapshot-codec.ts';
import type { RowDataPacket } from 'mysql2/promise';
import { isoToSqlTime, sqlInt, sqlTimeToIso, type PoolConnection } from '../../db/pool.ts';
import { GENESIS_HASH, partitionHash, streamHash } from '../hash.ts';
import { partitionOf } from '../partition.ts';
import { ConcurrencyError, type AppendRequest, type AppendResult, type RecordedEvent } from '../port.ts';

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
 * Appends a batch of requests (at most one per stream) in one transaction of three round trips, with a
 * fixed number of statements whatever the batch size:
 *   1. START TRANSACTION; SELECT streams ... FOR UPDATE      version check per request (a mismatch fails only that one)
 *   2. INSERT commands; INSERT unique_keys                   dedup by constraint (a duplicate fails the statement)
 *      upsert streams                                         head + snapshot (stream hashes need no log position)
 *      SELECT log_partitions ... FOR UPDATE                   positions; held to COMMIT: commit order = position order
 *   3. INSERT events; upsert log_partitions; COMMIT
 * Locks are taken in this order by every batch, rows inside a statement in primary-key order: no cycles.
 * On any failure the transaction is rolled back and the error rethrown.
 */
export async function appendBatch(
  connection: PoolConnection,
  requests: readonly AppendRequest[],
  partitions: number,
  beforeCommit?: (request: AppendRequest) => Promise<void>,
): Promise<AppendOutcome[]> {
  try {
    return await appendBatchOrThrow(connection, requests, partitions, beforeCommit);
  } catch (error) {
    await connection.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

async function appendBatchOrThrow(
  connection: PoolConnection,
  requests: readonly AppendRequest[],
  partitions: number,
  beforeCommit: ((request: AppendRequest) => Promise<void>) | undefined,
): Promise<AppendOutcome[]> {
  const [, streamResult] = await send(connection, [
    { sql: 'START TRANSACTION', params: [] },
    {
      sql: `SELECT tenant_id, stream_id, version, last_hash FROM streams WHERE (tenant_id, stream_id) IN (${tuples(requests.length, 2)})
       ORDER BY tenant_id, stream_id FOR UPDATE`,
      params: requests.flatMap((r) => [r.tenantId, r.streamId]),
    },
  ]);
  const streamRows = streamResult as RowDataPacket[];
  const heads = new Map<string, { version: number; lastHash: string }>();
  for (const row of streamRows) {
    heads.set(`${String(row['tenant_id'])}\u0000${String(row['stream_id'])}`, {
      version: sqlInt(row['version']),
      lastHash: String(row['last_hash']),
    });
  }

  const outcomes: AppendOutcome[] = new Array<AppendOutcome>(requests.length);
  const accepted: {
    index: number;
    request: AppendRequest;
    head: { version: number; lastHash: string } | undefined;
  }[] = [];
  requests.forEach((request, index) => {
    const head = heads.get(`${request.tenantId}\u0000${request.streamId}`);
    const conflict = versionConflict(request, head?.version ?? null);
    if (conflict) outcomes[index] = { ok: false, error: conflict };
    else accepted.push({ index, request, head });
  });
  if (accepted.length === 0) {
    await connection.query('ROLLBACK');
    return outcomes;
  }
  const second: Statement[] = [];

  const withCommand = accepted.filter((a) => a.request.command !== undefined);
  if (withCommand.length > 0) {
    second.push({
      sql: `INSERT INTO commands (tenant_id, command_id, request_hash, stream_id, first_version, event_count,
         response_status, response_body, recorded_at) VALUES ${tuples(withCommand.length, 9)}`,
      params: withCommand.flatMap(({ request, head }) => {
        const command = request.command!;
        return [
          request.tenantId,
          command.commandId,
          command.requestHash,
          request.streamId,
          (head?.version ?? 0) + 1,
          request.events.length,
          command.response?.status ?? null,
          command.response === undefined ? null : JSON.stringify(command.response.body),
          isoToSqlTime(request.events[0]!.metadata.recordedAt),
        ];
      }),
    });
  }
  const keys = accepted.flatMap(({ request }) =>
    [...new Set(request.uniqueKeys ?? [])].map((key) => [
      request.tenantId,
      key,
      request.streamId,
      request.command?.commandId ?? null,
    ]),
  );
  if (keys.length > 0) {
    keys.sort((a, b) => `${a[0]}\u0000${a[1]}`.localeCompare(`${b[0]}\u0000${b[1]}`));
    second.push({
      sql: `INSERT INTO unique_keys (tenant_id, unique_key, stream_id, command_id) VALUES ${tuples(keys.length, 4)}`,
      params: keys.flat(),
    });
  }

  // Stream hashes do not depend on log positions: compute them, and write the stream heads, before the
  // partition rows are locked, so the partition locks are held for as few statements as possible.
  const prepared = accepted.map(({ index, request, head }) => {
    let previousStreamHash = head?.lastHash ?? GENESIS_HASH;
    const firstVersion = (head?.version ?? 0) + 1;
    const events = request.events.map((event, offset) => {
      const streamVersion = firstVersion + offset;
      const dataJson = JSON.stringify(event.data);
      const metadataJson = JSON.stringify(event.metadata);
      const eventStreamHash = streamHash(previousStreamHash, {
        tenantId: request.tenantId,
        streamId: request.streamId,
        streamVersion,
        eventId: event.eventId,
        type: event.type,
        dataJson,
        metadataJson,
      });
      previousStreamHash = eventStreamHash;
      return { event, streamVersion, dataJson, metadataJson, streamHash: eventStreamHash };
    });
    return {
      index,
      request,
      events,
      lastHash: previousStreamHash,
      newVersion: firstVersion + request.events.length - 1,
    };
  });
  second.push({
    sql: `INSERT INTO streams (tenant_id, stream_id, partition_no, version, last_hash, snapshot_schema, snapshot, updated_at)
     VALUES ${tuples(prepared.length, 8)}
     ON DUPLICATE KEY UPDATE version = VALUES(version), last_hash = VALUES(last_hash),
       snapshot_schema = VALUES(snapshot_schema), snapshot = VALUES(snapshot), updated_at = VALUES(updated_at)`,
    params: prepared.flatMap(({ request, lastHash, newVersion }) => [
      request.tenantId,
      request.streamId,
      partitionOf(request.streamId, partitions),
      newVersion,
      lastHash,
      request.snapshot?.schemaVersion ?? null,
      // A stream appended without a snapshot gets its old snapshot cleared rather than left stale.
      request.snapshot === undefined ? null : encodeSnapshot(request.snapshot.state),
      isoToSqlTime(request.events[0]!.metadata.recordedAt),
    ]),
  });

  const partitionKeys = [
    ...new Map(
      accepted.map(({ request }) => {
        const partition = partitionOf(request.streamId, partitions);
        return [`${request.tenantId}\u0000${partition}`, [request.tenantId, partition] as const];
      }),
    ).values(),
  ];
  second.push({
    sql: `SELECT tenant_id, partition_no, next_position, last_hash FROM log_partitions
     WHERE (tenant_id, partition_no) IN (${tuples(partitionKeys.length, 2)}) ORDER BY tenant_id, partition_no FOR UPDATE`,
    params: partitionKeys.flat(),
  });
  const secondResults = await send(connection, second);
  const partitionRows = secondResults[secondResults.length - 1] as RowDataPacket[];
  const partitionHeads = new Map<string, { next: number; lastHash: string }>();
  for (const row of partitionRows) {
    partitionHeads.set(`${String(row['tenant_id'])}\u0000${sqlInt(row['partition_no'])}`, {
      next: sqlInt(row['next_position']),
      lastHash: String(row['last_hash']),
    });
  }

  const eventValues: unknown[] = [];
  let eventCount = 0;
  for (const { index, request, events, newVersion } of prepared) {
    const partition = partitionOf(request.streamId, partitions);
    const partitionHead = partitionHeads.get(`${request.tenantId}\u0000${partition}`);
    if (partitionHead === undefined)
      throw new Error(`log partition ${request.tenantId}/${partition} is missing`);
    const recorded: RecordedEvent[] = events.map(
      ({ event, streamVersion, dataJson, metadataJson, streamHash: eventStreamHash }) => {
        const position = partitionHead.next;
        const eventPartitionHash = partitionHash(
          partitionHead.lastHash,
          partition,
          position,
          eventStreamHash,
        );
        const recordedAtSql = isoToSqlTime(event.metadata.recordedAt);
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
      },
    );
    outcomes[index] = { ok: true, result: { streamVersion: newVersion, events: recorded } };
  }

  const third: Statement[] = [
    { sql: `INSERT INTO events (${EVENT_COLUMNS}) VALUES ${tuples(eventCount, 12)}`, params: eventValues },
    {
      // VALUES() in ON DUPLICATE KEY UPDATE runs on MySQL 8 (deprecated, still supported), MariaDB and TiDB alike.
      sql: `INSERT INTO log_partitions (tenant_id, partition_no, next_position, last_hash) VALUES ${tuples(partitionKeys.length, 4)}
       ON DUPLICATE KEY UPDATE next_position = VALUES(next_position), last_hash = VALUES(last_hash)`,
      params: partitionKeys.flatMap(([tenantId, partition]) => {
        const head = partitionHeads.get(`${tenantId}\u0000${partition}`)!;
        return [tenantId, partition, head.next, head.lastHash];
      }),
    },
  ];
  if (beforeCommit === undefined) {
    await send(connection, [...third, { sql: 'COMMIT', params: [] }]);
  } else {
    await send(connection, third);
    for (const [index, outcome] of outcomes.entries()) if (outcome.ok) await beforeCommit(requests[index]!);
    await connection.query('COMMIT');
  }
  return outcomes;
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
