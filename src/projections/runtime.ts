/**
 * The projector process: takes a fair share of the partition leases, and for each partition it holds,
 * applies the log from the stored checkpoint in batches (batch.ts). Several processes share the
 * partitions; a lease and its fencing token guarantee no two ever commit to one partition at once.
 *
 * Loop: every tick (leaseSeconds / 3) heartbeat, renew leases, rebalance (target share, tenant by tenant =
 * ceil(the tenant's partitions / live processes)); every round, one partitionHeads read per tenant, then up to
 * partitionsConcurrent partitions with new events drain a few batches each; with nothing to do it sleeps
 * idleSleepMs (100 ms by default), so an event reaches the read models about 100-200 ms after its commit.
 */
import { hostname } from 'node:os';
import { assert } from '../domain/assert.ts';
import { loggableError, type Pool } from '../db/pool.ts';
import { newId } from '../ids.ts';
import type { EventStore } from '../eventstore/port.ts';
import { CheckpointMovedError, LeaseLostError, type ProjectionHooks } from './batch.ts';
import { forEachLimited, PROJECTION_BATCH_EVENTS_MAX, ProjectionEngine } from './engine.ts';
import {
  ensureLeaseRows,
  heartbeat,
  leaseKey,
  leaveInstances,
  LEASE_SECONDS_DEFAULT,
  LEASE_SECONDS_MAX,
  releaseAllLeases,
  releaseLease,
  renewLeases,
  tryAcquireLease,
  type Lease,
} from './leases.ts';
import { LIVE_TABLES } from './tables.ts';

export const PROJECTION_IDLE_SLEEP_MS_DEFAULT = 100;
export const PROJECTION_IDLE_SLEEP_MS_MAX = 5_000;
export const PROJECTION_PARTITIONS_CONCURRENT_DEFAULT = 4;
export const PROJECTION_PARTITIONS_CONCURRENT_MAX = 16;
/** Batches one partition applies before the round moves on (fairness between partitions and tenants). */
export const PROJECTION_BATCHES_PER_TURN = 4;
const ERROR_BACKOFF_MS_MIN = 200;
const ERROR_BACKOFF_MS_MAX = 10_000;
/** Stop writing under a lease this long before it would expire by our own clock. */
const LEASE_SAFETY_MARGIN_MS = 2_000;

export interface ProjectorOptions {
  /** Unique per process; reusing a crashed process's id lets it take its leases back at once. */
  owner?: string;
  leaseSeconds?: number;
  batchEvents?: number;
  idleSleepMs?: number;
  partitionsConcurrent?: number;
  hooks?: ProjectionHooks;
  timeZoneOf?: (tenantId: string) => Promise<string>;
  /** Errors the loop survives (logged, then retried with backoff). Default: console.error. */
  onError?: (error: unknown, where: string) => void;
}

export interface RunOnceResult {
  events: number;
  partitions: number;
  /** Partitions another live owner holds (it drains them). */
  skipped: number;
}

interface Owned {
  lease: Lease;
  /** Last known checkpoint position; null = read it from the table. */
  position: number | null;
  /** By our clock, no write under this lease after this instant unless renewed. */
  deadlineMs: number;
  retryAtMs: number;
  backoffMs: number;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class Projector {
  readonly owner: string;
  private readonly leaseSeconds: number;
  private readonly idleSleepMs: number;
  private readonly partitionsConcurrent: number;
  private readonly engine: ProjectionEngine;
  private readonly owned = new Map<string, Owned>();
  private readonly knownTenants = new Set<string>();
  private running: Promise<void> | null = null;
  private stopping = false;
  private wake: (() => void) | null = null;

  constructor(
    private readonly pool: Pool,
    private readonly store: EventStore,
    private readonly options: ProjectorOptions = {},
  ) {
    this.owner = options.owner ?? `${hostname()}-${process.pid}-${newId().slice(0, 8)}`;
    this.leaseSeconds = options.leaseSeconds ?? LEASE_SECONDS_DEFAULT;
    this.idleSleepMs = options.idleSleepMs ?? PROJECTION_IDLE_SLEEP_MS_DEFAULT;
    this.partitionsConcurrent = options.partitionsConcurrent ?? PROJECTION_PARTITIONS_CONCURRENT_DEFAULT;
    assert(this.owner.length > 0 && this.owner.length <= 128, 'projector owner must be 1-128 chars');
    assert(
      Number.isSafeInteger(this.leaseSeconds) &&
        this.leaseSeconds >= 1 &&
        this.leaseSeconds <= LEASE_SECONDS_MAX,
      `leaseSeconds must be 1..${LEASE_SECONDS_MAX}`,
    );
    assert(
      this.idleSleepMs >= 1 && this.idleSleepMs <= PROJECTION_IDLE_SLEEP_MS_MAX,
      `idleSleepMs must be 1..${PROJECTION_IDLE_SLEEP_MS_MAX}`,
    );
    assert(
      Number.isSafeInteger(this.partitionsConcurrent) &&
        this.partitionsConcurrent >= 1 &&
        this.partitionsConcurrent <= PROJECTION_PARTITIONS_CONCURRENT_MAX,
      `partitionsConcurrent must be 1..${PROJECTION_PARTITIONS_CONCURRENT_MAX}`,
    );
    this.engine = new ProjectionEngine(pool, store, LIVE_TABLES, {
      batchEvents: options.batchEvents ?? PROJECTION_BATCH_EVENTS_MAX,
      hooks: options.hooks,
      timeZoneOf: options.timeZoneOf,
    });
  }

  /** Starts the loop in the background; stop() ends it. */
  start(): void {
    if (this.running !== null) return;
    this.stopping = false;
    this.running = this.loop();
  }

  /** Graceful: the batches in flight finish (or roll back), then every lease is released. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    await this.running;
    this.running = null;
    await releaseAllLeases(this.pool, this.owner).catch((error: unknown) => this.report(error, 'release'));
    await leaveInstances(this.pool, this.owner).catch((error: unknown) => this.report(error, 'leave'));
    this.owned.clear();
  }

  /**
   * Drains every partition of every tenant once, up to the heads seen now, under a lease per partition
   * (taken here and released after; a partition another live owner holds is skipped: that owner drains it).
   * An error propagates, as a crash would: the failed batch rolled back, its lease stays until it expires
   * or this owner id takes it again.
   */
  async runOnce(): Promise<RunOnceResult> {
    assert(this.running === null, 'runOnce while the loop runs');
    const work: { tenantId: string; partition: number }[] = [];
    for (const tenantId of await this.store.listTenants()) {
      await this.ensureTenant(tenantId);
      for (let partition = 0; partition < this.store.partitions; partition++)
        work.push({ tenantId, partition });
    }
    let events = 0;
    let skipped = 0;
    await forEachLimited(work, this.partitionsConcurrent, async ({ tenantId, partition }) => {
      const lease = await tryAcquireLease(this.pool, tenantId, partition, this.owner, this.leaseSeconds);
      if (lease === null) {
        skipped += 1;
        return;
      }
      const fence = { owner: this.owner, token: lease.token, leaseSeconds: this.leaseSeconds };
      for (;;) {
        const result = await this.engine.drain(tenantId, partition, fence, PROJECTION_BATCHES_PER_TURN);
        events += result.events;
        if (!result.more) break;
      }
      await releaseLease(this.pool, lease, this.owner);
    });
    return { events, partitions: work.length - skipped, skipped };
  }

  /** Partitions this process holds now (for status and tests). */
  ownedPartitions(): { tenantId: string; partition: number; token: number }[] {
    return [...this.owned.values()].map(({ lease }) => ({ ...lease }));
  }

  private async ensureTenant(tenantId: string): Promise<void> {
    if (this.knownTenants.has(tenantId)) return;
    await ensureLeaseRows(this.pool, tenantId, this.store.partitions);
    await this.engine.ensureTenant(tenantId);
    this.knownTenants.add(tenantId);
  }

  private report(error: unknown, where: string): void {
    if (this.options.onError) this.options.onError(error, where);
    else console.error(`projector ${this.owner}: ${where}:`, loggableError(error));
  }

  private async loop(): Promise<void> {
    const tickMs = Math.max(200, Math.floor((this.leaseSeconds * 1000) / 3));
    let nextTickMs = 0;
    let backoffMs = ERROR_BACKOFF_MS_MIN;
    while (!this.stopping) {
      try {
        if (Date.now() >= nextTickMs) {
          await this.tick();
          nextTickMs = Date.now() + tickMs;
        }
        const worked = await this.round();
        backoffMs = ERROR_BACKOFF_MS_MIN;
        if (!worked) await this.idle(this.idleSleepMs);
      } catch (error) {
        this.report(error, 'loop');
        await this.idle(backoffMs);
        backoffMs = Math.min(backoffMs * 2, ERROR_BACKOFF_MS_MAX);
      }
    }
  }

  private async idle(ms: number): Promise<void> {
    if (this.stopping) return;
    await Promise.race([sleep(ms), new Promise<void>((resolve) => (this.wake = resolve))]);
    this.wake = null;
  }

  /** Heartbeat, renewal, and taking or giving back leases towards this process's fair share. */
  private async tick(): Promise<void> {
    const renewStartedMs = Date.now();
    const live = await heartbeat(this.pool, this.owner, this.leaseSeconds);
    const tenants = await this.store.listTenants();
    for (const tenantId of tenants) await this.ensureTenant(tenantId);

    const held = new Map(
      (await renewLeases(this.pool, this.owner, this.leaseSeconds)).map((lease) => [
        leaseKey(lease.tenantId, lease.partition),
        lease,
      ]),
    );
    for (const [key, owned] of this.owned) {
      const lease = held.get(key);
      if (lease === undefined || lease.token !== owned.lease.token) this.owned.delete(key);
      else owned.deadlineMs = renewStartedMs + this.leaseSeconds * 1000 - LEASE_SAFETY_MARGIN_MS;
    }
    // A lease row naming us that we do not track (e.g. a rebuild handed it back to nobody, or a restart
    // with the same owner id) is taken properly, with a new token, or given up.
    for (const [key, lease] of held) {
      if (!this.owned.has(key)) await releaseLease(this.pool, lease, this.owner);
    }

    // Each tenant's partitions are shared out on their own: a share of all partitions together could be
    // every partition of one tenant, and then a busy tenant's whole load would fall on one process.
    const share = Math.ceil(this.store.partitions / live);
    const ownedOf = new Map<string, [string, Owned][]>(tenants.map((tenantId) => [tenantId, []]));
    for (const entry of this.owned) ownedOf.get(entry[1].lease.tenantId)?.push(entry);
    for (const tenantId of tenants) {
      const owned = ownedOf.get(tenantId)!;
      if (owned.length > share) {
        const extra = owned.sort(([a], [b]) => (a < b ? 1 : -1)).slice(0, owned.length - share);
        for (const [key, { lease }] of extra) {
          this.owned.delete(key);
          await releaseLease(this.pool, lease, this.owner);
        }
        continue;
      }
      const candidates: number[] = [];
      for (let partition = 0; partition < this.store.partitions; partition++) {
        if (!this.owned.has(leaseKey(tenantId, partition))) candidates.push(partition);
      }
      // Start at a random place so processes starting together do not all ask for the same rows first.
      const offset = Math.floor(Math.random() * candidates.length);
      let held = owned.length;
      for (let index = 0; index < candidates.length && held < share; index++) {
        const partition = candidates[(index + offset) % candidates.length]!;
        const acquiredAtMs = Date.now();
        const lease = await tryAcquireLease(this.pool, tenantId, partition, this.owner, this.leaseSeconds);
        if (lease === null) continue;
        held += 1;
        this.owned.set(leaseKey(tenantId, partition), {
          lease,
          position: null,
          deadlineMs: acquiredAtMs + this.leaseSeconds * 1000 - LEASE_SAFETY_MARGIN_MS,
          retryAtMs: 0,
          backoffMs: ERROR_BACKOFF_MS_MIN,
        });
      }
    }
  }

  /** One pass over the partitions held: returns whether any events were applied. */
  private async round(): Promise<boolean> {
    const now = Date.now();
    const byTenant = new Map<string, Owned[]>();
    for (const owned of this.owned.values()) {
      if (owned.deadlineMs <= now || owned.retryAtMs > now) continue;
      const list = byTenant.get(owned.lease.tenantId) ?? [];
      list.push(owned);
      byTenant.set(owned.lease.tenantId, list);
    }
    const due: Owned[] = [];
    for (const [tenantId, list] of byTenant) {
      const heads = new Map(
        (await this.store.partitionHeads(tenantId)).map((head) => [head.partition, head.position]),
      );
      for (const owned of list) {
        const head = heads.get(owned.lease.partition);
        // Unknown position (just acquired, or after an error) or a head ahead of it: there is work.
        if (owned.position === null || head === undefined || head > owned.position) due.push(owned);
      }
    }
    let applied = 0;
    await forEachLimited(due, this.partitionsConcurrent, async (owned) => {
      if (this.stopping) return;
      const key = leaseKey(owned.lease.tenantId, owned.lease.partition);
      const startedMs = Date.now();
      try {
        const result = await this.engine.drain(
          owned.lease.tenantId,
          owned.lease.partition,
          { owner: this.owner, token: owned.lease.token, leaseSeconds: this.leaseSeconds },
          PROJECTION_BATCHES_PER_TURN,
        );
        applied += result.events;
        // A committed batch renewed the lease in its own statement.
        if (result.events > 0)
          owned.deadlineMs = Math.max(
            owned.deadlineMs,
            startedMs + this.leaseSeconds * 1000 - LEASE_SAFETY_MARGIN_MS,
          );
        owned.position = result.more ? null : result.position;
        if (result.more) applied += result.events === 0 ? 1 : 0;
        owned.backoffMs = ERROR_BACKOFF_MS_MIN;
      } catch (error) {
        owned.position = null;
        if (error instanceof LeaseLostError) {
          this.owned.delete(key);
          return;
        }
        if (error instanceof CheckpointMovedError) return;
        this.report(error, `partition ${key.replace('\u001f', '/')}`);
        owned.retryAtMs = Date.now() + owned.backoffMs;
        owned.backoffMs = Math.min(owned.backoffMs * 2, ERROR_BACKOFF_MS_MAX);
      }
    });
    return applied > 0;
  }
}
