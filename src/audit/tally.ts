/**
 * What the units of one tenant's audit found, added up, and the checks that need every unit's part:
 * each partition's tenant_totals against its events' postings (postings.ts), the tenant's postings summing
 * to zero, and the last export against the recount of its events (export-recount.ts). Units may finish in
 * any order and run in any process; the tally depends only on their outcomes.
 */
import { addPoints } from '../domain/points.ts';
import {
  compareExportRecount,
  mergeRecountParts,
  type ExportRecountPart,
  type RecordedExport,
} from './export-recount.ts';
import { comparePartitionTotals, PostingSums, type PartitionPostings } from './postings.ts';
import type { DiscrepancyLog, PartitionReport } from './report.ts';
import type { UnitOutcome } from './unit.ts';

export class TenantTally {
  members = 0;
  storeDays = 0;
  private readonly partitions: PartitionReport[] = [];
  private readonly partitionPostings: PartitionPostings[] = [];
  private readonly belowStart = new Map<number, PostingSums>();
  private readonly recounts: ExportRecountPart[] = [];

  constructor(
    private readonly tenantId: string,
    private readonly log: DiscrepancyLog,
  ) {}

  add(outcome: UnitOutcome): void {
    this.log.merge(outcome.discrepancies, outcome.discrepancyCount);
    if (outcome.partition !== null) this.partitions.push(outcome.partition);
    if (outcome.partitionPostings !== null) this.partitionPostings.push(outcome.partitionPostings);
    for (const [partition, sums] of outcome.postingsBelowStart) {
      let into = this.belowStart.get(partition);
      if (into === undefined) this.belowStart.set(partition, (into = new PostingSums()));
      into.addAll(sums);
    }
    this.recounts.push(...outcome.exportRecounts);
    this.members += outcome.members;
    this.storeDays += outcome.storeDays;
  }

  /**
   * After every unit: the checks across units. Returns the partitions' reports in partition order and the
   * tenant's postings per account over every event.
   */
  finish(exported: RecordedExport | null): { partitions: PartitionReport[]; postings: Map<string, number> } {
    if (exported !== null)
      compareExportRecount(this.tenantId, exported, mergeRecountParts(this.recounts), this.log);

    const postings = new Map<string, number>();
    const post = (account: string, points: number) =>
      postings.set(account, addPoints(postings.get(account) ?? 0, points));
    this.partitionPostings.sort((a, b) => a.partition - b.partition);
    for (const pass of this.partitionPostings) {
      const below = this.belowStart.get(pass.partition) ?? new PostingSums();
      comparePartitionTotals(this.tenantId, pass, below, this.log);
      for (const account of below.accounts()) post(account, below.get(account).points);
      for (const [account, points] of pass.aboveStart) post(account, points);
    }
    const sum = [...postings.values()].reduce((total, points) => addPoints(total, points), 0);
    if (sum !== 0) {
      this.log.add({
        kind: 'postings',
        tenantId: this.tenantId,
        field: 'sum of all postings',
        expected: 0,
        actual: sum,
        detail: "the tenant's postings do not sum to zero",
      });
    }
    return { partitions: [...this.partitions].sort((a, b) => a.partition - b.partition), postings };
  }
}
