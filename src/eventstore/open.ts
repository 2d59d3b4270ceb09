import type { Pool } from '../db/pool.ts';
import type { EventStore } from './port.ts';
import { SqlEventStore, type SqlEventStoreOptions } from './sql/sql-event-store.ts';

/**
 * The one place that chooses an event store adapter (LEDGER_EVENT_STORE): 'sql' keeps the events in the SQL database
 * behind `pool`; an esdb:// or kurrentdb:// connection string (optionally +discover) keeps them in EventStoreDB, with
 * command ids, unique keys and snapshots still in the SQL database behind `pool` (docs/eventstore-esdb.md).
 * The pool stays the caller's; close() on the store releases only what the store opened.
 * The EventStoreDB adapter is imported only when asked for: its gRPC client takes about 0.3 s to load, which
 * every CLI run, API start and audit unit process on the SQL store would otherwise pay for nothing.
 * `observeTransaction` is told of each append transaction on the SQL store; the EventStoreDB adapter has none.
 */
export async function openEventStore(
  config: { eventStore: string },
  pool: Pool,
  sqlOptions: Pick<SqlEventStoreOptions, 'observeTransaction'> = {},
): Promise<EventStore> {
  if (config.eventStore === 'sql') return new SqlEventStore(pool, sqlOptions);
  if (/^(esdb|kurrentdb)(\+discover)?:\/\//.test(config.eventStore)) {
    const { EsdbEventStore } = await import('./esdb/esdb-event-store.ts');
    return EsdbEventStore.connect(config.eventStore, pool);
  }
  throw new Error(`LEDGER_EVENT_STORE must be 'sql' or an esdb:// / kurrentdb:// connection string`);
}
