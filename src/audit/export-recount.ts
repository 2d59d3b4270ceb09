/**
 * The last finance export, recounted from the events by passes A and B. An export records its closing (the next
 * period's opening must equal it) and a carry for the next period's independent pass (export/event-pass.ts):
 * the event-derived closing, the breakage inputs, the credits of lots still to expire, and per partition
 * the head it counted to and the position from which the next export reads. The export built its carry on
 * from the carry before it; this recount reads every event from the log's first, so a carry or a closing
 * changed in the database, or an event of the exported period that reached the log after the export, is
 * found here and not first by the next month's export.
 *
 * The events are split as the postings are (postings.ts): pass B recounts, per partition, the events of its
 * slice at or below the audit's starting checkpoint, since it parses them anyway, and pass A the events
 * above it. Each keeps an ExportRecount per partition (plain data out, so it crosses to a child process);
 * the tenant merges the parts of each partition (mergeRecountParts), adds them up and compares
 * (compareExportRecount). What is counted is what the
 * export's pass counts: every member event that moves points or credits a lot, recorded before the
 * period's end, at or below the export's head of its partition.
 */
import { addPoints } from '../domain/points.ts';
import { movementsOf, type MemberEvent } from '../domain/member/index.ts';
import { creditedLots, type EventPassCarry } from '../export/event-pass.ts';
import type { PartitionHead } from '../eventstore/port.ts';
import type { DiscrepancyLog } from './report.ts';

/** Late events listed per partition (all are counted). */
const LATE_EVENTS_LISTED_MAX = 10;

/** One partition's share of the last export, as the events say. */
export interface ExportRecountPart {
  partition: number;
  closing: number;
  expiredPoints: number;
  maturedCreditedPoints: number;
  /** Points credited to lots expiring after the period's end, by expiry instant (ascending). */
  pendingCredits: [string, number][];
  /** The first moving member event recorded at or after the period's end, if any. */
  firstOfLaterPeriod: number | null;
  /** The last position the pass read. */
  lastPosition: number;
  /** Moving member events recorded before the period's end but beyond the export's head: the first few, and how many. */
  lateEvents: number[];
  lateCount: number;
}

/** The last export, as export_runs and export_carries hold it. */
export interface RecordedExport {
  runId: string;
  toAt: string;
  closingPoints: number;
  heads: PartitionHead[];
  carry: EventPassCarry | { unusable: string } | null;
}

export class ExportRecount {
  private closing = 0;
  private expiredPoints = 0;
  private maturedCreditedPoints = 0;
  private readonly pending = new Map<string, number>();
  private firstOfLaterPeriod: number | null = null;
  private lastPosition = 0;
  private readonly lateEvents: number[] = [];
  private lateCount = 0;

  constructor(
    private readonly partition: number,
    private readonly toAt: string,
    /** The export's head of this partition (0 if it had none). */
    private readonly head: number,
  ) {}

  /**
   * An event of the partition: its position, and the member event if it moves points. In any order, and
   * split between recounts in any way (mergeRecountParts adds their parts up).
   */
  add(position: number, event: MemberEvent | null): void {
    if (position > this.lastPosition) this.lastPosition = position;
    if (event === null) return;
    if (event.data.at >= this.toAt) {
      if (this.firstOfLaterPeriod === null || position < this.firstOfLaterPeriod)
        this.firstOfLaterPeriod = position;
      return;
    }
    if (position > this.head) {
      this.lateCount += 1;
      listLate(this.lateEvents, [position]);
      return;
    }
    for (const movement of movementsOf(event)) this.closing = addPoints(this.closing, movement.points);
    for (const { lot, debtRepaid } of creditedLots(event)) {
      const credited = lot.points - debtRepaid;
      if (lot.expiresAt <= this.toAt)
        this.maturedCreditedPoints = addPoints(this.maturedCreditedPoints, credited);
      else this.pending.set(lot.expiresAt, addPoints(this.pending.get(lot.expiresAt) ?? 0, credited));
    }
    if (event.type === 'LotsExpired') this.expiredPoints = addPoints(this.expiredPoints, event.data.points);
  }

  part(): ExportRecountPart {
    return {
      partition: this.partition,
      closing: this.closing,
      expiredPoints: this.expiredPoints,
      maturedCreditedPoints: this.maturedCreditedPoints,
      pendingCredits: [...this.pending],
      firstOfLaterPeriod: this.firstOfLaterPeriod,
      lastPosition: this.lastPosition,
      lateEvents: this.lateEvents,
      lateCount: this.lateCount,
    };
  }
}

/** Keeps the LATE_EVENTS_LISTED_MAX lowest positions of `listed` and `more` in `listed`, ascending. */
function listLate(listed: number[], more: readonly number[]): void {
  listed.push(...more);
  listed.sort((a, b) => a - b);
  listed.length = Math.min(listed.length, LATE_EVENTS_LISTED_MAX);
}

/** One part per partition: the parts of recounts that each saw some of a partition's events, added up. */
export function mergeRecountParts(parts: readonly ExportRecountPart[]): ExportRecountPart[] {
  const merged = new Map<number, ExportRecountPart>();
  for (const part of parts) {
    const into = merged.get(part.partition);
    if (into === undefined) {
      merged.set(part.partition, {
        ...part,
        pendingCredits: [...part.pendingCredits],
        lateEvents: [...part.lateEvents],
      });
      continue;
    }
    into.closing = addPoints(into.closing, part.closing);
    into.expiredPoints = addPoints(into.expiredPoints, part.expiredPoints);
    into.maturedCreditedPoints = addPoints(into.maturedCreditedPoints, part.maturedCreditedPoints);
    const pending = new Map(into.pendingCredits);
    for (const [expiresAt, points] of part.pendingCredits)
      pending.set(expiresAt, addPoints(pending.get(expiresAt) ?? 0, points));
    into.pendingCredits = [...pending].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    if (
      part.firstOfLaterPeriod !== null &&
      (into.firstOfLaterPeriod === null || part.firstOfLaterPeriod < into.firstOfLaterPeriod)
    )
      into.firstOfLaterPeriod = part.firstOfLaterPeriod;
    into.lastPosition = Math.max(into.lastPosition, part.lastPosition);
    listLate(into.lateEvents, part.lateEvents);
    into.lateCount += part.lateCount;
  }
  return [...merged.values()].sort((a, b) => a.partition - b.partition);
}

/** Adds the partitions' parts up and reports where the recorded export differs from the events. */
export function compareExportRecount(
  tenantId: string,
  recorded: RecordedExport,
  parts: readonly ExportRecountPart[],
  log: DiscrepancyLog,
): void {
  const fail = (
    field: string,
    expected: string | number | null,
    actual: string | number | null,
    detail: string,
  ) => log.add({ kind: 'export', tenantId, table: 'export_carries', field, expected, actual, detail });
  const run = `export ${recorded.runId}`;
  let closing = 0;
  let expiredPoints = 0;
  let maturedCreditedPoints = 0;
  const pending = new Map<string, number>();
  for (const part of parts) {
    closing = addPoints(closing, part.closing);
    expiredPoints = addPoints(expiredPoints, part.expiredPoints);
    maturedCreditedPoints = addPoints(maturedCreditedPoints, part.maturedCreditedPoints);
    for (const [expiresAt, points] of part.pendingCredits)
      pending.set(expiresAt, addPoints(pending.get(expiresAt) ?? 0, points));
    if (part.lateCount > 0)
      log.add({
        kind: 'export',
        tenantId,
        partition: part.partition,
        position: part.lateEvents[0]!,
        detail: `${part.lateCount} event(s) recorded before the end of the period of ${run} lie beyond the head it was as of (positions ${part.lateEvents.join(', ')}${part.lateCount > part.lateEvents.length ? ', ...' : ''}): the exported period is missing them`,
      });
  }
  if (closing !== recorded.closingPoints)
    log.add({
      kind: 'export',
      tenantId,
      table: 'export_runs',
      field: 'closing_points',
      expected: closing,
      actual: recorded.closingPoints,
      detail: `the closing ${run} recorded is not the events' closing as of its heads`,
    });

  const carry = recorded.carry;
  if (carry === null) return;
  if ('unusable' in carry) {
    fail('carry', null, null, `${run}: ${carry.unusable}`);
    return;
  }
  if (carry.toAt !== recorded.toAt)
    fail('toAt', recorded.toAt, carry.toAt, `the carry of ${run} is not as of its period's end`);
  const totals = [
    ['closing', closing, carry.closing],
    ['expiredPoints', expiredPoints, carry.expiredPoints],
    ['maturedCreditedPoints', maturedCreditedPoints, carry.maturedCreditedPoints],
  ] as const;
  for (const [field, expected, actual] of totals)
    if (expected !== actual) fail(field, expected, actual, `the carry of ${run} differs from the events`);
  const expectedPending = [...pending].filter(([, points]) => points !== 0);
  const actualPending = new Map(carry.pendingCredits.filter(([, points]) => points !== 0));
  const instants = new Set([...expectedPending.map(([at]) => at), ...actualPending.keys()]);
  const differing = [...instants]
    .sort()
    .filter((at) => (pending.get(at) ?? 0) !== (actualPending.get(at) ?? 0));
  if (differing.length > 0) {
    const at = differing[0]!;
    fail(
      `pendingCredits ${at}`,
      pending.get(at) ?? 0,
      actualPending.get(at) ?? 0,
      `the carry of ${run} holds other credits of lots still to expire than the events (${differing.length} expiry instant(s) differ)`,
    );
  }

  const byPartition = new Map(parts.map((part) => [part.partition, part]));
  const carried = new Map(carry.partitions.map((p) => [p.partition, p]));
  for (const head of recorded.heads) {
    const entry = carried.get(head.partition);
    if (entry === undefined) {
      fail(
        `partition ${head.partition}`,
        head.position,
        null,
        `the carry of ${run} has no entry for a partition its run counted`,
      );
      continue;
    }
    if (entry.head !== head.position || entry.headHash !== head.lastHash)
      fail(
        `partition ${head.partition} head`,
        `${head.position} ${head.lastHash}`,
        `${entry.head} ${entry.headHash}`,
        `the carry of ${run} counted to another head than its run`,
      );
    // The next export reads from resumeFrom on: no event of a later period may lie below it.
    const part = byPartition.get(head.partition);
    const limit = part === undefined ? 1 : (part.firstOfLaterPeriod ?? part.lastPosition + 1);
    if (entry.resumeFrom > limit)
      fail(
        `partition ${head.partition} resumeFrom`,
        limit,
        entry.resumeFrom,
        `the carry of ${run} would have the next export start beyond position ${limit}, where the log holds an event it must count`,
      );
  }
  for (const partition of carried.keys())
    if (!recorded.heads.some((head) => head.partition === partition))
      fail(
        `partition ${partition}`,
        null,
        partition,
        `the carry of ${run} has a partition its run did not count`,
      );
}
