import type { Migration } from './migration.ts';

/**
 * What an export's independent pass hands the next period's export (src/export/event-pass.ts,
 * EventPassCarry, as JSON): its running totals from the events and, per log partition, where the next
 * period's events can start. With it a monthly export reads about a month of the log instead of all of
 * it (docs/finance.md, "Cost"). Written in the same transaction as its export_runs row; a run without one
 * (older runs, or too many expiry instants to carry) makes the next export read the log from its start.
 */
export const migration005: Migration = {
  version: 5,
  name: 'export-carries',
  statements: [
    `CREATE TABLE IF NOT EXISTS export_carries (
      tenant_id VARCHAR(64) NOT NULL,
      run_id CHAR(36) NOT NULL,
      carry MEDIUMTEXT NOT NULL,
      PRIMARY KEY (tenant_id, run_id)
    ) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`,
  ],
};
