import type { Migration } from './migration.ts';

/**
 * The SQL event store (DESIGN.md, "Ordering without a global lock").
 * - events: append-only; tenant leads every key; (tenant, partition, position) is the log order,
 *   positions taken under the partition's counter row lock so commit order = position order.
 *   data/metadata are TEXT, not JSON: TiDB's JSON type re-encodes documents, and the hash chain
 *   covers the exact stored bytes.
 * - streams: one row a stream: its head (version, last hash) and the command-side snapshot, written
 *   in the append transaction and guarded by the version.
 * - log_partitions: the per-partition position counter and the head of the partition hash chain.
 * - commands: one row per command id (Idempotency-Key), with the response to replay.
 * - unique_keys: business keys unique within a tenant (order ids, refund ids, phones...).
 */
export const migration001: Migration = {
  version: 1,
  name: 'event-store',
  statements: [
    `CREATE TABLE IF NOT EXISTS events (
      tenant_id VARCHAR(64) NOT NULL,
      partition_no SMALLINT UNSIGNED NOT NULL,
      position BIGINT UNSIGNED NOT NULL,
      stream_id VARCHAR(128) NOT NULL,
      stream_version INT UNSIGNED NOT NULL,
      event_id CHAR(36) NOT NULL,
      event_type VARCHAR(64) NOT NULL,
      data MEDIUMTEXT NOT NULL,
      metadata TEXT NOT NULL,
      recorded_at DATETIME(3) NOT NULL,
      stream_hash CHAR(64) NOT NULL,
      partition_hash CHAR(64) NOT NULL,
      PRIMARY KEY (tenant_id, partition_no, position),
      UNIQUE KEY events_by_stream (tenant_id, stream_id, stream_version),
      UNIQUE KEY events_by_id (tenant_id, event_id)
    ) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`,
    `CREATE TABLE IF NOT EXISTS streams (
      tenant_id VARCHAR(64) NOT NULL,
      stream_id VARCHAR(128) NOT NULL,
      partition_no SMALLINT UNSIGNED NOT NULL,
      version INT UNSIGNED NOT NULL,
      last_hash CHAR(64) NOT NULL,
      snapshot_schema INT UNSIGNED NULL,
      snapshot MEDIUMTEXT NULL,
      updated_at DATETIME(3) NOT NULL,
      PRIMARY KEY (tenant_id, stream_id)
    ) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`,
    `CREATE TABLE IF NOT EXISTS log_partitions (
      tenant_id VARCHAR(64) NOT NULL,
      partition_no SMALLINT UNSIGNED NOT NULL,
      next_position BIGINT UNSIGNED NOT NULL,
      last_hash CHAR(64) NOT NULL,
      PRIMARY KEY (tenant_id, partition_no)
    ) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`,
    `CREATE TABLE IF NOT EXISTS commands (
      tenant_id VARCHAR(64) NOT NULL,
      command_id VARCHAR(160) NOT NULL,
      request_hash CHAR(64) NOT NULL,
      stream_id VARCHAR(128) NOT NULL,
      first_version INT UNSIGNED NOT NULL,
      event_count INT UNSIGNED NOT NULL,
      response_status SMALLINT UNSIGNED NULL,
      response_body MEDIUMTEXT NULL,
      recorded_at DATETIME(3) NOT NULL,
      PRIMARY KEY (tenant_id, command_id)
    ) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`,
    `CREATE TABLE IF NOT EXISTS unique_keys (
      tenant_id VARCHAR(64) NOT NULL,
      unique_key VARCHAR(255) NOT NULL,
      stream_id VARCHAR(128) NOT NULL,
      command_id VARCHAR(160) NULL,
      PRIMARY KEY (tenant_id, unique_key)
    ) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`,
  ],
};
