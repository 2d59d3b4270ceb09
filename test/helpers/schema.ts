import { latestVersion } from '../../src/db/migrate.ts';
import type { Pool } from '../../src/db/pool.ts';

/** Runs fn while the schema records one migration more than this build knows (a newer build migrated it). */
export async function withSchemaFromNewerBuild<T>(pool: Pool, fn: (newer: number) => Promise<T>): Promise<T> {
  const newer = latestVersion() + 1;
  await pool.query(
    `INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (?, 'from-a-newer-build', ?, UTC_TIMESTAMP(3))`,
    [newer, '0'.repeat(64)],
  );
  try {
    return await fn(newer);
  } finally {
    await pool.query('DELETE FROM schema_migrations WHERE version = ?', [newer]);
  }
}
