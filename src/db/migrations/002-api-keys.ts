import type { Migration } from './migration.ts';

/**
 * API keys: only a sha256 of the secret is stored (keys are 256-bit random, so a slow hash buys nothing).
 * The key string carries its tenant and key id, so the lookup is by primary key with the tenant leading.
 */
export const migration002: Migration = {
  version: 2,
  name: 'api-keys',
  statements: [
    `CREATE TABLE IF NOT EXISTS api_keys (
      tenant_id VARCHAR(64) NOT NULL,
      key_id CHAR(16) NOT NULL,
      secret_sha256 CHAR(64) NOT NULL,
      role VARCHAR(16) NOT NULL,
      stores TEXT NOT NULL,
      created_at DATETIME(3) NOT NULL,
      revoked_at DATETIME(3) NULL,
      PRIMARY KEY (tenant_id, key_id)
    ) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`,
  ],
};
