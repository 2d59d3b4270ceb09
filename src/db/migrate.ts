import { createHash } from 'node:crypto';
import type { RowDataPacket } from 'mysql2/promise';
import { migrations as allMigrations } from './migrations/index.ts';
import { statementText, type Migration } from './migrations/migration.ts';
import type { Pool } from './pool.ts';

/** How long a second migrator waits for the first (several pods starting at once). */
const MIGRATION_LOCK_WAIT_SECONDS = 120;
const MIGRATION_LOCK_NAME = 'points_ledger_migrate';

export function migrationChecksum(migration: Migration): string {
  return createHash('sha256').update(migration.statements.map(statementText).join('\n;\n')).digest('hex');
}

export interface MigrateResult {
  applied: number[];
  current: number;
}

/**
 * Creates or upgrades the schema. Idempotent: applied migrations are skipped, and one whose text changed
 * since it was applied stops the run (a schema is never silently different from the code's idea of it).
 * A named lock serialises migrators; every statement is itself idempotent, so a crash midway is safe to rerun.
 */
export async function migrate(
  pool: Pool,
  migrations: readonly Migration[] = allMigrations,
): Promise<MigrateResult> {
  const connection = await pool.getConnection();
  try {
    const [lockRows] = await connection.query<RowDataPacket[]>('SELECT GET_LOCK(?, ?) AS locked', [
      MIGRATION_LOCK_NAME,
      MIGRATION_LOCK_WAIT_SECONDS,
    ]);
    if (Number(lockRows[0]?.['locked']) !== 1) throw new Error('could not take the migration lock');
    try {
      await connection.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
        version INT UNSIGNED NOT NULL PRIMARY KEY,
        name VARCHAR(128) NOT NULL,
        checksum CHAR(64) NOT NULL,
        applied_at DATETIME(3) NOT NULL
      ) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
      const [rows] = await connection.query<RowDataPacket[]>(
        'SELECT version, checksum FROM schema_migrations',
      );
      const appliedChecksums = new Map(rows.map((row) => [Number(row['version']), String(row['checksum'])]));
      const applied: number[] = [];
      for (const migration of migrations) {
        const checksum = migrationChecksum(migration);
        const existing = appliedChecksums.get(migration.version);
        if (existing !== undefined) {
          if (existing !== checksum) {
            throw new Error(
              `migration ${migration.version} (${migration.name}) changed after it was applied`,
            );
          }
          continue;
        }
        for (const statement of migration.statements) {
          if (typeof statement === 'string') {
            await connection.query(statement);
            continue;
          }
          const [done] = await connection.query<RowDataPacket[]>(statement.skipWhen);
          if (done.length === 0) await connection.query(statement.sql);
        }
        await connection.query(
          'INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (?, ?, ?, UTC_TIMESTAMP(3))',
          [migration.version, migration.name, checksum],
        );
        applied.push(migration.version);
      }
      return { applied, current: latestVersion(migrations) };
    } finally {
      await connection.query('SELECT RELEASE_LOCK(?)', [MIGRATION_LOCK_NAME]);
    }
  } finally {
    connection.release();
  }
}

export function latestVersion(migrations: readonly Migration[] = allMigrations): number {
  return migrations.reduce((max, m) => Math.max(max, m.version), 0);
}

/** The schema's version (the highest migration applied), or null when the database or the table cannot be read. */
export async function schemaVersion(pool: Pool): Promise<number | null> {
  try {
    const [rows] = await pool.query<RowDataPacket[]>('SELECT MAX(version) AS v FROM schema_migrations');
    return Number(rows[0]?.['v'] ?? 0);
  } catch {
    return null;
  }
}

/**
 * For /readyz: can this build serve on the schema? Yes at its own version and at a newer one: every
 * migration keeps the release before it working (docs/operations.md, "Upgrades"), so the migration Job of
 * a rollout does not take the old pods out of service before the new ones are ready.
 */
export async function schemaServes(pool: Pool): Promise<boolean> {
  const version = await schemaVersion(pool);
  return version !== null && version >= latestVersion();
}

/**
 * For the audit and the export, which prove what the schema holds: null when the schema is exactly this
 * build's, else why not (not migrated yet, or migrated by a newer build that should run them instead).
 */
export async function schemaMismatch(pool: Pool): Promise<string | null> {
  const version = await schemaVersion(pool);
  const expected = latestVersion();
  if (version === expected) return null;
  if (version === null) return 'the schema cannot be read; run `ledger db migrate` first';
  if (version < expected)
    return `the schema is at version ${version}, this build needs ${expected}; run \`ledger db migrate\` first`;
  return `the schema is at version ${version}, newer than this build's ${expected}; run the newer build`;
}
