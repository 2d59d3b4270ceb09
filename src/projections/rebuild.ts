/**
 * Rebuild without downtime. The live tables keep serving (and the live projector keeps updating them)
 * while fresh tables with the _rebuild suffix fill from position zero. Then:
 *   1. fill: drain every partition into the _rebuild tables (no lease needed: nobody else writes them;
 *      the rebuild lock keeps a second rebuild out), again and again until at most handoverLagEvents
 *      remain per partition;
 *   2. hand-over: seize every partition lease (new fencing tokens: any live batch in flight fails its
 *      fenced checkpoint UPDATE and rolls back; live projectors cannot take a lease back while the
 *      rebuild renews them), then drain the short tail into the _rebuild tables under those leases;
 *   3. swap: one RENAME TABLE moves all nine tables (checkpoints included) at once, so a reader sees the
 *      old set or the new set, never a mixture or a half-built table; the old set is dropped;
 *   4. seize and release every lease again, so each live projector takes its partitions back with a new
 *      token and re-reads its checkpoint from the new table (also covering a tenant that appeared
 *      during the hand-over, which simply restarts from zero in the new tables).
 * The live read models stop moving only during 2-3 (the tail: about one batch per partition).
 */
import type { ResultSetHeader } from 'mysql2/promise';
import type { Pool } from '../db/pool.ts';
import { newId } from '../ids.ts';
import type { EventStore } from '../eventstore/port.ts';
import { readCheckpoint, type ProjectionHooks } from './batch.ts';
import { forEachLimited, PROJECTION_BATCH_EVENTS_MAX, ProjectionEngine } from './engine.ts';
import {
  ensureLeaseRows,
  LEASE_SECONDS_DEFAULT,
  releaseAllLeases,
  renewLeases,
  seizeAllLeases,
} from './leases.ts';
import { READ_MODEL_TABLES, REBUILD_SUFFIX, RETIRED_SUFFIX, tableNames } from './tables.ts';

const REBUILD_LOCK_NAME = 'read-models';
/** Fill rounds before the hand-over happens anyway (a log growing faster than the rebuild reads it). */
export const REBUILD_FILL_ROUNDS_MAX = 50;
export const REBUILD_PARTITIONS_CONCURRENT_DEFAULT = 4;

export interface RebuildOptions {
  owner?: string;
  batchEvents?: number;
  partitionsConcurrent?: number;
  leaseSeconds?: number;
  /** Hand over when no partition is further than this behind its head (default one batch). */
  handoverLagEvents?: number;
  hooks?: ProjectionHooks & {
    /** After the hand-over's tail, just before RENAME TABLE (tests). */
    beforeSwap?(): void | Promise<void>;
  };
  timeZoneOf?: (tenantId: string) => Promise<string>;
}

export interface RebuildResult {
  events: number;
  tailEvents: number;
  tenants: number;
  fillRounds: number;
  durationMs: number;
}

export class RebuildInProgressError extends Error {
  override name = 'RebuildInProgressError';
}

export async function rebuildProjections(
  pool: Pool,
  store: EventStore,
  options: RebuildOptions = {},
): Promise<RebuildResult> {
  const startedMs = Date.now();
  const owner = options.owner ?? `rebuild-${newId()}`;
  const leaseSeconds = options.leaseSeconds ?? LEASE_SECONDS_DEFAULT;
  const batchEvents = options.batchEvents ?? PROJECTION_BATCH_EVENTS_MAX;
  const concurrency = options.partitionsConcurrent ?? REBUILD_PARTITIONS_CONCURRENT_DEFAULT;
  const handoverLag = options.handoverLagEvents ?? batchEvents;
  const rebuildTables = tableNames(REBUILD_SUFFIX);

  if (!(await takeRebuildLock(pool, owner, leaseSeconds)))
    throw new RebuildInProgressError('another rebuild holds the lock');
  let holdsLeases = false;
  const renewal = setInterval(
    () => {
      void renewRebuildLock(pool, owner, leaseSeconds).catch(() => undefined);
      if (holdsLeases) void renewLeases(pool, owner, leaseSeconds).catch(() => undefined);
    },
    Math.max(200, Math.floor((leaseSeconds * 1000) / 3)),
  );
  try {
    for (const table of READ_MODEL_TABLES) {
      await pool.query(`DROP TABLE IF EXISTS ${table}${REBUILD_SUFFIX}`);
      await pool.query(`DROP TABLE IF EXISTS ${table}${RETIRED_SUFFIX}`);
      await pool.query(`CREATE TABLE ${table}${REBUILD_SUFFIX} LIKE ${table}`);
    }
    const engine = new ProjectionEngine(pool, store, rebuildTables, {
      batchEvents,
      hooks: options.hooks,
      timeZoneOf: options.timeZoneOf,
    });
    const drainAll = async (
      tenants: readonly string[],
      fence: (
        tenantId: string,
        partition: number,
      ) => { owner: string; token: number; leaseSeconds: number } | null,
    ): Promise<number> => {
      const work = tenants.flatMap((tenantId) =>
        Array.from({ length: store.partitions }, (_, partition) => ({ tenantId, partition })),
      );
      let events = 0;
      await forEachLimited(work, concurrency, async ({ tenantId, partition }) => {
        for (;;) {
          const result = await engine.drain(tenantId, partition, fence(tenantId, partition), 4);
          events += result.events;
          if (!result.more) break;
        }
      });
      return events;
    };

    // 1. Fill.
    let events = 0;
    let rounds = 0;
    let tenants: string[] = [];
    for (; rounds < REBUILD_FILL_ROUNDS_MAX;) {
      rounds += 1;
      tenants = await store.listTenants();
      for (const tenantId of tenants) await engine.ensureTenant(tenantId);
      events += await drainAll(tenants, () => null);
      if ((await maxLag(pool, store, tenants, rebuildTables)) <= handoverLag) break;
    }

    // 2. Hand-over.
    await setPhase(pool, owner, 'handover');
    tenants = await store.listTenants();
    for (const tenantId of tenants) {
      await ensureLeaseRows(pool, tenantId, store.partitions);
      await engine.ensureTenant(tenantId);
    }
    holdsLeases = true;
    const leases = new Map(
      (await seizeAllLeases(pool, owner, leaseSeconds)).map((lease) => [
        `${lease.tenantId}\u001f${lease.partition}`,
        lease.token,
      ]),
    );
    const tailEvents = await drainAll(tenants, (tenantId, partition) => {
      const token = leases.get(`${tenantId}\u001f${partition}`);
      if (token === undefined) throw new Error(`rebuild holds no lease for ${tenantId}/${partition}`);
      return { owner, token, leaseSeconds };
    });
    events += tailEvents;

    // 3. Swap, in one statement.
    await options.hooks?.beforeSwap?.();
    await setPhase(pool, owner, 'swap');
    await pool.query(
      `RENAME TABLE ${READ_MODEL_TABLES.map((table) => `${table} TO ${table}${RETIRED_SUFFIX}, ${table}${REBUILD_SUFFIX} TO ${table}`).join(', ')}`,
    );
    for (const table of READ_MODEL_TABLES) await pool.query(`DROP TABLE IF EXISTS ${table}${RETIRED_SUFFIX}`);

    // 4. Every lease changes hands once more, then is free: live projectors re-read their checkpoints.
    await seizeAllLeases(pool, owner, leaseSeconds);
    holdsLeases = false;
    await releaseAllLeases(pool, owner);
    return {
      events,
      tailEvents,
      tenants: tenants.length,
      fillRounds: rounds,
      durationMs: Date.now() - startedMs,
    };
  } finally {
    clearInterval(renewal);
    await releaseAllLeases(pool, owner).catch(() => undefined);
    await pool
      .query('DELETE FROM projection_rebuilds WHERE lock_name = ? AND owner = ?', [REBUILD_LOCK_NAME, owner])
      .catch(() => undefined);
  }
}

async function maxLag(
  pool: Pool,
  store: EventStore,
  tenants: readonly string[],
  tables: ReturnType<typeof tableNames>,
): Promise<number> {
  let max = 0;
  for (const tenantId of tenants) {
    for (const head of await store.partitionHeads(tenantId)) {
      const checkpoint = await readCheckpoint(pool, tables, tenantId, head.partition);
      max = Math.max(max, head.position - (checkpoint?.position ?? 0));
    }
  }
  return max;
}

async function takeRebuildLock(pool: Pool, owner: string, leaseSeconds: number): Promise<boolean> {
  await pool.query(
    `INSERT IGNORE INTO projection_rebuilds (lock_name, owner, phase, started_at, expires_at)
     VALUES (?, '', 'idle', UTC_TIMESTAMP(3), '1970-01-01 00:00:01.000')`,
    [REBUILD_LOCK_NAME],
  );
  const [result] = await pool.query<ResultSetHeader>(
    `UPDATE projection_rebuilds SET owner = ?, phase = 'fill', started_at = UTC_TIMESTAMP(3),
       expires_at = DATE_ADD(UTC_TIMESTAMP(3), INTERVAL ? SECOND)
     WHERE lock_name = ? AND (owner = '' OR expires_at < UTC_TIMESTAMP(3))`,
    [owner, leaseSeconds, REBUILD_LOCK_NAME],
  );
  return result.affectedRows === 1;
}

async function renewRebuildLock(pool: Pool, owner: string, leaseSeconds: number): Promise<void> {
  await pool.query(
    'UPDATE projection_rebuilds SET expires_at = DATE_ADD(UTC_TIMESTAMP(3), INTERVAL ? SECOND) WHERE lock_name = ? AND owner = ?',
    [leaseSeconds, REBUILD_LOCK_NAME, owner],
  );
}

async function setPhase(pool: Pool, owner: string, phase: string): Promise<void> {
  await pool.query('UPDATE projection_rebuilds SET phase = ? WHERE lock_name = ? AND owner = ?', [
    phase,
    REBUILD_LOCK_NAME,
    owner,
  ]);
}
