import { KeyVerifier } from './auth/keys.ts';
import { clockFromConfig, type Clock } from './clock.ts';
import { CommandRunner } from './commands/run-command.ts';
import { TenantDirectory } from './commands/tenants.ts';
import type { Config } from './config.ts';
import { migrate } from './db/migrate.ts';
import { openPool, type Pool } from './db/pool.ts';
import { openEventStore } from './eventstore/open.ts';
import type { EventStore } from './eventstore/port.ts';
import { Metrics } from './api/plugins/metrics.ts';
import { updateProjectionLagGauge } from './projections/status.ts';

/**
 * Everything a ledger process holds: one pool, one event store, one clock, one command runner.
 * The CLI verbs and the tests open it the same way.
 */
export interface Runtime {
  readonly config: Config;
  readonly pool: Pool;
  readonly store: EventStore;
  readonly clock: Clock;
  readonly keys: KeyVerifier;
  readonly metrics: Metrics;
  readonly runner: CommandRunner;
  readonly tenants: TenantDirectory;
  refreshProjectionLag(): Promise<void>;
  close(): Promise<void>;
}

export interface RuntimeOptions {
  clock?: Clock;
  /** Run migrations first (start, tests); serve/project expect a migrated schema. */
  migrate?: boolean;
}

export async function openRuntime(config: Config, options: RuntimeOptions = {}): Promise<Runtime> {
  const pool = await openPool(config.databaseUrl);
  try {
    if (options.migrate) await migrate(pool);
    const clock = options.clock ?? clockFromConfig(config.clockStart);
    const metrics = new Metrics();
    const store = await openEventStore(config, pool, {
      observeTransaction: ({ requests, seconds, oneRoundTrip }) => {
        metrics.appendBatchRequests.observe(requests);
        metrics.appendTransactionDuration.observe({ round_trips: oneRoundTrip ? '1' : '2' }, seconds);
      },
    });
    const runner = new CommandRunner(store, clock);
    return {
      config,
      pool,
      store,
      clock,
      keys: new KeyVerifier(pool),
      metrics,
      runner,
      tenants: new TenantDirectory(store, runner, clock),
      refreshProjectionLag: async () => {
        await updateProjectionLagGauge(metrics.projectionLag, pool, store);
      },
      async close() {
        await runner.drain();
        await store.close();
        await pool.end();
      },
    };
  } catch (error) {
    await pool.end();
    throw error;
  }
}
