/**
 * The audit's floor on this machine, printed by bench:audit beside the audit's own rate: what the work no
 * audit of this design can skip costs with nothing else done, per million events, and the most events/s
 * that leaves on this machine's cores (BENCHMARKS.md, "bench:audit").
 *
 * - Reading: every event twice, as the two passes read it (pass A: the chain's columns, per partition in
 *   position order; pass B: the whole event, in stream order through the stream index), and every ledger
 *   entry in member order. Keyset pages of the audit's sizes, rows as arrays, nothing done with them. Node's
 *   CPU from process.cpuUsage (its GC threads included); the database server's from /proc when it runs on
 *   this machine, else left out. The server's CPU counts all it does meanwhile, and a busy machine slows
 *   every part: measure on a quiet one, right after the audit, as bench:audit does.
 * - Per event, on a sample of member streams, in this process: JSON.parse with the domain's fold
 *   (evolveMember and movementsOf), the stream hash, and the partition hash.
 * Left out, so the floor is below any real audit: the smaller read models, pass C, the comparisons, the
 * cursors' merge, the postings, and the time processes wait on each other.
 */
import os from 'node:os';
import type { RowDataPacket } from 'mysql2/promise';
import { AUDIT_EVENT_PAGE_ROWS, AUDIT_PAGE_ROWS } from '../../src/audit/audit.ts';
import { SLICE_EVENT_COLUMNS } from '../../src/audit/member-pass.ts';
import { CHAIN_COLUMNS } from '../../src/audit/partition-pass.ts';
import type { Pool } from '../../src/db/pool.ts';
import {
  evolveMember,
  initialMemberState,
  movementsOf,
  type MemberEvent,
  type MemberState,
} from '../../src/domain/member/index.ts';
import { GENESIS_HASH, partitionHash, streamHash } from '../../src/eventstore/hash.ts';
import { LEDGER_ENTRY_VALUE_COLUMNS } from '../../src/projections/tables.ts';
import { localDatabaseServerPid, procCpuSeconds } from './rss.ts';

/** Events the per-event costs are measured on (the first member streams in id order). */
const SAMPLE_EVENTS = 100_000;

export interface AuditFloor {
  /** Events in the tenant's log (read in position order, as pass A reads them). */
  events: number;
  /** The same events read in stream order (as pass B reads them), and the ledger entries read. */
  eventsByStream: number;
  ledgerEntries: number;
  /** CPU-seconds reading the rows: node's, and the database server's (null when it is not on this machine). */
  readNodeSeconds: number;
  readDatabaseSeconds: number | null;
  /** Microseconds an event in one process: JSON.parse and the fold, the stream hash, the partition hash. */
  foldMicros: number;
  streamHashMicros: number;
  partitionHashMicros: number;
  /** All of it, in CPU-seconds per million events. */
  cpuSecondsPerMillion: number;
  /** The most events/s that allows with every core of this machine busy. */
  maxEventsPerSecond: number;
}

/** Reads a whole keyset-ordered query page by page; `page(after)` gives the SQL and parameters after a row. */
async function readAll(
  pool: Pool,
  page: (after: unknown[] | null) => [sql: string, params: unknown[]],
  pageRows: number,
): Promise<number> {
  let rows = 0;
  let after: unknown[] | null = null;
  for (;;) {
    const [sql, params] = page(after);
    const [result] = await pool.query<RowDataPacket[]>({ sql, rowsAsArray: true }, [...params, pageRows]);
    const batch = result as unknown as unknown[][];
    rows += batch.length;
    if (batch.length < pageRows) return rows;
    after = batch[batch.length - 1]!;
  }
}

async function readRows(
  pool: Pool,
  tenantId: string,
): Promise<Pick<AuditFloor, 'events' | 'eventsByStream' | 'ledgerEntries'>> {
  const [partitions] = await pool.query<RowDataPacket[]>(
    'SELECT partition_no FROM log_partitions WHERE tenant_id = ? ORDER BY partition_no',
    [tenantId],
  );
  let events = 0;
  for (const row of partitions) {
    const partition = Number(row['partition_no']);
    events += await readAll(
      pool,
      (after) => [
        `SELECT ${CHAIN_COLUMNS} FROM events
         WHERE tenant_id = ? AND partition_no = ? AND position > ? ORDER BY position LIMIT ?`,
        [tenantId, partition, after?.[0] ?? 0],
      ],
      AUDIT_PAGE_ROWS,
    );
  }
  const eventsByStream = await readAll(
    pool,
    (after) => [
      `SELECT ${SLICE_EVENT_COLUMNS}
       FROM events WHERE tenant_id = ? AND stream_id >= ? AND (stream_id > ? OR stream_version > ?)
       ORDER BY stream_id, stream_version LIMIT ?`,
      [tenantId, after?.[0] ?? '', after?.[0] ?? '', after?.[1] ?? 0],
    ],
    AUDIT_EVENT_PAGE_ROWS,
  );
  const ledgerEntries = await readAll(
    pool,
    (after) => [
      `SELECT member_id, stream_version, movement_no, ${LEDGER_ENTRY_VALUE_COLUMNS.join(', ')} FROM ledger_entries
       WHERE tenant_id = ? AND member_id >= ?
         AND (member_id > ? OR stream_version > ? OR (stream_version = ? AND movement_no > ?))
       ORDER BY member_id, stream_version, movement_no LIMIT ?`,
      [tenantId, after?.[0] ?? '', after?.[0] ?? '', after?.[1] ?? 0, after?.[1] ?? 0, after?.[2] ?? -1],
    ],
    AUDIT_PAGE_ROWS,
  );
  return { events, eventsByStream, ledgerEntries };
}

/** The CPU-seconds `fn` takes in this process (every thread of it), the least of two runs. */
function cpuSeconds(fn: () => void): number {
  let least = Infinity;
  for (let run = 0; run < 2; run++) {
    const before = process.cpuUsage();
    fn();
    const used = process.cpuUsage(before);
    least = Math.min(least, (used.user + used.system) / 1e6);
  }
  return least;
}

type SampleRow = [
  streamId: string,
  streamVersion: number,
  eventId: string,
  type: string,
  dataJson: string,
  metadataJson: string,
  streamHash: string,
  partition: number,
  position: number,
  partitionHash: string,
];

async function perEventMicros(
  pool: Pool,
  tenantId: string,
): Promise<Pick<AuditFloor, 'foldMicros' | 'streamHashMicros' | 'partitionHashMicros'>> {
  const [result] = await pool.query<RowDataPacket[]>(
    {
      sql: `SELECT stream_id, stream_version, event_id, event_type, data, metadata, stream_hash, partition_no, position,
              partition_hash
            FROM events WHERE tenant_id = ? AND stream_id >= 'member-' AND stream_id < 'member.'
            ORDER BY stream_id, stream_version LIMIT ?`,
      rowsAsArray: true,
    },
    [tenantId, SAMPLE_EVENTS],
  );
  const rows = (result as unknown as unknown[][]).map(
    (row) => [...row.slice(0, 7), Number(row[7]), Number(row[8]), row[9]] as SampleRow,
  );
  if (rows.length === 0) return { foldMicros: 0, streamHashMicros: 0, partitionHashMicros: 0 };
  const startsStream = (index: number) => index === 0 || rows[index - 1]![0] !== rows[index]![0];
  let sink = 0;
  const fold = cpuSeconds(() => {
    let state: MemberState = initialMemberState();
    rows.forEach((row, index) => {
      if (startsStream(index)) state = initialMemberState();
      const event = { type: row[3], data: JSON.parse(row[4]) as unknown } as MemberEvent;
      state = evolveMember(state, event);
      sink += movementsOf(event).length;
    });
  });
  const stream = cpuSeconds(() => {
    rows.forEach((row, index) => {
      const previous = startsStream(index) ? GENESIS_HASH : rows[index - 1]![6];
      const [streamId, streamVersion, eventId, type, dataJson, metadataJson] = row;
      const input = { tenantId, streamId, streamVersion, eventId, type, dataJson, metadataJson };
      if (streamHash(previous, input) === row[6]) sink += 1;
    });
  });
  // The cost does not depend on the hash chained from, so each row chains from its own partition hash.
  const partition = cpuSeconds(() => {
    for (const row of rows) sink += partitionHash(row[9], row[7], row[8], row[6]).length;
  });
  if (sink === 0) throw new Error('audit floor: the sample did no work');
  const micros = (seconds: number) => (seconds * 1e6) / rows.length;
  return {
    foldMicros: micros(fold),
    streamHashMicros: micros(stream),
    partitionHashMicros: micros(partition),
  };
}

export async function measureAuditFloor(pool: Pool, tenantId: string): Promise<AuditFloor> {
  const serverPid = localDatabaseServerPid();
  const serverBefore = serverPid === undefined ? 0 : procCpuSeconds(serverPid);
  const nodeBefore = process.cpuUsage();
  const read = await readRows(pool, tenantId);
  const { events } = read;
  const nodeUsed = process.cpuUsage(nodeBefore);
  const readNodeSeconds = (nodeUsed.user + nodeUsed.system) / 1e6;
  const readDatabaseSeconds = serverPid === undefined ? null : procCpuSeconds(serverPid) - serverBefore;
  const micros = await perEventMicros(pool, tenantId);
  const perEventSeconds = (micros.foldMicros + micros.streamHashMicros + micros.partitionHashMicros) / 1e6;
  const cpuSeconds = readNodeSeconds + (readDatabaseSeconds ?? 0) + perEventSeconds * events;
  return {
    ...read,
    readNodeSeconds,
    readDatabaseSeconds,
    ...micros,
    cpuSecondsPerMillion: (cpuSeconds * 1e6) / Math.max(1, events),
    maxEventsPerSecond: events / (cpuSeconds / os.availableParallelism()),
  };
}
