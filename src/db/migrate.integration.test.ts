import type { RowDataPacket } from 'mysql2/promise';
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../test/helpers/database.ts';
import { latestVersion, migrate, schemaIsCurrent } from './migrate.ts';
import { migrations } from './migrations/index.ts';

const database = useTestDatabase({ migrate: false });

describe('schema migrations', () => {
  it('creates the schema on an empty database and reports it current', async () => {
    expect(await schemaIsCurrent(database.current.pool)).toBe(false);
    const result = await migrate(database.current.pool);
    expect(result.applied).toEqual(migrations.map((m) => m.version));
    expect(await schemaIsCurrent(database.current.pool)).toBe(true);
  });

  it('is idempotent: a second run applies nothing and changes nothing', async () => {
    const result = await migrate(database.current.pool);
    expect(result.applied).toEqual([]);
    expect(result.current).toBe(latestVersion());
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
        const match = /CREATE TABLE IF NOT EXISTS (\w+)/.exec(statement);
        if (match) expect(tables.has(match[1]!)).toBe(true);
      }
    },
  );
});
