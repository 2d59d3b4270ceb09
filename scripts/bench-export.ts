/**
 * npm run bench:export — `ledger export` of one month for 1,000,000 members (docs/finance.md, "Cost").
 *
 * Builds a scratch database with scripts/lib/bulk-history.ts (every member has an opening balance, most
 * have movements in the month, some late uploads, refunds and expiries), projects it with the real
 * projector, then times the export alone (rows from ledger_entries + the independent pass over the events
 * + every check + files + manifest) and prints its peak RSS. The export must reconcile. Two exports are
 * timed: December, the tenant's first (the independent pass reads the whole log), then January, which
 * carries on from December's as every monthly close after the first does.
 *
 *   BENCH_MEMBERS=1000000 npm run bench:export
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqlEventStore } from '../src/eventstore/sql/sql-event-store.ts';
import { runExport } from '../src/export/export.ts';
import { Projector } from '../src/projections/runtime.ts';
import { fmt, machineLine, scratchDatabase, withBufferPool } from './lib/bench.ts';
import { bulkHistory } from './lib/bulk-history.ts';
import { lifetimePeakRssBytes, mib, withPeakRss } from './lib/rss.ts';

const MEMBERS = Number(process.env['BENCH_MEMBERS'] ?? 1_000_000);
/** BENCH_BUFFER_POOL_MIB: the server's buffer pool for the measurement (scripts/lib/bench.ts, withBufferPool). */
const BUFFER_POOL_MIB =
  process.env['BENCH_BUFFER_POOL_MIB'] === undefined
    ? undefined
    : Number(process.env['BENCH_BUFFER_POOL_MIB']);
const TARGET_SECONDS = 30;
/** January 2026 in Asia/Shanghai: the month the history is generated for, exported after December. */
const PERIOD = {
  from: '2026-01-01',
  to: '2026-02-01',
  fromAt: '2025-12-31T16:00:00.000Z',
  toAt: '2026-01-31T16:00:00.000Z',
};
const PREVIOUS_PERIOD = { from: '2025-12-01', to: '2026-01-01' };

async function main(): Promise<void> {
  console.log(`bench:export on ${machineLine()}`);
  const db = await scratchDatabase('pl_bench_export', 24);
  const out = await mkdtemp(join(tmpdir(), 'ledger-bench-export-'));
  try {
    const store = new SqlEventStore(db.pool);
    const tenantId = 'bench';
    let t0 = performance.now();
    const { events } = await bulkHistory(db.pool, store, {
      tenantId,
      members: MEMBERS,
      seed: 7,
      stores: 6000,
      periodStart: PERIOD.fromAt,
      periodEnd: PERIOD.toAt,
      onProgress: (members, written) =>
        process.stderr.write(`\rgenerated ${fmt(members)} members, ${fmt(written)} events`),
    });
    process.stderr.write('\n');
    console.log(
      `generated ${fmt(MEMBERS)} members, ${fmt(events)} events in ${fmt((performance.now() - t0) / 1000, 1)} s`,
    );

    t0 = performance.now();
    const projected = await new Projector(db.pool, store, {
      owner: 'bench-export',
      partitionsConcurrent: 8,
      onError: (e) => console.error(e),
    }).runOnce();
    console.log(`projected ${fmt(projected.events)} events in ${fmt((performance.now() - t0) / 1000, 1)} s`);

    const clock = {
      nowIso: () => '2026-02-02T00:00:00.000Z',
      nowMs: () => Date.parse('2026-02-02T00:00:00.000Z'),
    };
    console.log(
      `InnoDB buffer pool: ${BUFFER_POOL_MIB === undefined ? 'as configured' : `${BUFFER_POOL_MIB} MiB for the measurement`}`,
    );
    await withBufferPool(db.pool, BUFFER_POOL_MIB, async () => {
      // December first (the tenant's first export: its independent pass reads the whole log), then January,
      // which carries on from December's export as every monthly close after the first does.
      for (const period of [PREVIOUS_PERIOD, PERIOD]) {
        const dir = join(out, period.from);
        t0 = performance.now();
        const { result, peakRssBytes } = await withPeakRss(() =>
          runExport(
            { pool: db.pool, store, clock },
            { tenantId, from: period.from, to: period.to, outDir: dir },
          ),
        );
        const seconds = (performance.now() - t0) / 1000;
        const balances = await stat(join(dir, 'balances.csv'));
        const { summary } = result;
        const totals = summary.totals.balances;
        console.log(
          [
            `export [${period.from}, ${period.to}): ${fmt(summary.members)} member rows, ${fmt(summary.stores)} store rows in ${fmt(seconds, 1)} s` +
              ` (target <= ${TARGET_SECONDS} s: ${seconds <= TARGET_SECONDS ? 'met' : 'NOT met'})`,
            `  reconciled: ${summary.reconciled} (${summary.checks.length} checks); as of ${fmt(summary.asOf.events)} events`,
            `  independent pass: ${fmt(summary.independentPass.eventsRead)} events read, ${summary.independentPass.reason}`,
            `  opening ${fmt(totals['opening_points']!)} -> closing ${fmt(totals['closing_points']!)} points; liability ${fmt(summary.liabilityFen)} fen; breakage ${summary.breakage.ratePpm} ppm`,
            `  balances.csv ${mib(balances.size)}; peak RSS during the export: ${mib(peakRssBytes)} (process lifetime peak ${mib(lifetimePeakRssBytes())})`,
          ].join('\n'),
        );
      }
    });
  } finally {
    await rm(out, { recursive: true, force: true });
    if (process.env['BENCH_KEEP'] === '1') {
      console.log(`kept ${db.url}`);
      await db.pool.end();
    } else await db.drop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
