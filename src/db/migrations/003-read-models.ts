import type { Migration } from './migration.ts';

/**
 * Read models and the projector's bookkeeping (docs/projections.md). Every statement runs on TiDB >= 7.5,
 * MySQL 8.0 and MariaDB 10.11: no foreign keys, triggers or procedures; tenant_id leads every key.
 *
 * Swapped as one set by a rebuild (RENAME TABLE), so a reader never sees a half-built model:
 *   member_accounts, member_lots, member_holds, ledger_entries, store_daily_totals, tenant_totals,
 *   member_category_purchases, member_tags, projection_checkpoints.
 * Not swapped (they describe who works, not what was applied):
 *   projection_leases, projector_instances, projection_rebuilds, tag_rules, tag_rule_sets.
 *
 * Points columns are signed BIGINT (a balance may be in debt; finance movement columns are signed like
 * the export's). Times are DATETIME(3) in UTC. Rows shared by partitions (per store and day, per tenant
 * account) carry partition_no in their key, so two partitions' projectors never wait on each other's rows;
 * readers add the partitions up.
 */
export const migration003: Migration = {
  version: 3,
  name: 'read-models',
  statements: [
    // The projector's position per (tenant, partition): the last log position applied. It commits in
    // the same transaction as the rows it describes; it is the only record of progress.
    `CREATE TABLE IF NOT EXISTS projection_checkpoints (
      tenant_id VARCHAR(64) NOT NULL,
      partition_no SMALLINT UNSIGNED NOT NULL,
      position BIGINT UNSIGNED NOT NULL,
      events_applied BIGINT UNSIGNED NOT NULL,
      tags_version INT UNSIGNED NOT NULL,
      tags_target_version INT UNSIGNED NULL,
      tags_cursor VARCHAR(128) NULL,
      updated_at DATETIME(3) NOT NULL,
      PRIMARY KEY (tenant_id, partition_no)
    ) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`,
    // Who may write a partition's read-model rows, until when. fencing_token goes up on every change of
    // hands; the batch's checkpoint UPDATE names it, so a deposed owner's batch updates 0 rows and rolls back.
    `CREATE TABLE IF NOT EXISTS projection_leases (
      tenant_id VARCHAR(64) NOT NULL,
      partition_no SMALLINT UNSIGNED NOT NULL,
      owner VARCHAR(128) NOT NULL,
      fencing_token BIGINT UNSIGNED NOT NULL,
      expires_at DATETIME(3) NOT NULL,
      PRIMARY KEY (tenant_id, partition_no),
      KEY projection_leases_by_owner (owner)
    ) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`,
    // Live projector processes (heartbeat), so each can take its fair share of the partitions.
    `CREATE TABLE IF NOT EXISTS projector_instances (
      owner VARCHAR(128) NOT NULL,
      started_at DATETIME(3) NOT NULL,
      expires_at DATETIME(3) NOT NULL,
      PRIMARY KEY (owner)
    ) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`,
    // At most one rebuild at a time.
    `CREATE TABLE IF NOT EXISTS projection_rebuilds (
      lock_name VARCHAR(32) NOT NULL,
      owner VARCHAR(128) NOT NULL,
      phase VARCHAR(16) NOT NULL,
      started_at DATETIME(3) NOT NULL,
      expires_at DATETIME(3) NOT NULL,
      PRIMARY KEY (lock_name)
    ) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`,
    // One row per member. balance = the last event's balanceAfter = the sum of the six lifetime columns
    // (signed like the finance export's movement columns). held = points of holds no event has ended
    // yet; what a till may spend is balance - (holds in member_holds with expires_at > now).
    `CREATE TABLE IF NOT EXISTS member_accounts (
      tenant_id VARCHAR(64) NOT NULL,
      member_id VARCHAR(128) NOT NULL,
      partition_no SMALLINT UNSIGNED NOT NULL,
      phone_masked VARCHAR(32) NOT NULL,
      phone_sha256 CHAR(64) NOT NULL,
      tier VARCHAR(32) NOT NULL,
      registered_store_id VARCHAR(128) NOT NULL,
      channel VARCHAR(16) NOT NULL,
      balance BIGINT NOT NULL,
      held BIGINT NOT NULL,
      earned_points BIGINT NOT NULL,
      redeemed_points BIGINT NOT NULL,
      expired_points BIGINT NOT NULL,
      adjusted_points BIGINT NOT NULL,
      reversed_points BIGINT NOT NULL,
      restored_points BIGINT NOT NULL,
      version INT UNSIGNED NOT NULL,
      last_event_hash CHAR(64) NOT NULL,
      registered_at DATETIME(3) NOT NULL,
      updated_at DATETIME(3) NOT NULL,
      PRIMARY KEY (tenant_id, member_id),
      KEY member_accounts_by_phone (tenant_id, phone_sha256)
    ) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`,
    // Open lots only: a lot whose remaining reaches 0 is deleted. Sum of remaining = balance when >= 0.
    `CREATE TABLE IF NOT EXISTS member_lots (
      tenant_id VARCHAR(64) NOT NULL,
      member_id VARCHAR(128) NOT NULL,
      lot_id VARCHAR(128) NOT NULL,
      points BIGINT NOT NULL,
      remaining BIGINT NOT NULL,
      expires_at DATETIME(3) NOT NULL,
      earned_at DATETIME(3) NOT NULL,
      PRIMARY KEY (tenant_id, member_id, lot_id),
      KEY member_lots_by_expiry (tenant_id, expires_at)
    ) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`,
    // Holds no event has ended. An expired hold stays until the member's next command releases it, but
    // holds count only while expires_at > now.
    `CREATE TABLE IF NOT EXISTS member_holds (
      tenant_id VARCHAR(64) NOT NULL,
      member_id VARCHAR(128) NOT NULL,
      hold_id VARCHAR(128) NOT NULL,
      order_id VARCHAR(128) NOT NULL,
      store_id VARCHAR(128) NOT NULL,
      points BIGINT NOT NULL,
      expires_at DATETIME(3) NOT NULL,
      placed_at DATETIME(3) NOT NULL,
      PRIMARY KEY (tenant_id, member_id, hold_id),
      KEY member_holds_by_expiry (tenant_id, expires_at)
    ) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`,
    // One row per points movement (the domain's movementsOf): a refund that reverses and restores gives
    // two rows, movement_no 0 and 1, entry ids '<eventId>' and '<eventId>:restored'. kind is one of
    // earned, redeemed, expired, adjusted, reversed, restored (the export's column names); event_type
    // tells a capture from a redemption. at = the ledger's recording time.
    `CREATE TABLE IF NOT EXISTS ledger_entries (
      tenant_id VARCHAR(64) NOT NULL,
      member_id VARCHAR(128) NOT NULL,
      stream_version INT UNSIGNED NOT NULL,
      movement_no TINYINT UNSIGNED NOT NULL,
      entry_id VARCHAR(64) NOT NULL,
      partition_no SMALLINT UNSIGNED NOT NULL,
      position BIGINT UNSIGNED NOT NULL,
      event_type VARCHAR(32) NOT NULL,
      at DATETIME(3) NOT NULL,
      kind VARCHAR(16) NOT NULL,
      points BIGINT NOT NULL,
      balance_after BIGINT NOT NULL,
      order_id VARCHAR(128) NULL,
      store_id VARCHAR(128) NULL,
      reason VARCHAR(500) NULL,
      PRIMARY KEY (tenant_id, member_id, stream_version, movement_no),
      KEY ledger_entries_by_time (tenant_id, at)
    ) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`,
    // Signed movements per store and local day (tenant time zone), one row per partition.
    `CREATE TABLE IF NOT EXISTS store_daily_totals (
      tenant_id VARCHAR(64) NOT NULL,
      day DATE NOT NULL,
      store_id VARCHAR(128) NOT NULL,
      partition_no SMALLINT UNSIGNED NOT NULL,
      earned_points BIGINT NOT NULL,
      redeemed_points BIGINT NOT NULL,
      reversed_points BIGINT NOT NULL,
      restored_points BIGINT NOT NULL,
      movements BIGINT NOT NULL,
      PRIMARY KEY (tenant_id, day, store_id, partition_no)
    ) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`,
    // Sum of postings per account (member, issued, redeemed, expired, adjusted, reversed, restored), one
    // row per partition; over a tenant the accounts sum to zero.
    `CREATE TABLE IF NOT EXISTS tenant_totals (
      tenant_id VARCHAR(64) NOT NULL,
      partition_no SMALLINT UNSIGNED NOT NULL,
      account VARCHAR(16) NOT NULL,
      points BIGINT NOT NULL,
      postings BIGINT NOT NULL,
      PRIMARY KEY (tenant_id, partition_no, account)
    ) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`,
    // Purchases per member and category: the count and the latest few purchase times (newest first),
    // enough to evaluate any tag rule without the history.
    `CREATE TABLE IF NOT EXISTS member_category_purchases (
      tenant_id VARCHAR(64) NOT NULL,
      member_id VARCHAR(128) NOT NULL,
      category VARCHAR(64) NOT NULL,
      partition_no SMALLINT UNSIGNED NOT NULL,
      purchases INT UNSIGNED NOT NULL,
      recent_at VARCHAR(320) NOT NULL,
      last_at DATETIME(3) NOT NULL,
      PRIMARY KEY (tenant_id, member_id, category),
      KEY member_category_purchases_by_partition (tenant_id, partition_no, member_id)
    ) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`,
    // A tag holds while expires_at > now.
    `CREATE TABLE IF NOT EXISTS member_tags (
      tenant_id VARCHAR(64) NOT NULL,
      member_id VARCHAR(128) NOT NULL,
      tag VARCHAR(160) NOT NULL,
      expires_at DATETIME(3) NOT NULL,
      updated_at DATETIME(3) NOT NULL,
      PRIMARY KEY (tenant_id, member_id, tag),
      KEY member_tags_by_tag (tenant_id, tag, expires_at)
    ) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`,
    // Tag rules are configuration, not events: set by setTagRules; the version tells projectors to
    // re-derive existing tags.
    `CREATE TABLE IF NOT EXISTS tag_rules (
      tenant_id VARCHAR(64) NOT NULL,
      category VARCHAR(64) NOT NULL,
      tag_pattern VARCHAR(128) NOT NULL,
      min_purchases SMALLINT UNSIGNED NOT NULL,
      window_days SMALLINT UNSIGNED NOT NULL,
      PRIMARY KEY (tenant_id, category, tag_pattern)
    ) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`,
    `CREATE TABLE IF NOT EXISTS tag_rule_sets (
      tenant_id VARCHAR(64) NOT NULL,
      version INT UNSIGNED NOT NULL,
      updated_at DATETIME(3) NOT NULL,
      PRIMARY KEY (tenant_id)
    ) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`,
  ],
};
