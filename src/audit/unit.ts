/**
 * An audit unit: one log partition of pass A, one slice of member ids of pass B or one range of local days
 * of pass C (per-store daily totals), run in its own consistent
 * snapshot. Units are independent, so they run in any order, several at once, in this process or in
 * another one (unit-process.ts): a unit's job and its outcome are plain data, and both ways run them through
 * `runUnit`, so what a unit proves does not depend on where it ran.
 */
import type { Pool } from '../db/pool.ts';
import { auditSlice, type MemberSlice } from './member-pass.ts';
import type { EventStore, PartitionHead } from '../eventstore/port.ts';
import type { ExportRecountPart } from './export-recount.ts';
import { auditPartition } from './partition-pass.ts';
import type { AccountSums, PartitionPostings } from './postings.ts';
import { DiscrepancyLog, type Discrepancy, type PartitionReport } from './report.ts';
import { auditStoreDays, type StoreDayRange } from './store-day-pass.ts';

export type AuditUnit =
  | { kind: 'partition'; partition: number }
  | { kind: 'slice'; slice: MemberSlice }
  | { kind: 'store-days'; range: StoreDayRange };

export interface UnitJob {
  tenantId: string;
  unit: AuditUnit;
  /** The number of log partitions of the tenant's event store. */
  partitions: number;
  /** Every partition's checkpoint when the audit started (postings.ts), as [partition, position]. */
  checkpointsAtStart: [partition: number, position: number][];
  /** The last finance export, to recount: the end of its period and the heads it was as of. */
  lastExport: { toAt: string; heads: PartitionHead[] } | null;
  pageRows: number;
  eventPageRows: number;
}

export interface UnitOutcome {
  /** Partition units: the partition's report. */
  partition: PartitionReport | null;
  /** Partition units: pass A's side of the partition's double-entry check. */
  partitionPostings: PartitionPostings | null;
  /** Slice units: postings of the slice's events at or below the starting checkpoints, per partition. */
  postingsBelowStart: [partition: number, sums: AccountSums][];
  /** The last export recounted from the events the unit parsed for it: at most one part per partition. */
  exportRecounts: ExportRecountPart[];
  /** Slice units: members audited. */
  members: number;
  /** Store-day units: local days compared. */
  storeDays: number;
  /** The unit's discrepancies: the first AUDIT_DISCREPANCIES_LISTED_MAX, and how many in all. */
  discrepancies: Discrepancy[];
  discrepancyCount: number;
}

/** Which pass verified `count` more events (for progress; pass C counts no events). */
export type UnitProgress = (pass: 'chain' | 'member', count: number) => void;

/**
 * Runs one unit. `eventStore` null: the events are read from the SQL event store's tables inside the unit's
 * snapshot (and in any process); otherwise through that store's port (EventStoreDB, in this process).
 */
export async function runUnit(
  pool: Pool,
  job: UnitJob,
  onEvents: UnitProgress,
  eventStore: EventStore | null = null,
): Promise<UnitOutcome> {
  const log = new DiscrepancyLog();
  const { tenantId, unit } = job;
  const nothing = {
    partition: null,
    partitionPostings: null,
    postingsBelowStart: [],
    exportRecounts: [],
    members: 0,
    storeDays: 0,
  };
  const checkpointsAtStart = new Map(job.checkpointsAtStart);
  if (unit.kind === 'partition') {
    const head = job.lastExport?.heads.find((h) => h.partition === unit.partition);
    const result = await auditPartition(
      {
        pool,
        tenantId,
        partition: unit.partition,
        exportHead: head === undefined ? null : { position: head.position, lastHash: head.lastHash },
        exportToAt: job.lastExport?.toAt ?? null,
        checkpointAtStart: checkpointsAtStart.get(unit.partition) ?? 0,
        eventStore,
        pageRows: job.pageRows,
        onEvents: (count) => onEvents('chain', count),
      },
      log,
    );
    return {
      ...nothing,
      partition: result.report,
      partitionPostings: result.postings,
      exportRecounts: result.exportRecount === null ? [] : [result.exportRecount],
      discrepancies: log.listed,
      discrepancyCount: log.count,
    };
  }
  if (unit.kind === 'store-days') {
    const result = await auditStoreDays({ pool, tenantId, range: unit.range }, log);
    return { ...nothing, storeDays: result.days, discrepancies: log.listed, discrepancyCount: log.count };
  }
  const result = await auditSlice(
    {
      pool,
      tenantId,
      slice: unit.slice,
      checkpointsAtStart,
      lastExport: job.lastExport,
      eventStore,
      partitions: job.partitions,
      pageRows: job.pageRows,
      eventPageRows: job.eventPageRows,
      onEvents: (count) => onEvents('member', count),
    },
    log,
  );
  return {
    ...nothing,
    postingsBelowStart: result.postingsBelowStart,
    exportRecounts: result.exportRecounts,
    members: result.members,
    discrepancies: log.listed,
    discrepancyCount: log.count,
  };
}
