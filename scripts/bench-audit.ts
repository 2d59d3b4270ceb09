/**
 * npm run bench:audit — `ledger audit` over >= 1,000,000 events (docs/audit.md, "Cost").
 *
 * Builds a scratch database with a decider-made history (scripts/lib/decided-history.ts), then audits it and prints events/s, the
 * cost per million events and the peak RSS of the audit phase. The audit must come out clean. Then it measures
 * the floor beside it (scripts/lib/audit-floor.ts): reading the rows and the per-event work alone, and the most
 * events/s that leaves on this machine's cores.
 *
 *   BENCH_EVENTS=1000000 BENCH_AUDIT_PROCESSES=2 BENCH_AUDIT_CONCURRENCY=2 npm run bench:audit
 *
 * Processes default to what `ledger audit` picks (one per core for a log this size); concurrency is units in
 * flight per process. The peak RSS printed is this process and its unit processes together.
 *
 * Building the history and projecting it takes minutes; the audit alone is what this measures. With
 * BENCH_REUSE=1 the database is kept under a fixed name (`pl_bench_decided_<events>`, which bench:export-rows
 * reuses too) and a later run with the same BENCH_EVENTS audits it again without rebuilding (a build cut
 * short is redone). Drop it with BENCH_REUSE=drop when done.
 */
import os from 'node:os';
import { runAudit, AUDIT_CONCURRENCY_DEFAULT } from '../src/audit/audit.ts';
import { SqlEventStore } from '../src/eventstore/sql/sql-event-store.ts';
import { fmt, machineLine, reusableDatabase, scratchDatabase, withBufferPool } from './lib/bench.ts';
import { buildDecidedHistory, decidedHistoryName, DECIDED_HISTORY_TENANT } from './lib/decided-history.ts';
import { measureAuditFloor } from './lib/audit-floor.ts';
import { lifetimePeakRssBytes, mib, withPeakTreeRss } from './lib/rss.ts';

const EVENTS = Number(process.env['BENCH_EVENTS'] ?? 1_000_000);
const CONCURRENCY = Number(process.env['BENCH_AUDIT_CONCURRENCY'] ?? AUDIT_CONCURRENCY_DEFAULT);
const PROCESSES =
  process.env['BENCH_AUDIT_PROCESSES'] === undefined
    ? undefined
    : Number(process.env['BENCH_AUDIT_PROCESSES']);
const TARGET_EVENTS_PER_SECOND = 100_000;
const REUSE = process.env['BENCH_REUSE'];
/** BENCH_BUFFER_POOL_MIB: the server's buffer pool for the measurement (scripts/lib/bench.ts, withBufferPool). */
const BUFFER_POOL_MIB =
  process.env['BENCH_BUFFER_POOL_MIB'] === undefined
    ? undefined
    : Number(process.env['BENCH_BUFFER_POOL_MIB']);
const tenantId = DECIDED_HISTORY_TENANT;

async function main(): Promise<void> {
  console.log(`bench:audit on ${machineLine()}`);
  if (REUSE === 'drop') {
    const kept = await reusableDatabase(decidedHistoryName(EVENTS), 1);
    await kept.drop();
    console.log(`dropped ${kept.url}`);
    return;
  }
  const reused = REUSE === '1' ? await reusableDatabase(decidedHistoryName(EVENTS), 40) : null;
  const db = reused ?? (await scratchDatabase('pl_bench_audit', 40));
  try {
    if (reused?.ready === true) {
      console.log(`reusing ${reused.url} (built earlier; BENCH_REUSE=drop removes it)`);
    } else {
      const built = await buildDecidedHistory(db.pool, EVENTS);
      await reused?.markReady(`${built.written} events, ${built.members} members`);
    }
    const store = new SqlEventStore(db.pool);
    console.log(
      `InnoDB buffer pool: ${BUFFER_POOL_MIB === undefined ? 'as configured' : `${BUFFER_POOL_MIB} MiB for the measurement`}`,
    );
    const report = await withBufferPool(db.pool, BUFFER_POOL_MIB, async () => {
      const t0 = performance.now();
      const loadBefore = os.loadavg()[0]!;
      const {
        result: report,
        peakRssBytes,
        peakProcesses,
      } = await withPeakTreeRss(() =>
        runAudit(db.pool, store, {
          tenantId,
          databaseUrl: db.url,
          concurrency: CONCURRENCY,
          ...(PROCESSES === undefined ? {} : { processes: PROCESSES }),
          onProgress: (p) => {
            if ((p.chainEvents + p.memberEvents) % 50_000 < 2_000)
              process.stderr.write(
                `\raudit: chains ${fmt(p.chainEvents)}, members ${fmt(p.memberEvents)}   `,
              );
          },
        }),
      );
      process.stderr.write('\n');
      const seconds = (performance.now() - t0) / 1000;
      const rate = report.events / seconds;
      console.log(
        [
          `audit (${report.processes} processes, concurrency ${CONCURRENCY} each): ${fmt(report.events)} events, ${fmt(report.members)} members in ${fmt(seconds, 1)} s`,
          `  ${fmt(rate)} events/s (target >= ${fmt(TARGET_EVENTS_PER_SECOND)}: ${rate >= TARGET_EVENTS_PER_SECOND ? 'met' : 'NOT met'})`,
          `  cost: ${fmt(1_000_000 / rate, 1)} s per million events on this machine`,
          `  peak RSS during the audit: ${mib(peakRssBytes)} for this process and its children together (up to ${peakProcesses} processes: unit processes, tsx's esbuild); this process's lifetime peak ${mib(lifetimePeakRssBytes())}`,
          `  load average (1 min) ${loadBefore.toFixed(2)} before, ${os.loadavg()[0]!.toFixed(2)} after, on ${os.cpus().length} cores`,
          `  discrepancies: ${report.discrepancyCount} (must be 0)`,
        ].join('\n'),
      );
      // The raw limit beside the figure, at the same buffer pool: what the work no audit can skip costs here.
      const floor = await measureAuditFloor(db.pool, tenantId);
      console.log(
        [
          `floor on this machine (the rows read and the per-event work, nothing else; scripts/lib/audit-floor.ts):`,
          `  reading ${fmt(floor.events)} events twice and ${fmt(floor.ledgerEntries)} ledger entries once: node ${fmt(floor.readNodeSeconds, 1)} CPU-s, database ${floor.readDatabaseSeconds === null ? 'not on this machine (left out)' : `${fmt(floor.readDatabaseSeconds, 1)} CPU-s`}`,
          `  per event in one process: JSON.parse and the fold ${fmt(floor.foldMicros, 2)} us, stream hash ${fmt(floor.streamHashMicros, 2)} us, partition hash ${fmt(floor.partitionHashMicros, 2)} us`,
          `  ${fmt(floor.cpuSecondsPerMillion, 1)} CPU-s per million events: at most ${fmt(floor.maxEventsPerSecond)} events/s on ${os.availableParallelism()} cores; the audit ran at ${fmt((100 * rate) / floor.maxEventsPerSecond)}% of it`,
        ].join('\n'),
      );
      return report;
    });
    if (report.discrepancyCount !== 0) {
      console.error(JSON.stringify(report.tenants[0]?.discrepancies.slice(0, 5), null, 2));
      process.exitCode = 1;
    }
  } finally {
    if (reused !== null) await reused.pool.end();
    else if (process.env['BENCH_KEEP'] === '1') {
      console.log(`kept ${db.url}`);
      await db.pool.end();
    } else await db.drop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
