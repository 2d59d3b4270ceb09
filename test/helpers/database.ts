import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll } from 'vitest';
import { ChaosProxy } from '../../scripts/chaos/proxy.ts';
import { migrate } from '../../src/db/migrate.ts';
import { dropDatabase, openPool, parseDatabaseUrl, type Pool } from '../../src/db/pool.ts';

/** The server integration tests run against: the local MariaDB unless LEDGER_TEST_DATABASE_SERVER says otherwise. */
const TEST_SERVER_URL = process.env['LEDGER_TEST_DATABASE_SERVER'] ?? 'mysql://root@127.0.0.1:3306';

export interface TestDatabase {
  url: string;
  pool: Pool;
  drop(): Promise<void>;
}

/** A freshly created, migrated database of its own, so test files run in parallel and leave nothing behind. */
export async function createTestDatabase(options: { migrate?: boolean } = {}): Promise<TestDatabase> {
  const name = `pl_test_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  const url = `${TEST_SERVER_URL}/${name}`;
  const pool = await openPool(url, 50);
  if (options.migrate !== false) await migrate(pool);
  return {
    url,
    pool,
    async drop() {
      await pool.end();
      await dropDatabase(parseDatabaseUrl(url));
    },
  };
}

/** Registers beforeAll/afterAll for one database per test file; read `.current` inside tests. */
export function useTestDatabase(options: { migrate?: boolean } = {}): { readonly current: TestDatabase } {
  let database: TestDatabase | undefined;
  beforeAll(async () => {
    database = await createTestDatabase(options);
  });
  afterAll(async () => {
    await database?.drop();
  });
  return {
    get current(): TestDatabase {
      if (!database) throw new Error('the test database is created in beforeAll');
      return database;
    },
  };
}

/**
 * `url`'s database reached through a TCP proxy a test can cut, freeze and close (scripts/chaos/proxy.ts):
 * the returned url goes through it. While `refusing()` is true the proxy turns new connections away.
 */
export async function proxiedDatabase(
  url: string,
  refusing: () => boolean = () => false,
): Promise<{ proxy: ChaosProxy; url: string }> {
  const direct = new URL(url);
  const serverPort = Number(direct.port === '' ? 3306 : direct.port);
  const proxy = new ChaosProxy('database', () => (refusing() ? [] : [serverPort]));
  const proxied = new URL(url);
  proxied.port = String(await proxy.listen());
  return { proxy, url: proxied.toString() };
}
