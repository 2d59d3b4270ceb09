/**
 * What `ledger audit` reports (docs/audit.md explains how to read it). A discrepancy always says where:
 * tenant, and the stream and version, or the partition and position, or the member and the field.
 */

export type DiscrepancyKind =
  /** A hash chain does not verify: an event was changed, removed, inserted or moved. */
  | 'chain'
  /** A recorded head (streams, log_partitions, read model, last export) does not match the log. */
  | 'head'
  /** The domain's fold (evolveMember) refused the member's events: they break a rule. */
  | 'replay'
  /** `available` went below zero through something other than a refund's reversal. */
  | 'available'
  /** A read-model row differs from the fresh replay of the events. */
  | 'read-model'
  /** Postings do not sum to zero, or differ from tenant_totals. */
  | 'postings'
  /** A projector checkpoint is beyond the head of its partition (the log lost a tail it had seen). */
  | 'checkpoint'
  /** The last finance export's closing or carry differs from the events as of its heads (export-recount.ts). */
  | 'export';

export interface Discrepancy {
  kind: DiscrepancyKind;
  tenantId: string;
  streamId?: string;
  memberId?: string;
  streamVersion?: number;
  partition?: number;
  position?: number;
  /** The read-model table, for 'read-model'. */
  table?: string;
  /** The field that differs (e.g. 'balance', 'lot L remaining'). */
  field?: string;
  expected?: string | number | null;
  actual?: string | number | null;
  detail: string;
}

export interface PartitionReport {
  partition: number;
  /** The last position in the log (log_partitions head, as read in this partition's snapshot). */
  head: number;
  /** The projector's checkpoint in the same snapshot; lag = head - checkpoint. */
  checkpoint: number;
  lag: number;
  eventsVerified: number;
  /** The position the last export recorded for this partition, if any. */
  lastExportHead: number | null;
}

export interface TenantReport {
  tenantId: string;
  events: number;
  members: number;
  /** Local days whose per-store totals were compared with the ledger entries. */
  storeDays: number;
  partitions: PartitionReport[];
  /** Sum of all postings per account over the tenant's events (they sum to zero). */
  postings: Record<string, number>;
  /** The last export whose heads, closing and carry were checked, if any. */
  lastExport: { runId: string; from: string; to: string; exportedAt: string } | null;
  discrepancies: Discrepancy[];
  /** All discrepancies found; the list above keeps the first AUDIT_DISCREPANCIES_LISTED_MAX. */
  discrepancyCount: number;
}

export interface AuditReport {
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  /** Events verified per second of wall time. */
  eventsPerSecond: number;
  tenants: TenantReport[];
  events: number;
  members: number;
  discrepancyCount: number;
  totalLag: number;
  /** Processes the units ran in (this one included). */
  processes: number;
  clean: boolean;
  /** What each pass proves, for the reader of a JSON report without the docs at hand. */
  checks: string[];
}

/** Discrepancies kept per tenant in the report (the count is always complete): bounds memory on a wrecked log. */
export const AUDIT_DISCREPANCIES_LISTED_MAX = 1_000;

/** Collects a tenant's discrepancies, keeping the first AUDIT_DISCREPANCIES_LISTED_MAX. */
export class DiscrepancyLog {
  readonly listed: Discrepancy[] = [];
  count = 0;
  add(discrepancy: Discrepancy): void {
    this.count += 1;
    if (this.listed.length < AUDIT_DISCREPANCIES_LISTED_MAX) this.listed.push(discrepancy);
  }

  /** Takes in what a unit found: its listed discrepancies, and the count of those it did not list. */
  merge(listed: readonly Discrepancy[], count: number): void {
    for (const discrepancy of listed) this.add(discrepancy);
    this.count += count - listed.length;
  }
}

function where(d: Discrepancy): string {
  const parts: string[] = [];
  if (d.memberId !== undefined) parts.push(`member ${d.memberId}`);
  else if (d.streamId !== undefined) parts.push(`stream ${d.streamId}`);
  if (d.streamVersion !== undefined) parts.push(`version ${d.streamVersion}`);
  if (d.partition !== undefined) parts.push(`partition ${d.partition}`);
  if (d.position !== undefined) parts.push(`position ${d.position}`);
  if (d.table !== undefined) parts.push(d.table);
  if (d.field !== undefined) parts.push(`field ${d.field}`);
  return parts.join(', ');
}

export function formatDiscrepancy(d: Discrepancy): string {
  const values =
    d.expected !== undefined || d.actual !== undefined
      ? ` (events say ${String(d.expected)}, found ${String(d.actual)})`
      : '';
  return `${d.kind}: ${where(d)}: ${d.detail}${values}`;
}

/** Human summary printed on stdout. */
export function formatAuditSummary(report: AuditReport): string {
  const lines: string[] = [];
  lines.push(
    `audit ${report.clean ? 'CLEAN' : 'FOUND DISCREPANCIES'}: ${report.events} events, ${report.members} members, ` +
      `${report.tenants.length} tenant(s) in ${(report.durationMs / 1000).toFixed(1)} s (${Math.round(report.eventsPerSecond)} events/s, ` +
      `${report.processes} process${report.processes === 1 ? '' : 'es'})`,
  );
  for (const tenant of report.tenants) {
    lines.push('');
    lines.push(
      `tenant ${tenant.tenantId}: ${tenant.events} events, ${tenant.members} members, ${tenant.discrepancyCount} discrepancies`,
    );
    const lagging = tenant.partitions.filter((p) => p.lag > 0);
    const lag = tenant.partitions.reduce((sum, p) => sum + p.lag, 0);
    lines.push(
      `  projector: ${lagging.length === 0 ? 'every checkpoint is at its partition head' : `${lag} events behind in ${lagging.length} partition(s)`}` +
        ' (read models were compared at their own checkpoints)',
    );
    for (const p of tenant.partitions) {
      if (p.lag > 0 || p.checkpoint > p.head)
        lines.push(`    partition ${p.partition}: head ${p.head}, checkpoint ${p.checkpoint}, lag ${p.lag}`);
    }
    lines.push(
      tenant.lastExport === null
        ? '  exports: none recorded'
        : `  last export ${tenant.lastExport.runId} [${tenant.lastExport.from}, ${tenant.lastExport.to}): its heads, closing and carry were checked against the log`,
    );
    lines.push(`  store days: ${tenant.storeDays} compared with the ledger entries`);
    const postings = Object.entries(tenant.postings)
      .map(([account, points]) => `${account} ${points}`)
      .join(', ');
    lines.push(`  postings: ${postings === '' ? 'none' : postings}`);
    for (const d of tenant.discrepancies) lines.push(`  - ${formatDiscrepancy(d)}`);
    if (tenant.discrepancyCount > tenant.discrepancies.length) {
      lines.push(`  ... and ${tenant.discrepancyCount - tenant.discrepancies.length} more (see --json)`);
    }
  }
  return `${lines.join('\n')}\n`;
}
