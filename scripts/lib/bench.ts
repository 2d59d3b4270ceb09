import { randomBytes } from 'node:crypto';
import os from 'node:os';
import type { RowDataPacket } from 'mysql2/promise';
import { migrate } from '../../src/db/migrate.ts';
import { dropDatabase, openPool, parseDatabaseUrl, sqlInt, type Pool } from '../../src/db/pool.ts';

/** Shared by the benchmarks: a scratch database, timed concurrent loops, percentiles, and a report line. */
export const BENCH_SERVER_URL = process.env['LEDGER_BENCH_DATABASE_SERVER'] ?? 'mysql://root@127.0.0.1:3306';

export async function scratchDatabase(
  prefix: string,
  connections: number,
): Promise<{ url: string; pool: Pool; drop(): Promise<void> }> {
  const url = `${BENCH_SERVER_URL}/${prefix}_${randomBytes(3).toString('hex')}`;
  const pool = await openPool(url, connections);
  await migrate(pool);
  return {
    url,
    pool,
    async drop() {
      await pool.end();
      await dropDatabase(parseDatabaseUrl(url));
    },
  };
}

export interface LoopResult {
  operations: number;
  seconds: number;
  perSecond: number;
  latencyMs: { p50: number; p99: number; p999: number; max: number };
}

/** Runs `workers` loops of `operation` for `seconds`, each loop awaiting its previous operation. */
export async function timedLoops(
  workers: number,
  seconds: number,
  operation: (worker: number, iteration: number) => Promise<void>,
): Promise<LoopResult> {
  const latencies: number[] = [];
  const deadline = performance.now() + seconds * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: workers }, async (_, worker) => {
      for (let iteration = 0; performance.now() < deadline; iteration++) {
        const t0 = performance.now();
        await operation(worker, iteration);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  return {
    operations: latencies.length,
    seconds: elapsed,
    perSecond: latencies.length / elapsed,
    latencyMs: percentiles(latencies),
  };
}

export function percentiles(values: number[]): LoopResult['latencyMs'] {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  return { p50: at(0.5), p99: at(0.99), p999: at(0.999), max: sorted[sorted.length - 1] ?? 0 };
}

export function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

export function machineLine(): string {
  return `${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown'}), ${fmt(os.totalmem() / 2 ** 30, 1)} GiB, node ${process.version}`;
}

/** The server's raw durable commit rate: autocommit single-row INSERTs from `workers` connections. */
export async function rawSingleRowInsertRate(
  pool: Pool,
  workers: number,
  seconds: number,
): Promise<LoopResult> {
  await pool.query(
    'CREATE TABLE IF NOT EXISTS bench_raw (id BIGINT AUTO_INCREMENT PRIMARY KEY, w INT, payload VARCHAR(255))',
  );
  const payload = 'x'.repeat(200);
  return timedLoops(workers, seconds, async (worker) => {
    await pool.query('INSERT INTO bench_raw (w, payload) VALUES (?, ?)', [worker, payload]);
  });
}

/** The server's raw multi-row INSERT rate in rows/s: `rows`-row autocommit INSERTs from `workers` connections. */
export async function rawMultiRowInsertRate(
  pool: Pool,
  workers: number,
  seconds: number,
  rows: number,
): Promise<LoopResult & { rowsPerSecond: number }> {
  await pool.query(
    'CREATE TABLE IF NOT EXISTS bench_raw_multi (id BIGINT AUTO_INCREMENT PRIMARY KEY, w INT, payload VARCHAR(600))',
  );
  const payload = 'x'.repeat(500);
  const placeholders = Array.from({ length: rows }, () => '(?, ?)').join(', ');
  const result = await timedLoops(workers, seconds, async (worker) => {
    const values: unknown[] = [];
    for (let i = 0; i < rows; i++) values.push(worker, payload);
    await pool.query(`INSERT INTO bench_raw_multi (w, payload) VALUES ${placeholders}`, values);
  });
  return { ...result, rowsPerSecond: result.perSecond * rows };
}

/**
 * A database under a fixed name that outlives the run (BENCH_REUSE=1 in the benchmarks that build large
 * data sets): `ready` says whether an earlier run finished building it (a `bench_ready` row, written by
 * `markReady` only after the build is complete, so an interrupted build is rebuilt from scratch).
 */
export async function reusableDatabase(
  name: string,
  connections: number,
): Promise<{
  url: string;
  pool: Pool;
  ready: boolean;
  markReady(note: string): Promise<void>;
  reset(): Promise<Pool>;
  drop(): Promise<void>;
}> {
  const url = `${BENCH_SERVER_URL}/${name}`;
  let pool = await openPool(url, connections);
  await pool.query('CREATE TABLE IF NOT EXISTS bench_ready (note VARCHAR(255) NOT NULL)');
  const [rows] = await pool.query<RowDataPacket[]>('SELECT note FROM bench_ready LIMIT 1');
  const handle = {
    url,
    pool,
    ready: rows.length > 0,
    async markReady(note: string) {
      await handle.pool.query('INSERT INTO bench_ready (note) VALUES (?)', [note]);
    },
    /** Drops whatever a previous, unfinished build left and starts an empty, migrated database. */
    async reset() {
      await handle.pool.end();
      await dropDatabase(parseDatabaseUrl(url));
      pool = await openPool(url, connections);
      await migrate(pool);
      await pool.query('CREATE TABLE IF NOT EXISTS bench_ready (note VARCHAR(255) NOT NULL)');
      handle.pool = pool;
      handle.ready = false;
      return pool;
    },
    async drop() {
      await handle.pool.end();
      await dropDatabase(parseDatabaseUrl(url));
    },
  };
  if (!handle.ready) await handle.reset();
  return handle;
}

/** The server's InnoDB buffer pool size in bytes. */
export async function bufferPoolBytes(pool: Pool): Promise<number> {
  const [rows] = await pool.query<RowDataPacket[]>('SELECT @@GLOBAL.innodb_buffer_pool_size AS n');
  return sqlInt(rows[0]?.['n']);
}

/** Resizes the buffer pool and waits until the server reports the new size in force. */
async function setBufferPoolBytes(pool: Pool, bytes: number): Promise<void> {
  await pool.query('SET GLOBAL innodb_buffer_pool_size = ?', [bytes]);
  const deadline = Date.now() + 120_000;
  // The server rounds to its chunk size; wait for a size at least as large as asked, and a finished resize.
  for (;;) {
    const [rows] = await pool.query<RowDataPacket[]>(
      "SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_resize_status'",
    );
    const status = String(rows[0]?.['Value'] ?? '');
    if ((await bufferPoolBytes(pool)) >= bytes && !/resizing|withdrawing|allocating/i.test(status)) return;
    if (Date.now() > deadline) throw new Error(`buffer pool resize did not finish: ${status}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/**
 * Runs fn with the server's InnoDB buffer pool at `mib` (SET GLOBAL; MariaDB and MySQL resize it online),
 * then puts the old size back. MariaDB's default, 128 MiB, holds little of a million-event log and its read
 * models; production servers are sized for their working set. Undefined leaves the server as it is.
 * A pool grown this way is slower than one the server started with: on MariaDB 10.11.19 a catch-up spent
 * about a sixth of the server's CPU walking a hash chain of page descriptors, and ran 16% slower
 * (BENCHMARKS.md, bench:projections). Start the server with the pool for figures that stand for production.
 */
export async function withBufferPool<T>(
  pool: Pool,
  mib: number | undefined,
  fn: () => Promise<T>,
): Promise<T> {
  if (mib === undefined) return fn();
  const original = await bufferPoolBytes(pool);
  await setBufferPoolBytes(pool, mib * 1024 * 1024);
  try {
    return await fn();
  } finally {
    await setBufferPoolBytes(pool, original);
  }
}
