import type { Migration } from './migration.ts';

/**
 * Finance exports (docs/finance.md). One row per export that reconciled and was written:
 * - the period ([from_date, to_date) local dates in the tenant's zone, and the instants they stand for);
 * - heads: the event-store position the export is as of (JSON [{partition, position, lastHash}]), a copy
 *   of the partition heads kept outside the event store's own tables, so `ledger audit` can prove that no
 *   tail of the log was cut after an export saw it;
 * - the totals and a digest of the per-member closing column, so the next period's opening is checked
 *   member by member against this closing (docs/finance.md, "Chaining periods");
 * - the manifest's sha256.
 * Append-only like the events: a re-export of the same period adds a row.
 */
export const migration004: Migration = {
  version: 4,
  name: 'exports',
  statements: [
    `CREATE TABLE IF NOT EXISTS export_runs (
      tenant_id VARCHAR(64) NOT NULL,
      run_id CHAR(36) NOT NULL,
      from_date DATE NOT NULL,
      to_date DATE NOT NULL,
      from_at DATETIME(3) NOT NULL,
      to_at DATETIME(3) NOT NULL,
      time_zone VARCHAR(64) NOT NULL,
      exported_at DATETIME(3) NOT NULL,
      heads MEDIUMTEXT NOT NULL,
      members BIGINT NOT NULL,
      opening_points BIGINT NOT NULL,
      closing_points BIGINT NOT NULL,
      closing_digest CHAR(64) NOT NULL,
      liability_fen BIGINT NOT NULL,
      manifest_sha256 CHAR(64) NOT NULL,
      PRIMARY KEY (tenant_id, run_id),
      KEY export_runs_by_period (tenant_id, to_date, exported_at),
      KEY export_runs_by_time (tenant_id, exported_at)
    ) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`,
  ],
};
