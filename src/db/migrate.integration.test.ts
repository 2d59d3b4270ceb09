import type { RowDataPacket } from 'mysql2/promise';
import { describe, expect, it } from 'vitest';
import { createTestDatabase, useTestDatabase } from '../../test/helpers/database.ts';
import { withSchemaFromNewerBuild } from '../../test/helpers/schema.ts';
import { latestVersion, migrate, schemaMismatch, schemaServes } from './migrate.ts';
import { migrations } from './migrations/index.ts';
import { statementText } from './migrations/migration.ts';
import type { Pool } from './pool.ts';

const database = useTestDatabase({ migrate: false });

describe('schema migrations', () => {
  it('creates the schema on an empty database and reports it current', async () => {
    expect(await schemaServes(database.current.pool)).toBe(false);
    expect(await schemaMismatch(database.current.pool)).toMatch(/run `ledger db migrate` first/);
    const result = await migrate(database.current.pool);
    expect(result.applied).toEqual(migrations.map((m) => m.version));
    expect(await schemaServes(database.current.pool)).toBe(true);
    expect(await schemaMismatch(database.current.pool)).toBeNull();
  });

  it('is idempotent: a second run applies nothing and changes nothing', async () => {
    const result = await migrate(database.current.pool);
    expect(result.applied).toEqual([]);
    expect(result.current).toBe(latestVersion());
  });

  it('a schema migrated by a newer build still serves this one (a rollout keeps the old pods ready), but the audit and export want their own version', async () => {
    const pool = database.current.pool;
    await withSchemaFromNewerBuild(pool, async (newer) => {
      expect(await schemaServes(pool)).toBe(true);
      expect(await schemaMismatch(pool)).toBe(
        `the schema is at version ${newer}, newer than this build's ${latestVersion()}; run the newer build`,
      );
      // This build's migrate still has nothing to do.
      expect((await migrate(pool)).applied).toEqual([]);
    });
  });

  it('runs safely from several processes at once', async () => {
    const results = await Promise.all([migrate(database.current.pool), migrate(database.current.pool)]);
    expect(results.flatMap((r) => r.applied)).toEqual([]);
  });

  it('refuses a migration whose text changed after it was applied', async () => {
    const changed = migrations.map((m) =>
      m.version === 1 ? { ...m, statements: [...m.statements, 'SELECT 1'] } : m,
    );
    await expect(migrate(database.current.pool, changed)).rejects.toThrow(/changed after it was applied/);
  });

  it.each(migrations.map((m) => [m.version, m.name, m] as const))(
    'migration %i (%s) creates its tables',
    async (_v, _n, m) => {
      const [rows] = await database.current.pool.query<RowDataPacket[]>(
        'SELECT table_name AS t FROM information_schema.tables WHERE table_schema = DATABASE()',
      );
      const tables = new Set(rows.map((r) => String(r['t'])));
      for (const statement of m.statements) {
        const match = /CREATE TABLE IF NOT EXISTS (\w+)/.exec(statementText(statement));
        if (match) expect(tables.has(match[1]!)).toBe(true);
      }
    },
  );
});

async function indexesOf(pool: Pool, table: string): Promise<Record<string, string>> {
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT index_name AS i, GROUP_CONCAT(column_name ORDER BY seq_in_index) AS c FROM information_schema.statistics
     WHERE table_schema = DATABASE() AND table_name = ? GROUP BY index_name`,
    [table],
  );
  return Object.fromEntries(rows.map((r) => [String(r['i']), String(r['c'])]));
}

describe('migration 6: the ledger entries time index carries the per-store columns', () => {
  const coveringIndex = 'tenant_id,at,store_id,kind,partition_no,position,points';

  /** A fresh database migrated by the release before: versions 1-5. */
  async function atVersion5(fn: (pool: Pool) => Promise<void>): Promise<void> {
    const database = await createTestDatabase({ migrate: false });
    try {
      await migrate(
        database.pool,
        migrations.filter((m) => m.version <= 5),
      );
      await fn(database.pool);
    } finally {
      await database.drop();
    }
  }

  it('upgrades a version-5 schema with entries in it, and a rerun changes nothing', async () => {
    await atVersion5(async (pool) => {
      expect((await indexesOf(pool, 'ledger_entries'))['ledger_entries_by_time']).toBe('tenant_id,at');
      await pool.query(
        `INSERT INTO ledger_entries (tenant_id, member_id, stream_version, movement_no, entry_id, partition_no, position,
           event_type, at, kind, points, balance_after, store_id)
         VALUES ('t', 'm', 2, 0, 'e', 3, 7, 'PurchaseRecorded', '2026-03-01 02:00:00.000', 'earned', 120, 120, 's1')`,
      );
      expect((await migrate(pool)).applied).toEqual([6]);
      const indexes = await indexesOf(pool, 'ledger_entries');
      expect(indexes['ledger_entries_by_time_store']).toBe(coveringIndex);
      expect(indexes['ledger_entries_by_time']).toBeUndefined();
      expect((await migrate(pool)).applied).toEqual([]);
      const [rows] = await pool.query<RowDataPacket[]>('SELECT points FROM ledger_entries');
      expect(rows.map((r) => Number(r['points']))).toEqual([120]);
    });
  });

  it('finishes after a crash between its two statements: the guarded ADD INDEX is skipped, the DROP runs', async () => {
    await atVersion5(async (pool) => {
      // What the first statement left behind before the process died.
      await pool.query(
        `ALTER TABLE ledger_entries ADD INDEX ledger_entries_by_time_store (${coveringIndex})`,
      );
      expect((await migrate(pool)).applied).toEqual([6]);
      const indexes = await indexesOf(pool, 'ledger_entries');
      expect(indexes['ledger_entries_by_time_store']).toBe(coveringIndex);
      expect(indexes['ledger_entries_by_time']).toBeUndefined();
    });
  });
});
