/**
 * npm run bench:audit — `ledger audit` over >= 1,000,000 events (docs/audit.md, "Cost").
 *
 * Builds a scratch database with a decider-made history (scripts/generate-history.ts: ~50 events a member,
 * every kind of movement), projects it with the real projector, then audits it and prints events/s, the
 * cost per million events and the peak RSS of the audit phase. The audit must come out clean.
 *
 *   BENCH_EVENTS=1000000 BENCH_AUDIT_CONCURRENCY=4 npm run bench:audit
 */
import { generateHistory } from './generate-history.ts';
import { runAudit, AUDIT_CONCURRENCY_DEFAULT } from '../src/audit/audit.ts';
import { SqlEventStore } from '../src/eventstore/sql/sql-event-store.ts';
import { Projector } from '../src/projections/runtime.ts';
import { fmt, machineLine, scratchDatabase } from './lib/bench.ts';
import { lifetimePeakRssBytes, mib, withPeakRss } from './lib/rss.ts';

const EVENTS = Number(process.env['BENCH_EVENTS'] ?? 1_000_000);
const EVENTS_PER_MEMBER = 50;
const CONCURRENCY = Number(process.env['BENCH_AUDIT_CONCURRENCY'] ?? AUDIT_CONCURRENCY_DEFAULT);
const TARGET_EVENTS_PER_SECOND = 100_000;

async function main(): Promise<void> {
  console.log(`bench:audit on ${machineLine()}`);
  const db = await scratchDatabase('pl_bench_audit', 40);
  try {
    const store = new SqlEventStore(db.pool);
    const tenantId = 'bench';
    let t0 = performance.now();
    let generated = 0;
    let written = 0;
    let members = 0;
    // generateHistory's per-member count varies around the mean: add members until the log has EVENTS.
    while (written < EVENTS) {
      const batch = Math.max(100, Math.ceil((EVENTS - written) / EVENTS_PER_MEMBER));
      written += await generateHistory(store, {
        tenantId,
        seed: 42,
        members: batch,
        firstMember: members,
        createTenant: members === 0,
        eventsPerMember: EVENTS_PER_MEMBER,
        stores: 6000,
        concurrency: 16,
        onMember: (events) => {
          generated += events;
          if (generated % 100_000 < events) process.stderr.write(`\rgenerated ${fmt(generated)} events`);
        },
      });
      members += batch;
    }
    process.stderr.write('\n');
    console.log(
      `generated ${fmt(written)} events for ${fmt(members)} members in ${fmt((performance.now() - t0) / 1000, 1)} s`,
    );

    t0 = performance.now();
    const projected = await new Projector(db.pool, store, {
      owner: 'bench-audit',
      partitionsConcurrent: 8,
      onError: (e) => console.error(e),
    }).runOnce();
    console.log(`projected ${fmt(projected.events)} events in ${fmt((performance.now() - t0) / 1000, 1)} s`);

    t0 = performance.now();
    const { result: report, peakRssBytes } = await withPeakRss(() =>
      runAudit(db.pool, store, {
        tenantId,
        concurrency: CONCURRENCY,
        onProgress: (p) => {
          if ((p.chainEvents + p.memberEvents) % 50_000 < 2_000)
            process.stderr.write(`\raudit: chains ${fmt(p.chainEvents)}, members ${fmt(p.memberEvents)}   `);
        },
      }),
    );
    process.stderr.write('\n');
    const seconds = (performance.now() - t0) / 1000;
    const rate = report.events / seconds;
    console.log(
      [
        `audit (concurrency ${CONCURRENCY}): ${fmt(report.events)} events, ${fmt(report.members)} members in ${fmt(seconds, 1)} s`,
        `  ${fmt(rate)} events/s (target >= ${fmt(TARGET_EVENTS_PER_SECOND)}: ${rate >= TARGET_EVENTS_PER_SECOND ? 'met' : 'NOT met'})`,
        `  cost: ${fmt(1_000_000 / rate, 1)} s per million events on this machine`,
        `  peak RSS during the audit: ${mib(peakRssBytes)} (process lifetime peak ${mib(lifetimePeakRssBytes())})`,
        `  discrepancies: ${report.discrepancyCount} (must be 0)`,
      ].join('\n'),
    );
    if (report.discrepancyCount !== 0) {
      console.error(JSON.stringify(report.tenants[0]?.discrepancies.slice(0, 5), null, 2));
      process.exitCode = 1;
    }
  } finally {
    if (process.env['BENCH_KEEP'] === '1') console.log(`kept ${db.url}`);
    else await db.drop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
