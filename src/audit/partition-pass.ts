/**
 * Pass A, one log partition in position order, inside one consistent snapshot:
 * - the partition hash chain (PartitionChainVerifier): every position 1..head present once, each hash
 *   following from its predecessor, the chain ending at the head recorded in log_partitions;
 * - the head the last finance export recorded for this partition is still in the log, with the same hash
 *   (a tail cut after an export saw it is caught even if log_partitions and streams were rewritten);
 * - the checkpoint is not beyond the head;
 * - double entry, with pass B (postings.ts): the checkpoint and tenant_totals as this snapshot has them, and
 *   the postings of the events above the audit's starting checkpoint (pass B adds up those below);
 * - the last export's closing and carry, recounted from the same events above it (export-recount.ts).
 * It reads only the columns the chain needs, plus `data` for the events that post above the starting
 * checkpoint (on a quiet system none: pass B parses the rest), as arrays (rowsAsArray: no object per row).
 * Memory: one page.
 */
import type { RowDataPacket } from 'mysql2/promise';
import { memberIdOfStream } from '../commands/streams.ts';
import { sqlInt, type Pool, type PoolConnection } from '../db/pool.ts';
import { POSTING_EVENT_TYPES_SQL, type MemberEvent } from '../domain/member/index.ts';
import { GENESIS_HASH } from '../eventstore/hash.ts';
import type { EventStore } from '../eventstore/port.ts';
import { PartitionChainVerifier, scratchEvent, type ChainProblem } from '../eventstore/verify.ts';
import { ExportRecount, type ExportRecountPart } from './export-recount.ts';
import { POSTING_TYPES, PostingSums, type PartitionPostings } from './postings.ts';
import type { DiscrepancyLog, PartitionReport } from './report.ts';
import { withSnapshot } from './snapshot.ts';

export interface PartitionPassInput {
  pool: Pool;
  tenantId: string;
  partition: number;
  /** What the last export recorded for this partition. */
  exportHead: { position: number; lastHash: string } | null;
  /** The end of the last export's period, when there is one to recount. */
  exportToAt: string | null;
  /** The partition's checkpoint when the audit started: pass B counts the events at or below it. */
  checkpointAtStart: number;
  /**
   * null: the SQL event store, read inside the unit's snapshot (with the partition hash chain). Otherwise
   * the store whose log is read through the port (EventStoreDB: no partition chain; positions in order).
   */
  eventStore: EventStore | null;
  pageRows: number;
  onEvents?: (count: number) => void;
}

export interface PartitionPassResult {
  report: PartitionReport;
  /** This pass's side of the double-entry check (postings.ts). */
  postings: PartitionPostings;
  /** The last export recounted from the events above the starting checkpoint (null without an export). */
  exportRecount: ExportRecountPart | null;
}

/**
 * What pass A reads of every event for the partition chain, in the order of its rows (bench:audit's floor
 * reads the same: scripts/lib/audit-floor.ts).
 */
export const CHAIN_COLUMNS = 'position, stream_id, stream_version, stream_hash, partition_hash, event_type';

export function chainProblemToDiscrepancy(problem: ChainProblem): Parameters<DiscrepancyLog['add']>[0] {
  const memberId = problem.streamId === undefined ? null : memberIdOfStream(problem.streamId);
  return {
    kind: problem.kind === 'head-mismatch' ? 'head' : 'chain',
    tenantId: problem.tenantId,
    ...(problem.streamId === undefined ? {} : { streamId: problem.streamId }),
    ...(memberId === null ? {} : { memberId }),
    ...(problem.streamVersion === undefined ? {} : { streamVersion: problem.streamVersion }),
    ...(problem.partition === undefined ? {} : { partition: problem.partition }),
    ...(problem.position === undefined ? {} : { position: problem.position }),
    detail: `${problem.kind}: ${problem.detail}`,
  };
}

async function one(
  connection: PoolConnection,
  sql: string,
  params: unknown[],
): Promise<RowDataPacket | undefined> {
  const [rows] = await connection.query<RowDataPacket[]>(sql, params);
  return rows[0];
}

async function sqlHead(
  connection: PoolConnection,
  tenantId: string,
  partition: number,
): Promise<{ position: number; lastHash: string } | null> {
  const row = await one(
    connection,
    'SELECT next_position, last_hash FROM log_partitions WHERE tenant_id = ? AND partition_no = ?',
    [tenantId, partition],
  );
  return row === undefined
    ? null
    : { position: sqlInt(row['next_position']) - 1, lastHash: String(row['last_hash']) };
}

async function portHead(
  store: EventStore,
  tenantId: string,
  partition: number,
): Promise<{ position: number; lastHash: string } | null> {
  return (await store.partitionHeads(tenantId)).find((h) => h.partition === partition) ?? null;
}

export async function auditPartition(
  input: PartitionPassInput,
  log: DiscrepancyLog,
): Promise<PartitionPassResult> {
  const { tenantId, partition } = input;
  const eventStore = input.eventStore;
  return withSnapshot(input.pool, async (connection) => {
    const checkpointRow = await one(
      connection,
      'SELECT position FROM projection_checkpoints WHERE tenant_id = ? AND partition_no = ?',
      [tenantId, partition],
    );
    const checkpoint = checkpointRow === undefined ? 0 : sqlInt(checkpointRow['position']);
    const [totalRows] = await connection.query<RowDataPacket[]>(
      'SELECT account, points, postings FROM tenant_totals WHERE tenant_id = ? AND partition_no = ?',
      [tenantId, partition],
    );

    // The head: in this snapshot (SQL), or read through the port after the checkpoint (EventStoreDB), so it is
    // at or beyond every event the checkpoint covers; events appended after it are left to the next audit.
    const head =
      eventStore === null
        ? await sqlHead(connection, tenantId, partition)
        : await portHead(eventStore, tenantId, partition);
    const verifier = eventStore === null ? new PartitionChainVerifier(tenantId, partition) : null;
    let lastPosition = 0;
    const atStart = input.checkpointAtStart;
    const aboveStart = new PostingSums();
    const toCheckpoint = new PostingSums();
    // Events above this are parsed: those above the starting checkpoint, and those above a checkpoint that
    // went back since (a rebuild), whose postings come off pass B's sums.
    const parsedAbove = Math.min(atStart, checkpoint);
    let after = 0;
    let verified = 0;
    // Position 0 is the empty log: its hash is the genesis hash (EventStoreDB's heads carry no hash),
    // present by definition.
    let exportHashSeen: string | null =
      input.exportHead?.position === 0
        ? eventStore === null
          ? GENESIS_HASH
          : input.exportHead.lastHash
        : null;
    // One scratch event for the whole partition (scratchEvent); the content fields stay empty: this pass
    // does not read them, pass B verifies content through the stream chains.
    const link = scratchEvent(tenantId, partition);
    const recount =
      input.exportToAt === null
        ? null
        : new ExportRecount(partition, input.exportToAt, input.exportHead?.position ?? 0);
    /** A page of the log after `after`: [position, stream, version, stream hash, partition hash, type, data or null]. */
    const readPage = async (): Promise<{ rows: unknown[][]; more: boolean }> => {
      if (eventStore === null) {
        const [page] = await connection.query<RowDataPacket[]>(
          {
            sql: `SELECT ${CHAIN_COLUMNS},
                    IF(position > ? AND event_type IN (${POSTING_EVENT_TYPES_SQL}), data, NULL)
                  FROM events WHERE tenant_id = ? AND partition_no = ? AND position > ? ORDER BY position LIMIT ?`,
            rowsAsArray: true,
          },
          [parsedAbove, tenantId, partition, after, input.pageRows],
        );
        const rows = page as unknown as unknown[][];
        return { rows, more: rows.length === input.pageRows };
      }
      const events = await eventStore.readLog(tenantId, partition, after, input.pageRows);
      const upToHead = events.filter((event) => event.position <= (head?.position ?? 0));
      return {
        rows: upToHead.map((event) => [
          event.position,
          event.streamId,
          event.streamVersion,
          event.streamHash,
          event.partitionHash,
          event.type,
          event.position > parsedAbove && POSTING_TYPES.has(event.type) ? event.dataJson : null,
        ]),
        more: events.length === input.pageRows && upToHead.length === events.length,
      };
    };
    for (;;) {
      const { rows, more } = await readPage();
      for (const row of rows) {
        link.position = sqlInt(row[0]);
        link.streamId = String(row[1]);
        link.streamVersion = sqlInt(row[2]);
        link.streamHash = String(row[3]);
        link.partitionHash = String(row[4]);
        if (verifier !== null) verifier.add(link);
        else {
          // No partition chain to verify (EventStoreDB): the log must still come in position order.
          if (link.position <= lastPosition)
            log.add({
              kind: 'chain',
              tenantId,
              streamId: link.streamId,
              streamVersion: link.streamVersion,
              partition,
              position: link.position,
              detail: `the log returned position ${link.position} after ${lastPosition}`,
            });
          lastPosition = link.position;
        }
        if (input.exportHead !== null && link.position === input.exportHead.position)
          exportHashSeen = link.partitionHash;
        const data = row[6];
        let recounted = false;
        if (data !== null && data !== undefined && memberIdOfStream(link.streamId) !== null) {
          const position = link.position;
          try {
            const event = { type: String(row[5]), data: JSON.parse(String(data)) as unknown } as MemberEvent;
            if (position > atStart) {
              aboveStart.addEvent(event);
              if (position <= checkpoint) toCheckpoint.addEvent(event);
              recount?.add(position, event);
              recounted = true;
            } else if (position > checkpoint) toCheckpoint.addEvent(event, -1);
          } catch (error) {
            // At or below the starting checkpoint pass B reports it.
            if (position > atStart)
              log.add({
                kind: 'postings',
                tenantId,
                streamId: link.streamId,
                streamVersion: link.streamVersion,
                partition,
                position,
                detail: `the event's postings cannot be computed: ${error instanceof Error ? error.message : String(error)}`,
              });
          }
        }
        if (!recounted) recount?.add(link.position, null);
      }
      verified += rows.length;
      input.onEvents?.(rows.length);
      if (!more) break;
      after = sqlInt(rows[rows.length - 1]![0]);
    }
    for (const problem of verifier?.finish(head ?? undefined) ?? [])
      log.add(chainProblemToDiscrepancy(problem));

    const headPosition = head?.position ?? 0;
    if (checkpoint > headPosition) {
      log.add({
        kind: 'checkpoint',
        tenantId,
        partition,
        position: checkpoint,
        expected: headPosition,
        actual: checkpoint,
        detail: `the projector applied events up to position ${checkpoint}, but the log ends at ${headPosition}: a tail was removed`,
      });
    }
    if (input.exportHead !== null && exportHashSeen !== input.exportHead.lastHash) {
      log.add({
        kind: 'head',
        tenantId,
        partition,
        position: input.exportHead.position,
        expected: input.exportHead.lastHash,
        actual: exportHashSeen,
        detail:
          exportHashSeen === null
            ? `the last export saw position ${input.exportHead.position}, which is no longer in the log (tail truncated)`
            : `the event at position ${input.exportHead.position} is not the one the last export saw`,
      });
    }

    return {
      report: {
        partition,
        head: headPosition,
        checkpoint,
        lag: Math.max(0, headPosition - checkpoint),
        eventsVerified: verified,
        lastExportHead: input.exportHead?.position ?? null,
      },
      postings: {
        partition,
        checkpoint,
        recorded: totalRows.map((row) => [
          String(row['account']),
          sqlInt(row['points']),
          sqlInt(row['postings']),
        ]),
        toCheckpoint: toCheckpoint.toData(),
        aboveStart: aboveStart.toData(),
      },
      exportRecount: recount?.part() ?? null,
    };
  });
}
