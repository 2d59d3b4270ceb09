import { indexExists, indexMissing, type Migration } from './migration.ts';

/**
 * The ledger entries' time index carries what the per-store, per-day reads need, so they read the index
 * alone instead of a primary-key lookup per entry (the entries are stored in member order, so those
 * lookups land all over the table): the audit's store-day pass (src/audit/store-day-pass.ts) and the
 * export's per-store totals (src/export/ledger-pass.ts) select store_id, kind, partition_no, position and
 * points of the entries in a time range. It replaces (tenant_id, at), which it extends.
 * Measured on the 1,000,000-event benchmarks at MariaDB's default 128 MiB buffer pool (BENCHMARKS.md):
 * the store-day pass alone took 34-37 s and 19-20 s of database CPU with the old index, 8-9 s and 5 s
 * with this one; the projector's catch-up wrote 6,461-6,568 events/s with it against 7,157-7,898 without
 * (every entry writes the wider index entry). The projector pays once per event; every audit re-reads
 * the whole history, so the audit's saving is the one that grows with the years.
 * Do not run `ledger projections rebuild` from an older version across this migration: its fresh tables
 * are made LIKE the live ones and would bring the old index back.
 */
export const migration006: Migration = {
  version: 6,
  name: 'ledger-entries-by-time-store',
  statements: [
    {
      sql: `ALTER TABLE ledger_entries ADD INDEX ledger_entries_by_time_store
        (tenant_id, at, store_id, kind, partition_no, position, points)`,
      skipWhen: indexExists('ledger_entries', 'ledger_entries_by_time_store'),
    },
    {
      sql: 'ALTER TABLE ledger_entries DROP INDEX ledger_entries_by_time',
      skipWhen: indexMissing('ledger_entries', 'ledger_entries_by_time'),
    },
  ],
};
