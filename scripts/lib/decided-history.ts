/**
 * The history bench:audit and bench:export-rows measure: about `events` events written through the decider
 * and the event store (scripts/generate-history.ts: ~50 events a member over three years, every kind of
 * movement), projected by the real projector. With BENCH_REUSE=1 both keep it under one name and reuse it.
 */
import type { Pool } from '../../src/db/pool.ts';
import { SqlEventStore } from '../../src/eventstore/sql/sql-event-store.ts';
import { Projector } from '../../src/projections/runtime.ts';
import { generateHistory } from '../generate-history.ts';
import { fmt } from './bench.ts';

export const DECIDED_HISTORY_TENANT = 'bench';
const EVENTS_PER_MEMBER = 50;

/** The database name a kept history of `events` events lives under (BENCH_REUSE=1). */
export function decidedHistoryName(events: number): string {
  return `pl_bench_decided_${events}`;
}

/** Generates about `events` events through the decider and projects them with the real projector. */
export async function buildDecidedHistory(
  pool: Pool,
  events: number,
): Promise<{ written: number; members: number }> {
  const store = new SqlEventStore(pool);
  let t0 = performance.now();
  let generated = 0;
  let written = 0;
  let members = 0;
  // generateHistory's per-member count varies around the mean: add members until the log has `events`.
  while (written < events) {
    const batch = Math.max(100, Math.ceil((events - written) / EVENTS_PER_MEMBER));
    written += await generateHistory(store, {
      tenantId: DECIDED_HISTORY_TENANT,
      seed: 42,
      members: batch,
      firstMember: members,
      createTenant: members === 0,
      eventsPerMember: EVENTS_PER_MEMBER,
      stores: 6000,
      concurrency: 16,
      onMember: (count) => {
        generated += count;
        if (generated % 100_000 < count) process.stderr.write(`\rgenerated ${fmt(generated)} events`);
      },
    });
    members += batch;
  }
  process.stderr.write('\n');
  console.log(
    `generated ${fmt(written)} events for ${fmt(members)} members in ${fmt((performance.now() - t0) / 1000, 1)} s`,
  );

  t0 = performance.now();
  const projected = await new Projector(pool, store, {
    owner: 'bench-decided-history',
    partitionsConcurrent: 8,
    onError: (e) => console.error(e),
  }).runOnce();
  console.log(`projected ${fmt(projected.events)} events in ${fmt((performance.now() - t0) / 1000, 1)} s`);
  return { written, members };
}
