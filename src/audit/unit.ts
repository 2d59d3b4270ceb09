/**
 * An audit unit: one log partition of pass A, one slice of member ids of pass B or one range of local days
 * of pass C (per-store daily totals), run in its own consistent
 * snapshot. Units are independent, so they run in any order, several at once, in this process or in
 * another one (unit-process.ts): a unit's job and its outcome are plain data, and both ways run them through
 * `runUnit`, so what a unit proves does not depend on where it ran.
 */
import type { Pool } from '../db/pool.ts';
import { auditSlice, type MemberSlice } from './member-pass.ts';
import type { ExportRecountPart } from './export-recount.ts';
import { auditPartition } from './partition-pass.ts';
import { DiscrepancyLog, type Discrepancy, type PartitionReport } from './report.ts';
import { auditStoreDays, type StoreDayRange } from './store-day-pass.ts';

export type AuditUnit =
  | { kind: 'partition'; partition: number }
  | { kind: 'slice'; slice: MemberSlice }
  | { kind: 'store-days'; range: StoreDayRange };

export interface UnitJob {
  tenantId: string;
  unit: AuditUnit;
  /** What the last export recorded for this partition (partition units only). */
  exportHead: { position: number; lastHash: string } | null;
  /** The end of the last export's period, to recount its closing and carry (partition units only). */
  exportToAt: string | null;
  pageRows: number;
  eventPageRows: number;
}

export interface UnitOutcome {
  /** Partition units: the partition's report and its postings per account over every event. */
  partition: PartitionReport | null;
  postings: [account: string, points: number][];
  /** Partition units: the partition's share of the last export, recounted. */
  exportRecount: ExportRecountPart | null;
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

export async function runUnit(pool: Pool, job: UnitJob, onEvents: UnitProgress): Promise<UnitOutcome> {
  const log = new DiscrepancyLog();
  const { tenantId, unit } = job;
  if (unit.kind === 'partition') {
    const result = await auditPartition(
      {
        pool,
        tenantId,
        partition: unit.partition,
        exportHead: job.exportHead,
        exportToAt: job.exportToAt,
        pageRows: job.pageRows,
        onEvents: (count) => onEvents('chain', count),
      },
      log,
    );
    return {
      partition: result.report,
      postings: [...result.postings],
      exportRecount: result.exportRecount,
      members: 0,
      storeDays: 0,
      discrepancies: log.listed,
      discrepancyCount: log.count,
    };
  }
  if (unit.kind === 'store-days') {
    const result = await auditStoreDays({ pool, tenantId, range: unit.range }, log);
    return {
      partition: null,
      postings: [],
      exportRecount: null,
      members: 0,
      storeDays: result.days,
      discrepancies: log.listed,
      discrepancyCount: log.count,
    };
  }
  const result = await auditSlice(
    {
      pool,
      tenantId,
      slice: unit.slice,
      pageRows: job.pageRows,
      eventPageRows: job.eventPageRows,
      onEvents: (count) => onEvents('member', count),
    },
    log,
  );
  return {
    partition: null,
    postings: [],
    exportRecount: null,
    members: result.members,
    storeDays: 0,
    discrepancies: log.listed,
    discrepancyCount: log.count,
  };
}
