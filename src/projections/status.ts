/**
 * Projection lag per partition: head position - checkpoint. With the SQL store positions are dense, so
 * that is a count of events; with EventStoreDB it is a distance in $all commit positions (0 still means
 * caught up). Read by `ledger status`, `ledger audit` and the API's /metrics.
 */
import type { RowDataPacket } from 'mysql2/promise';
import type { Gauge } from 'prom-client';
import { sqlInt, sqlTimeToIso, type Pool } from '../db/pool.ts';
import type { EventStore } from '../eventstore/port.ts';
import { listLeases } from './leases.ts';
import { LIVE_TABLES } from './tables.ts';

export interface PartitionStatus {
  tenantId: string;
  partition: number;
  head: number;
  checkpoint: number;
  lag: number;
  /** The live lease holder, or null when nobody holds it. */
  owner: string | null;
  checkpointUpdatedAt: string | null;
}

export interface ProjectionStatus {
  partitions: PartitionStatus[];
  totalLag: number;
  maxLag: number;
}

export async function projectionStatus(pool: Pool, store: EventStore): Promise<ProjectionStatus> {
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT tenant_id, partition_no, position, updated_at FROM ${LIVE_TABLES.projection_checkpoints}`,
  );
  const checkpoints = new Map(
    rows.map((row) => [
      `${String(row['tenant_id'])}\u001f${sqlInt(row['partition_no'])}`,
      { position: sqlInt(row['position']), updatedAt: sqlTimeToIso(String(row['updated_at'])) },
    ]),
  );
  const owners = new Map(
    (await listLeases(pool))
      .filter((lease) => lease.live)
      .map((lease) => [`${lease.tenantId}\u001f${lease.partition}`, lease.owner]),
  );
  const partitions: PartitionStatus[] = [];
  for (const tenantId of await store.listTenants()) {
    for (const head of await store.partitionHeads(tenantId)) {
      const key = `${tenantId}\u001f${head.partition}`;
      const checkpoint = checkpoints.get(key);
      const position = checkpoint?.position ?? 0;
      partitions.push({
        tenantId,
        partition: head.partition,
        head: head.position,
        checkpoint: position,
        lag: Math.max(0, head.position - position),
        owner: owners.get(key) ?? null,
        checkpointUpdatedAt: checkpoint?.updatedAt ?? null,
      });
    }
  }
  return {
    partitions,
    totalLag: partitions.reduce((sum, p) => sum + p.lag, 0),
    maxLag: partitions.reduce((max, p) => Math.max(max, p.lag), 0),
  };
}

/** Sets `ledger_projection_lag_events{tenant, partition}` from a fresh status; call before rendering /metrics. */
export async function updateProjectionLagGauge(
  gauge: Gauge<'tenant' | 'partition'>,
  pool: Pool,
  store: EventStore,
): Promise<ProjectionStatus> {
  const status = await projectionStatus(pool, store);
  gauge.reset();
  for (const p of status.partitions) gauge.set({ tenant: p.tenantId, partition: String(p.partition) }, p.lag);
  return status;
}
