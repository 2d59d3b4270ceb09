/**
 * Brings one tenant's read models up to given heads: for each partition behind, take its projector lease
 * (skipped when a live projector holds it: that projector is draining it), apply batches up to the head,
 * give the lease back. What Projector.runOnce does, limited to the partitions of one tenant that are
 * behind, so an export never pays for the other tenants' lag.
 */
import type { Pool } from '../db/pool.ts';
import type { EventStore, PartitionHead } from '../eventstore/port.ts';
import { newId } from '../ids.ts';
import { PROJECTION_BATCH_EVENTS_MAX, ProjectionEngine } from '../projections/engine.ts';
import {
  ensureLeaseRows,
  LEASE_SECONDS_DEFAULT,
  releaseLease,
  tryAcquireLease,
} from '../projections/leases.ts';
import { LIVE_TABLES } from '../projections/tables.ts';

/** Batches applied per partition before re-checking the head (each batch is one transaction). */
const DRAIN_BATCHES_PER_TURN = 16;

export async function drainTenant(
  pool: Pool,
  store: EventStore,
  tenantId: string,
  behind: readonly PartitionHead[],
): Promise<void> {
  if (behind.length === 0) return;
  const owner = `export-${newId().slice(0, 8)}`;
  const engine = new ProjectionEngine(pool, store, LIVE_TABLES, { batchEvents: PROJECTION_BATCH_EVENTS_MAX });
  await ensureLeaseRows(pool, tenantId, store.partitions);
  await engine.ensureTenant(tenantId);
  for (const head of behind) {
    const lease = await tryAcquireLease(pool, tenantId, head.partition, owner, LEASE_SECONDS_DEFAULT);
    if (lease === null) continue;
    try {
      const fence = { owner, token: lease.token, leaseSeconds: LEASE_SECONDS_DEFAULT };
      for (;;) {
        const result = await engine.drain(tenantId, head.partition, fence, DRAIN_BATCHES_PER_TURN);
        if (!result.more || result.position >= head.position) break;
      }
    } finally {
      await releaseLease(pool, lease, owner);
    }
  }
}
