/**
 * Draining one partition into a set of read-model tables: what the live projector and a rebuild share.
 * It uses only the EventStore port (readLog, readStream), so it runs on any adapter.
 */
import { TENANT_STREAM_ID } from '../commands/streams.ts';
import type { Pool } from '../db/pool.ts';
import { TENANT_TIME_ZONE_DEFAULT } from '../domain/tenant/decider.ts';
import { isValidTimeZone } from '../domain/time.ts';
import type { EventStore, RecordedEvent } from '../eventstore/port.ts';
import {
  applyBatch,
  ensureCheckpoints,
  readCheckpoint,
  recomputeTagsStep,
  type BatchTarget,
  type Fence,
  type ProjectionHooks,
} from './batch.ts';
import { localDayFunction } from './sql-time.ts';
import type { TableNames } from './tables.ts';
import { loadTagRuleSet, tagRulesVersion, type TagRuleSet } from './tags.ts';

/** Events applied in one transaction (the bound; TiDB's 100 MiB transaction limit is far away). */
export const PROJECTION_BATCH_EVENTS_MAX = 1_000;

export interface EngineOptions {
  batchEvents: number;
  hooks?: ProjectionHooks | undefined;
  /** The tenant's time zone for per-store days; default: TenantCreated.timeZone from the tenant stream. */
  timeZoneOf?: ((tenantId: string) => Promise<string>) | undefined;
}

export interface DrainResult {
  position: number;
  events: number;
  /** True when the partition may have more to do right away. */
  more: boolean;
}

export class ProjectionEngine {
  private readonly rules = new Map<string, TagRuleSet>();
  private readonly zones = new Map<string, string>();
  private readonly dayFunctions = new Map<string, (at: string) => string>();

  constructor(
    readonly pool: Pool,
    readonly store: EventStore,
    readonly tables: TableNames,
    readonly options: EngineOptions,
  ) {
    if (
      !Number.isSafeInteger(options.batchEvents) ||
      options.batchEvents < 1 ||
      options.batchEvents > PROJECTION_BATCH_EVENTS_MAX
    ) {
      throw new RangeError(`batchEvents must be 1..${PROJECTION_BATCH_EVENTS_MAX}`);
    }
  }

  /** The tenant's tag rules; one version read per call, the rules themselves only when the version moved. */
  async rulesFor(tenantId: string): Promise<TagRuleSet> {
    const version = await tagRulesVersion(this.pool, tenantId);
    const cached = this.rules.get(tenantId);
    if (cached !== undefined && cached.version === version) return cached;
    const loaded = await loadTagRuleSet(this.pool, tenantId);
    this.rules.set(tenantId, loaded);
    return loaded;
  }

  async ensureTenant(tenantId: string): Promise<void> {
    const version = await tagRulesVersion(this.pool, tenantId);
    await ensureCheckpoints(this.pool, this.tables, tenantId, this.store.partitions, version);
  }

  /** A tenant's zone is fixed at creation (no event changes it), so it is read once per process. */
  private async zoneOf(tenantId: string): Promise<string> {
    let zone = this.zones.get(tenantId);
    if (zone === undefined) {
      zone = this.options.timeZoneOf
        ? await this.options.timeZoneOf(tenantId)
        : await this.tenantStreamZone(tenantId);
      if (!isValidTimeZone(zone)) throw new Error(`tenant ${tenantId} has an invalid time zone ${zone}`);
      this.zones.set(tenantId, zone);
    }
    return zone;
  }

  private async tenantStreamZone(tenantId: string): Promise<string> {
    const [first] = await this.store.readStream(tenantId, TENANT_STREAM_ID, { limit: 1 });
    const data = first?.type === 'TenantCreated' ? (first.data as { timeZone?: unknown }) : undefined;
    return typeof data?.timeZone === 'string' ? data.timeZone : TENANT_TIME_ZONE_DEFAULT;
  }

  async localDayFor(tenantId: string): Promise<(at: string) => string> {
    const zone = await this.zoneOf(tenantId);
    let localDay = this.dayFunctions.get(zone);
    if (localDay === undefined) this.dayFunctions.set(zone, (localDay = localDayFunction(zone)));
    return localDay;
  }

  /**
   * Applies up to maxBatches batches of one partition, starting from its stored checkpoint. A pending tag
   * re-derivation (rules changed) takes one step first. The next batch is read while the current one
   * commits (a read, so it is thrown away harmlessly if the commit fails).
   */
  async drain(
    tenantId: string,
    partition: number,
    fence: Fence | null,
    maxBatches: number,
  ): Promise<DrainResult> {
    const target: BatchTarget = {
      pool: this.pool,
      tables: this.tables,
      tenantId,
      partition,
      fence,
      hooks: this.options.hooks,
    };
    const rules = await this.rulesFor(tenantId);
    let checkpoint = await readCheckpoint(this.pool, this.tables, tenantId, partition);
    if (checkpoint === null) {
      await this.ensureTenant(tenantId);
      checkpoint = await readCheckpoint(this.pool, this.tables, tenantId, partition);
      if (checkpoint === null) throw new Error(`no checkpoint row for ${tenantId}/${partition}`);
    }
    if (checkpoint.tagsVersion !== rules.version) {
      const more = await recomputeTagsStep(target, rules);
      if (more) return { position: checkpoint.position, events: 0, more: true };
    }
    const localDay = await this.localDayFor(tenantId);
    let position = checkpoint.position;
    let applied = 0;
    let page: RecordedEvent[] = await this.store.readLog(
      tenantId,
      partition,
      position,
      this.options.batchEvents,
    );
    for (let batch = 0; batch < maxBatches && page.length > 0; batch++) {
      const full = page.length === this.options.batchEvents;
      const lastPosition = page[page.length - 1]!.position;
      const prefetch =
        full && batch + 1 < maxBatches
          ? this.store.readLog(tenantId, partition, lastPosition, this.options.batchEvents)
          : null;
      prefetch?.catch(() => undefined);
      const result = await applyBatch(target, page, position, rules, localDay);
      position = result.position;
      applied += result.events;
      if (!full) return { position, events: applied, more: false };
      if (prefetch === null) return { position, events: applied, more: true };
      page = await prefetch;
    }
    return { position, events: applied, more: page.length > 0 };
  }
}

/** Runs fn over items with at most `concurrency` in flight; the first failure is rethrown after all settle. */
export async function forEachLimited<T>(
  items: readonly T[],
  concurrency: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | null = null;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, worker));
  if (failure !== null) throw (failure as { error: unknown }).error;
}
