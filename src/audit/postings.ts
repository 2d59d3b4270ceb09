/**
 * Double entry in the audit: the postings of the events, per log partition and account, against
 * tenant_totals (what the projector says it applied), and the tenant's postings summing to zero.
 *
 * The events' data is parsed once, not once per pass. The audit reads every partition's checkpoint when
 * it starts (`atStart`); pass B, which parses every member event for the fold anyway, adds up the postings
 * of the events at or below that position, and pass A, which reads the partitions in position order,
 * parses only the events above it (on a quiet system none). Events are never changed, and every event at
 * or below a checkpoint had committed when the checkpoint was read, so every unit sees the same events
 * below `atStart` whatever its snapshot; the chains (passes A and B) prove they are the log's events.
 * Pass A also reads its partition's checkpoint and tenant_totals in its own snapshot, and returns the
 * postings between the two checkpoints (subtracted when the checkpoint went back, as in a rebuild), so:
 *
 *   postings up to pass A's checkpoint = pass B's sums below atStart + pass A's difference,
 *
 * which must equal tenant_totals as pass A read them. The tenant compares when every unit is done.
 */
import { POSTING_EVENT_TYPES, postingsFor, type MemberEvent } from '../domain/member/index.ts';
import { addPoints } from '../domain/points.ts';
import type { DiscrepancyLog } from './report.ts';

/** The types whose data is parsed for postings (the domain's POSTING_EVENT_TYPES), as a set. */
export const POSTING_TYPES: ReadonlySet<string> = new Set(POSTING_EVENT_TYPES);

/** Points and number of postings per account, as plain data (it crosses to and from unit processes). */
export type AccountSums = [account: string, points: number, postings: number][];

/** Adds up postings per account; `sign` -1 takes them off. */
export class PostingSums {
  private readonly sums = new Map<string, { points: number; postings: number }>();

  addEvent(event: MemberEvent, sign: 1 | -1 = 1): void {
    for (const posting of postingsFor(event)) this.add(posting.account, sign * posting.points, sign);
  }

  add(account: string, points: number, postings: number): void {
    const sum = this.sums.get(account);
    if (sum === undefined) this.sums.set(account, { points, postings });
    else {
      sum.points = addPoints(sum.points, points);
      sum.postings += postings;
    }
  }

  addAll(sums: AccountSums): void {
    for (const [account, points, postings] of sums) this.add(account, points, postings);
  }

  get(account: string): { points: number; postings: number } {
    return this.sums.get(account) ?? { points: 0, postings: 0 };
  }

  accounts(): string[] {
    return [...this.sums.keys()];
  }

  toData(): AccountSums {
    return [...this.sums].map(([account, { points, postings }]) => [account, points, postings]);
  }
}

/** Pass A's side of one partition's double-entry check (see the header). */
export interface PartitionPostings {
  partition: number;
  /** The checkpoint pass A read, with tenant_totals, in its snapshot. */
  checkpoint: number;
  /** tenant_totals of the partition as pass A read them. */
  recorded: AccountSums;
  /** Postings of the events between the audit's starting checkpoint and `checkpoint` (negative if it went back). */
  toCheckpoint: AccountSums;
  /** Postings of the events above the audit's starting checkpoint, up to the head (for the tenant's sums). */
  aboveStart: AccountSums;
}

/** tenant_totals of one partition = the postings of the events up to its checkpoint, account by account. */
export function comparePartitionTotals(
  tenantId: string,
  pass: PartitionPostings,
  belowStart: PostingSums,
  log: DiscrepancyLog,
): void {
  const expected = new PostingSums();
  expected.addAll(belowStart.toData());
  expected.addAll(pass.toCheckpoint);
  const recorded = new PostingSums();
  recorded.addAll(pass.recorded);
  for (const account of new Set([...recorded.accounts(), ...expected.accounts()])) {
    const want = expected.get(account);
    const have = recorded.get(account);
    for (const field of ['points', 'postings'] as const) {
      if (want[field] === have[field]) continue;
      log.add({
        kind: 'postings',
        tenantId,
        partition: pass.partition,
        table: 'tenant_totals',
        field: `${account} ${field}`,
        expected: want[field],
        actual: have[field],
        detail: `tenant_totals of account ${account} differ from the postings of the events up to the checkpoint ${pass.checkpoint}`,
      });
    }
  }
}
