/**
 * `ledger audit`: proves, for each tenant, that the log is intact and that the read models are exactly
 * what the events say (docs/audit.md). Two passes, each split into independent units run with bounded
 * concurrency, each unit in its own consistent snapshot:
 *   A. per log partition, in position order: partition chains, heads, export heads, checkpoint and
 *      tenant_totals;
 *   B. per slice of member ids, in stream order: stream chains and heads, the domain fold, `available`,
 *      and every read-model row of every member, field by field;
 *   C. per month of local days: store_daily_totals against the ledger entries (which B proves).
 * Plus the tenant's own stream (chain and head). The events' postings and the last export's recount are
 * counted by B below the checkpoints read when the audit starts and by A above them, and compared when
 * every unit is done (postings.ts, tally.ts): each event's data is parsed once.
 * Units run in this process and, for a large log, in child processes too (unit-process.ts): the audit's
 * time is JavaScript, and one process runs its JavaScript on one core.
 * Memory is bounded by the units in flight (two pages per cursor) and the processes, never by the log's size.
 */
import os from 'node:os';
import type { RowDataPacket } from 'mysql2/promise';
import { memberIdOfStream } from '../commands/streams.ts';
import { sqlInt, sqlTimeToIso, type Pool } from '../db/pool.ts';
import type { EventStore, PartitionHead } from '../eventstore/port.ts';
import { StreamChainVerifier } from '../eventstore/verify.ts';
import { parseCarry } from '../export/export-runs.ts';
import type { RecordedExport } from './export-recount.ts';
import { TENANT_TIME_ZONE_DEFAULT } from '../domain/tenant/decider.ts';
import { tenantAsOf } from '../export/period.ts';
import { memberSlices } from './member-pass.ts';
import { chainProblemToDiscrepancy } from './partition-pass.ts';
import { DiscrepancyLog, type AuditReport, type TenantReport } from './report.ts';
import { TenantTally } from './tally.ts';
import { storeDayRanges } from './store-day-pass.ts';
import { runUnit, type UnitJob, type UnitOutcome, type UnitProgress } from './unit.ts';
import { UnitProcess } from './unit-process.ts';

/**
 * Units (partitions or member slices) audited at once per process; each holds one connection and one
 * snapshot. Two per process keep a core busy: while one unit waits for a page, the other folds.
 */
export const AUDIT_CONCURRENCY_DEFAULT = 2;
export const AUDIT_CONCURRENCY_MAX = 32;
/** Processes running units, this one included (by default one per core, see auditProcessesFor). */
export const AUDIT_PROCESSES_MAX = 16;
/**
 * Events per process below which no child process is started: a child takes about a second to load the
 * code, which a log this small does not pay back.
 */
export const AUDIT_EVENTS_PER_PROCESS_MIN = 100_000;
/** Rows per page of the read-model cursors and of pass A (small rows). */
export const AUDIT_PAGE_ROWS = 5_000;
/** Events per page of pass B (whole events, up to a few KiB each). */
export const AUDIT_EVENT_PAGE_ROWS = 2_000;
/** Non-member streams per tenant the audit verifies (the tenant stream, in practice one). */
const OTHER_STREAMS_MAX = 1_000;

export const AUDIT_CHECKS = [
  'partition hash chains verify from position 1 to the head in log_partitions (no event changed, removed, inserted or moved)',
  'stream hash chains verify from version 1 to the head in streams, for every stream',
  'the heads recorded by the last finance export (export_runs) are still in the log with the same hashes',
  "the last finance export's closing and carry (export_carries) equal a recount of the events as of its heads, and no event of its period lies beyond them",
  "each member's events fold with evolveMember (balanceAfter, lots, holds, refunds re-checked) ",
  "available (balance - holds active at the event's time) never went below zero except through a refund's reversal",
  'member_accounts, member_lots, member_holds, ledger_entries and member_category_purchases equal the fold as of the projector checkpoint, field by field',
  "member_tags equal the tenant's tag rules applied to the fold's purchases, in partitions whose projector has applied the current rules",
  'the open lots in the read model add up to the balance when it is not negative',
  'store_daily_totals equal the ledger entries of each store, local day and partition (no row missing or extra)',
  "postings up to each partition's checkpoint equal tenant_totals (points and count, per account)",
  "the tenant's postings sum to zero",
  'projector checkpoints are not beyond the partition heads; lag is reported',
];

export interface AuditOptions {
  /** Audit one tenant; default every tenant with a log. */
  tenantId?: string;
  /** Units in flight per process (default AUDIT_CONCURRENCY_DEFAULT). */
  concurrency?: number;
  /**
   * Processes running units, this one included (default: auditProcessesFor the log's size when
   * databaseUrl is given, else 1).
   */
  processes?: number;
  /**
   * The database child processes open their own pools on (it reaches them over IPC, never argv or the
   * environment). Without it the audit runs in this process only.
   */
  databaseUrl?: string;
  /** Called as events are verified (pass A and B together count each event twice: once per pass). */
  onProgress?: (progress: AuditProgress) => void;
  /** Smaller pages in tests exercise the keyset paging. */
  pageRows?: number;
  eventPageRows?: number;
  /**
   * Where the postings are split between the passes (postings.ts), per partition, instead of the
   * checkpoints read when the audit starts. Without writers any split gives the same result: tests draw
   * them at random to prove it.
   */
  checkpointsAtStart?: ReadonlyMap<number, number>;
}

export interface AuditProgress {
  tenantId: string;
  /** Events verified so far by pass A and by pass B. */
  chainEvents: number;
  memberEvents: number;
  /** Events in the tenant's log when the audit started. */
  totalEvents: number;
}

export class AuditCannotRunError extends Error {
  override name = 'AuditCannotRunError';
}

/** The tenant's last export: what passes A and B recount (export-recount.ts), and what the report names. */
interface LastExport extends RecordedExport {
  from: string;
  to: string;
  exportedAt: string;
}

async function lastExport(pool: Pool, tenantId: string): Promise<LastExport | null> {
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT r.run_id, r.from_date, r.to_date, r.to_at, r.exported_at, r.heads, r.closing_points, c.carry
     FROM export_runs r LEFT JOIN export_carries c ON c.tenant_id = r.tenant_id AND c.run_id = r.run_id
     WHERE r.tenant_id = ? ORDER BY r.exported_at DESC, r.run_id DESC LIMIT 1`,
    [tenantId],
  );
  const row = rows[0];
  if (row === undefined) return null;
  return {
    runId: String(row['run_id']),
    from: String(row['from_date']),
    to: String(row['to_date']),
    toAt: sqlTimeToIso(String(row['to_at'])),
    exportedAt: sqlTimeToIso(String(row['exported_at'])),
    heads: JSON.parse(String(row['heads'])) as PartitionHead[],
    closingPoints: sqlInt(row['closing_points']),
    carry: row['carry'] === null ? null : parseCarry(String(row['carry'])),
  };
}

/** One process per core, but none beyond one per AUDIT_EVENTS_PER_PROCESS_MIN events. */
export function auditProcessesFor(events: number): number {
  const cores = os.availableParallelism();
  return Math.max(1, Math.min(cores, AUDIT_PROCESSES_MAX, Math.floor(events / AUDIT_EVENTS_PER_PROCESS_MIN)));
}

/** Runs units: this process itself, or a child process. */
interface UnitRunner {
  run(job: UnitJob, onEvents: UnitProgress): Promise<UnitOutcome>;
}

export async function runAudit(
  pool: Pool,
  store: EventStore,
  options: AuditOptions = {},
): Promise<AuditReport> {
  const started = Date.now();
  const concurrency = options.concurrency ?? AUDIT_CONCURRENCY_DEFAULT;
  if (!Number.isSafeInteger(concurrency) || concurrency < 1 || concurrency > AUDIT_CONCURRENCY_MAX) {
    throw new AuditCannotRunError(`concurrency must be 1..${AUDIT_CONCURRENCY_MAX}`);
  }
  if (
    options.processes !== undefined &&
    (!Number.isSafeInteger(options.processes) ||
      options.processes < 1 ||
      options.processes > AUDIT_PROCESSES_MAX)
  ) {
    throw new AuditCannotRunError(`processes must be 1..${AUDIT_PROCESSES_MAX}`);
  }
  // The SQL store's tables are read by any process inside each unit's snapshot; EventStoreDB is read through
  // this process's connection to it (child processes open only the SQL database).
  const viaPort = store.kind === 'sql' ? null : store;
  if (viaPort !== null && (options.processes ?? 1) > 1) {
    throw new AuditCannotRunError('with LEDGER_EVENT_STORE=esdb the audit runs in one process');
  }
  const tenants = await store.listTenants();
  if (options.tenantId !== undefined && !tenants.includes(options.tenantId)) {
    throw new AuditCannotRunError(`tenant ${options.tenantId} has no event log`);
  }
  const audited = options.tenantId === undefined ? tenants : [options.tenantId];
  let events = 0;
  for (const tenantId of audited) {
    for (const head of await store.partitionHeads(tenantId)) events += head.position;
  }
  const databaseUrl = options.databaseUrl;
  const processes =
    options.processes ?? (databaseUrl === undefined || viaPort !== null ? 1 : auditProcessesFor(events));
  if (processes > 1 && databaseUrl === undefined) {
    throw new AuditCannotRunError('more than one audit process needs the database URL (databaseUrl)');
  }

  // This process runs units too; the others are children, each with a pool of its own.
  const children =
    databaseUrl === undefined
      ? []
      : Array.from({ length: processes - 1 }, () => new UnitProcess(databaseUrl, concurrency));
  const runners: UnitRunner[] = [
    { run: (job, onEvents) => runUnit(pool, job, onEvents, viaPort) },
    ...children,
  ];
  // Slot k of each runner before slot k+1 of any: the first units spread over every process.
  const slots: UnitRunner[] = [];
  for (let slot = 0; slot < concurrency; slot++) slots.push(...runners);
  let failed = false;
  const reports: TenantReport[] = [];
  try {
    for (const tenantId of audited) {
      reports.push(await auditTenant(pool, store, tenantId, slots, options));
    }
  } catch (error) {
    failed = true;
    throw error;
  } finally {
    await Promise.all(children.map((child) => child.close({ now: failed })));
  }
  const finished = Date.now();
  const eventsVerified = reports.reduce((sum, t) => sum + t.events, 0);
  const discrepancyCount = reports.reduce((sum, t) => sum + t.discrepancyCount, 0);
  return {
    startedAt: new Date(started).toISOString(),
    finishedAt: new Date(finished).toISOString(),
    durationMs: finished - started,
    eventsPerSecond: eventsVerified / Math.max(0.001, (finished - started) / 1000),
    tenants: reports,
    events: eventsVerified,
    members: reports.reduce((sum, t) => sum + t.members, 0),
    discrepancyCount,
    totalLag: reports.reduce((sum, t) => sum + t.partitions.reduce((s, p) => s + p.lag, 0), 0),
    processes,
    clean: discrepancyCount === 0,
    checks: AUDIT_CHECKS,
  };
}

async function auditTenant(
  pool: Pool,
  store: EventStore,
  tenantId: string,
  slots: readonly UnitRunner[],
  options: AuditOptions,
): Promise<TenantReport> {
  const log = new DiscrepancyLog();
  const exported = await lastExport(pool, tenantId);
  const heads = await store.partitionHeads(tenantId);
  const progress: AuditProgress = {
    tenantId,
    chainEvents: 0,
    memberEvents: 0,
    totalEvents: heads.reduce((sum, h) => sum + h.position, 0),
  };
  const onEvents: UnitProgress = (pass, count) => {
    if (pass === 'chain') progress.chainEvents += count;
    else progress.memberEvents += count;
    options.onProgress?.(progress);
  };

  const tally = new TenantTally(tenantId, log);
  const checkpointsAtStart =
    options.checkpointsAtStart === undefined
      ? await checkpointsOf(pool, tenantId)
      : [...options.checkpointsAtStart];
  const jobs: UnitJob[] = [];
  const job = (unit: UnitJob['unit']): UnitJob => ({
    tenantId,
    unit,
    partitions: store.partitions,
    checkpointsAtStart,
    lastExport: exported === null ? null : { toAt: exported.toAt, heads: exported.heads },
    pageRows: options.pageRows ?? AUDIT_PAGE_ROWS,
    eventPageRows: options.eventPageRows ?? AUDIT_EVENT_PAGE_ROWS,
  });
  // Interleave the passes so both kinds of work (light chain pages, heavy member folds) overlap.
  const slices = memberSlices();
  for (let index = 0; index < Math.max(store.partitions, slices.length); index++) {
    if (index < store.partitions) jobs.push(job({ kind: 'partition', partition: index }));
    const slice = slices[index];
    if (slice !== undefined) jobs.push(job({ kind: 'slice', slice }));
  }
  // The projector's zone for store days: the tenant's, or the default when its stream has no TenantCreated
  // (which the tenant stream's own audit reports).
  const timeZone = (await tenantAsOf(store, tenantId, null))?.timeZone ?? TENANT_TIME_ZONE_DEFAULT;
  for (const range of await storeDayRanges(pool, tenantId, timeZone))
    jobs.push(job({ kind: 'store-days', range }));
  let next = 0;
  let failure: { error: unknown } | null = null;
  await Promise.all(
    slots.map(async (runner) => {
      // After a failure no new unit starts: the audit reports the failure, not a partial result.
      while (failure === null && next < jobs.length) {
        const unitJob = jobs[next++]!;
        try {
          tally.add(await runner.run(unitJob, onEvents));
        } catch (error) {
          failure ??= { error };
        }
      }
    }),
  );
  if (failure !== null) throw (failure as { error: unknown }).error;
  await auditOtherStreams(pool, store, tenantId, log);
  const { partitions: partitionReports, postings } = tally.finish(exported);
  return {
    tenantId,
    events: partitionReports.reduce((total, p) => total + p.eventsVerified, 0),
    members: tally.members,
    storeDays: tally.storeDays,
    partitions: partitionReports,
    postings: Object.fromEntries([...postings.entries()].sort(([a], [b]) => (a < b ? -1 : 1))),
    lastExport:
      exported === null
        ? null
        : { runId: exported.runId, from: exported.from, to: exported.to, exportedAt: exported.exportedAt },
    discrepancies: log.listed,
    discrepancyCount: log.count,
  };
}

/**
 * The tenant's checkpoints, read before any unit's snapshot: every event at or below them had committed
 * (postings.ts).
 */
async function checkpointsOf(pool: Pool, tenantId: string): Promise<[number, number][]> {
  const [rows] = await pool.query<RowDataPacket[]>(
    'SELECT partition_no, position FROM projection_checkpoints WHERE tenant_id = ?',
    [tenantId],
  );
  return rows.map((row) => [sqlInt(row['partition_no']), sqlInt(row['position'])]);
}

/** Streams that are not members' (the tenant's own stream): chain and head, through the port. */
async function auditOtherStreams(
  pool: Pool,
  store: EventStore,
  tenantId: string,
  log: DiscrepancyLog,
): Promise<void> {
  const [rows] = await pool.query<RowDataPacket[]>(
    `(SELECT stream_id FROM streams WHERE tenant_id = ? AND stream_id < 'member-' ORDER BY stream_id LIMIT ?)
     UNION ALL (SELECT stream_id FROM streams WHERE tenant_id = ? AND stream_id >= 'member.' ORDER BY stream_id LIMIT ?)`,
    [tenantId, OTHER_STREAMS_MAX, tenantId, OTHER_STREAMS_MAX],
  );
  for (const row of rows) {
    const streamId = String(row['stream_id']);
    if (memberIdOfStream(streamId) !== null) continue;
    const verifier = new StreamChainVerifier(tenantId, streamId);
    let version = 0;
    for (;;) {
      const page = await store.readStream(tenantId, streamId, { fromVersion: version + 1 });
      for (const event of page) verifier.add(event);
      if (page.length === 0) break;
      version = page[page.length - 1]!.streamVersion;
    }
    const head = await store.streamHead(tenantId, streamId);
    for (const problem of verifier.finish(
      head === null ? undefined : { version: head.version, lastHash: head.lastHash },
    )) {
      log.add(chainProblemToDiscrepancy(problem));
    }
  }
}
