/**
 * Projection catch-up benchmark. Pre-fills (or reuses) a history of >= 1,000,000 decider-made events
 * (scripts/generate-history.ts), empties the read models, and times the projector applying the whole log
 * from position zero. Beside it, in the same run and on the same server, it measures the raw rate of
 * 1,000-row multi-row INSERTs (one commit each) into a table shaped like ledger_entries: the ceiling
 * any projector writing rows in multi-row statements could approach. Prints both and their ratio.
 *
 *   npm run bench:projections -- [--events 1000000] [--concurrency 4] [--batch 1000] [--fresh]
 *                                [--buffer-pool-mib N]
 *   LEDGER_DATABASE_URL=mysql://root@127.0.0.1:3306/points_ledger_bench (default)
 *
 * --buffer-pool-mib sets the server's InnoDB buffer pool (SET GLOBAL, MariaDB and MySQL) for the run and
 * puts the old size back afterwards: MariaDB's default of 128 MiB holds neither the 0.9 GB log nor the read
 * models, which no production server would be sized for. The size in force is printed either way. A pool
 * grown online runs slower than the same pool set at the server's start (scripts/lib/bench.ts).
 */
import type { RowDataPacket } from 'mysql2/promise';
import { migrate } from '../src/db/migrate.ts';
import { dropDatabase, openPool, parseDatabaseUrl, sqlInt, type Pool } from '../src/db/pool.ts';
import { SqlEventStore } from '../src/eventstore/sql/sql-event-store.ts';
import { readTenantTotals } from '../src/projections/read.ts';
import { Projector } from '../src/projections/runtime.ts';
import { projectionStatus } from '../src/projections/status.ts';
import { READ_MODEL_TABLES } from '../src/projections/tables.ts';
import { setTagRules } from '../src/projections/tags.ts';
import { generateHistory } from './generate-history.ts';
import { bufferPoolBytes, withBufferPool } from './lib/bench.ts';

const TENANT = 'bench';
const RAW_ROWS = 300_000;
const RAW_ROWS_PER_STATEMENT = 1_000;
const TARGET_EVENTS_PER_SECOND = 30_000;

function argument(name: string, fallback: string): string {
  const index = process.argv.indexOf(`--${name}`);
  return index === -1 ? fallback : (process.argv[index + 1] ?? fallback);
}

async function eventCount(pool: Pool): Promise<number> {
  const [rows] = await pool.query<RowDataPacket[]>('SELECT COUNT(*) AS n FROM events WHERE tenant_id = ?', [
    TENANT,
  ]);
  return sqlInt(rows[0]?.['n']);
}

/** Raw multi-row INSERT rate of this server: RAW_ROWS rows like ledger entries, 1,000 per statement, autocommit. */
async function rawInsertRate(pool: Pool): Promise<number> {
  await pool.query('DROP TABLE IF EXISTS bench_raw_rows');
  await pool.query('CREATE TABLE bench_raw_rows LIKE ledger_entries');
  const started = performance.now();
  for (let offset = 0; offset < RAW_ROWS; offset += RAW_ROWS_PER_STATEMENT) {
    const values: unknown[] = [];
    for (let i = offset; i < offset + RAW_ROWS_PER_STATEMENT; i++) {
      const at = new Date(Date.UTC(2024, 0, 1) + i * 1000).toISOString().replace('T', ' ').replace('Z', '');
      values.push(
        TENANT,
        `member-${i % 20_000}`,
        i,
        0,
        `entry-${i}`,
        i % 16,
        i,
        'PurchaseRecorded',
        at,
        'earned',
        100,
        100 * i,
        `o-${i}`,
        `store-${i % 6000}`,
        null,
      );
    }
    await pool.query(
      `INSERT INTO bench_raw_rows (tenant_id, member_id, stream_version, movement_no, entry_id, partition_no, position, event_type, at, kind,
         points, balance_after, order_id, store_id, reason) VALUES ${Array.from({ length: RAW_ROWS_PER_STATEMENT }, () => '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').join(', ')}`,
      values,
    );
  }
  const seconds = (performance.now() - started) / 1000;
  await pool.query('DROP TABLE bench_raw_rows');
  return RAW_ROWS / seconds;
}

async function main(): Promise<void> {
  const url = process.env['LEDGER_DATABASE_URL'] ?? 'mysql://root@127.0.0.1:3306/points_ledger_bench';
  const targetEvents = Number(argument('events', '1000000'));
  const concurrency = Number(argument('concurrency', '4'));
  const batch = Number(argument('batch', '1000'));
  if (process.argv.includes('--fresh')) await dropDatabase(parseDatabaseUrl(url));
  const pool = await openPool(url, 24);
  await migrate(pool);
  const bufferPoolMib = argument('buffer-pool-mib', '');
  try {
    await withBufferPool(pool, bufferPoolMib === '' ? undefined : Number(bufferPoolMib), () =>
      benchmark(pool, targetEvents, concurrency, batch),
    );
  } finally {
    await pool.end();
  }
}

async function benchmark(
  pool: Pool,
  targetEvents: number,
  concurrency: number,
  batch: number,
): Promise<void> {
  const store = new SqlEventStore(pool);

  let events = await eventCount(pool);
  // Members' event counts vary around the mean, so top up until the log holds at least the target.
  while (events < targetEvents) {
    console.log(
      `pre-filling: ${events} events present, generating up to ${targetEvents} (decider-made, 100-event appends)...`,
    );
    const started = Date.now();
    const members = Math.max(10, Math.ceil((targetEvents - events) / 45));
    const [existing] = await pool.query<RowDataPacket[]>(
      "SELECT COUNT(*) AS n FROM streams WHERE tenant_id = ? AND stream_id LIKE 'member-%'",
      [TENANT],
    );
    await generateHistory(store, {
      tenantId: TENANT,
      seed: 42,
      members,
      eventsPerMember: 50,
      stores: 6000,
      firstMember: sqlInt(existing[0]?.['n']),
      createTenant: events === 0,
    });
    events = await eventCount(pool);
    console.log(`pre-filled ${events} events in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }

  // Start from an empty read model, as after `rebuild` or on a new replica.
  for (const table of READ_MODEL_TABLES) await pool.query(`TRUNCATE TABLE ${table}`);
  await pool.query('DELETE FROM projection_leases');
  await setTagRules(pool, TENANT, [
    { category: 'diabetes', minPurchases: 2, windowDays: 90, tagPattern: 'chronic:{category}' },
    { category: 'hypertension', minPurchases: 2, windowDays: 90, tagPattern: 'chronic:{category}' },
  ]);

  const rawRowsPerSecond = await rawInsertRate(pool);

  let rows = 0;
  const projector = new Projector(pool, store, {
    owner: 'bench',
    batchEvents: batch,
    partitionsConcurrent: concurrency,
    hooks: { afterCommit: (committed) => void (rows += committed.rows) },
  });
  const started = performance.now();
  const result = await projector.runOnce();
  const seconds = (performance.now() - started) / 1000;
  const eventsPerSecond = result.events / seconds;

  const status = await projectionStatus(pool, store);
  const totals = await readTenantTotals(pool, TENANT);
  const postingsSum = Object.values(totals).reduce((sum, points) => sum + points, 0);
  const [ledger] = await pool.query<RowDataPacket[]>(
    'SELECT COUNT(*) AS n FROM ledger_entries WHERE tenant_id = ?',
    [TENANT],
  );
  const [accounts] = await pool.query<RowDataPacket[]>(
    'SELECT COUNT(*) AS n FROM member_accounts WHERE tenant_id = ?',
    [TENANT],
  );
  const [version] = await pool.query<RowDataPacket[]>('SELECT VERSION() AS v');

  const ratio = eventsPerSecond / rawRowsPerSecond;
  const rowsPerSecond = rows / seconds;
  console.log('');
  console.log(
    `server:                   ${String(version[0]?.['v'])}, InnoDB buffer pool ${Math.round((await bufferPoolBytes(pool)) / 1048576)} MiB`,
  );
  console.log(`events in log:            ${events}`);
  console.log(
    `catch-up:                 ${result.events} events in ${seconds.toFixed(1)} s = ${Math.round(eventsPerSecond)} events/s ` +
      `(batch ${batch}, ${concurrency} partitions at once)`,
  );
  console.log(
    `read-model rows written:  ${rows} (${(rows / result.events).toFixed(2)} per event) = ${Math.round(rowsPerSecond)} rows/s; ` +
      `${sqlInt(ledger[0]?.['n'])} ledger entries, ${sqlInt(accounts[0]?.['n'])} accounts`,
  );
  console.log(
    `raw multi-row INSERT:     ${Math.round(rawRowsPerSecond)} rows/s (${RAW_ROWS} rows, ${RAW_ROWS_PER_STATEMENT} per statement)`,
  );
  console.log(
    `ratio catch-up / raw:     ${ratio.toFixed(2)} (events/s over raw rows/s); rows/s over raw rows/s: ${(rowsPerSecond / rawRowsPerSecond).toFixed(2)}`,
  );
  console.log(`lag after:                ${status.totalLag}; postings sum: ${postingsSum}`);
  console.log(
    `target ${TARGET_EVENTS_PER_SECOND} events/s:       ${eventsPerSecond >= TARGET_EVENTS_PER_SECOND ? 'met' : 'NOT met'}`,
  );
  if (status.totalLag !== 0 || postingsSum !== 0) process.exitCode = 1;
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
