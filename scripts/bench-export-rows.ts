/**
 * npm run bench:export-rows — the two ways the finance export reads its member rows (src/export/ledger-pass.ts,
 * docs/finance.md step 3) on a three-year history: `whole-history` (every entry before the period's end)
 * against `since-period` (every account, and the entries since the period's start), for the history's last
 * full month (a monthly close) and its first (a period that is nearly the whole history), with the plan the
 * export picks. Both must give the same rows; the script fails if they do not.
 *
 * The history is bench:audit's (scripts/lib/decided-history.ts): BENCH_REUSE=1 reuses it when bench:audit
 * kept it, and keeps it otherwise (BENCH_REUSE=drop with bench:audit removes it).
 *
 *   BENCH_EVENTS=1000000 BENCH_REUSE=1 npm run bench:export-rows
 */
import { createHash } from 'node:crypto';
import type { RowDataPacket } from 'mysql2/promise';
import { sqlTimeToIso, type Pool } from '../src/db/pool.ts';
import { addDaysToLocalDate, localDate, type LocalDate } from '../src/domain/time.ts';
import { SqlEventStore } from '../src/eventstore/sql/sql-event-store.ts';
import { forEachMemberRow, memberRowsPlan, type MemberRowsPlan } from '../src/export/ledger-pass.ts';
import { resolvePeriod, type Period } from '../src/export/period.ts';
import { fmt, machineLine, reusableDatabase, scratchDatabase } from './lib/bench.ts';
import { buildDecidedHistory, decidedHistoryName, DECIDED_HISTORY_TENANT } from './lib/decided-history.ts';

const EVENTS = Number(process.env['BENCH_EVENTS'] ?? 1_000_000);
const TIME_ZONE = 'Asia/Shanghai';
const PLANS: readonly MemberRowsPlan[] = ['whole-history', 'since-period'];
const tenantId = DECIDED_HISTORY_TENANT;

/** The first day of the month of `day`, and of the month after it. */
function monthOf(day: LocalDate): { from: LocalDate; to: LocalDate } {
  const from = `${day.slice(0, 8)}01`;
  const to = `${addDaysToLocalDate(from, 40).slice(0, 8)}01`;
  return { from, to };
}

async function timedRows(
  pool: Pool,
  period: Period,
  plan: MemberRowsPlan,
): Promise<{ seconds: number; rows: number; digest: string }> {
  const heads = await new SqlEventStore(pool).partitionHeads(tenantId);
  const digest = createHash('sha256');
  let rows = 0;
  const t0 = performance.now();
  await forEachMemberRow(pool, tenantId, period, heads, plan, async (row) => {
    rows += 1;
    digest.update(
      `${row.memberId},${row.opening},${Object.values(row.movements).join(',')},${row.closing}\n`,
    );
  });
  return { seconds: (performance.now() - t0) / 1000, rows, digest: digest.digest('hex') };
}

async function main(): Promise<void> {
  console.log(`bench:export-rows on ${machineLine()}`);
  const reused =
    process.env['BENCH_REUSE'] === '1' ? await reusableDatabase(decidedHistoryName(EVENTS), 40) : null;
  const db = reused ?? (await scratchDatabase('pl_bench_export_rows', 40));
  try {
    if (reused?.ready === true) console.log(`reusing ${reused.url}`);
    else {
      const built = await buildDecidedHistory(db.pool, EVENTS);
      await reused?.markReady(`${built.written} events, ${built.members} members`);
    }
    const [spanRows] = await db.pool.query<RowDataPacket[]>(
      'SELECT MIN(at) AS first, MAX(at) AS last, COUNT(*) AS entries FROM ledger_entries WHERE tenant_id = ?',
      [tenantId],
    );
    const span = spanRows[0]!;
    const first = sqlTimeToIso(String(span['first']));
    const last = sqlTimeToIso(String(span['last']));
    // The export runs the day after the last entry; the last full month ends before it, the first begins after the first entry.
    const now = new Date(Date.parse(last) + 86_400_000).toISOString();
    const lastMonth = monthOf(addDaysToLocalDate(monthOf(localDate(last, TIME_ZONE)).from, -1));
    const firstMonth = monthOf(monthOf(localDate(first, TIME_ZONE)).to);
    console.log(`history: ${fmt(Number(span['entries']))} ledger entries recorded from ${first} to ${last}`);
    let failed = false;
    for (const month of [lastMonth, firstMonth]) {
      const period = resolvePeriod(month.from, month.to, TIME_ZONE);
      const picked = await memberRowsPlan(db.pool, tenantId, period, now);
      const results: ({ plan: MemberRowsPlan } & Awaited<ReturnType<typeof timedRows>>)[] = [];
      // In turn, twice: the server's caches see both plans alike.
      for (const plan of [...PLANS, ...PLANS])
        results.push({ plan, ...(await timedRows(db.pool, period, plan)) });
      const line = PLANS.map((plan) => {
        const runs = results.filter((r) => r.plan === plan);
        return `${plan} ${runs.map((r) => fmt(r.seconds, 2)).join(' and ')} s`;
      }).join(', ');
      const same = results.every((r) => r.digest === results[0]!.digest && r.rows === results[0]!.rows);
      failed ||= !same;
      console.log(
        `[${month.from}, ${month.to}): ${fmt(results[0]!.rows)} member rows; ${line}; the export picks ${picked}; rows ${same ? 'identical' : 'DIFFER'}`,
      );
    }
    if (failed) process.exitCode = 1;
  } finally {
    if (reused !== null) await reused.pool.end();
    else await db.drop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
