import mysql from 'mysql2/promise';
import type { Pool, PoolConnection, PoolOptions, RowDataPacket } from 'mysql2/promise';

export type { Pool, PoolConnection };

/** Connections per process pool. Enough for 32 concurrent appends; TiDB and MySQL both take far more. */
export const POOL_CONNECTIONS_MAX = 40;
/**
 * Requests for a connection that may wait while all of the pool's are in use; the next fails at once
 * ('Queue limit reached.', answered 503 with Retry-After, isTransientDatabaseError). Without a bound, a
 * database that stalls lets every arriving request wait, holding its memory, for as long as it stalls.
 */
export const POOL_WAITING_REQUESTS_MAX = 10_000;

export interface DatabaseTarget {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
}

export function parseDatabaseUrl(url: string): DatabaseTarget {
  const parsed = new URL(url);
  if (parsed.protocol !== 'mysql:')
    throw new Error(`LEDGER_DATABASE_URL must be mysql://, got ${parsed.protocol}`);
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, ''));
  if (!/^[A-Za-z0-9_]{1,64}$/.test(database)) {
    throw new Error(`LEDGER_DATABASE_URL must name a database of letters, digits and _ (got '${database}')`);
  }
  return {
    host: parsed.hostname || '127.0.0.1',
    port: parsed.port === '' ? 3306 : Number(parsed.port),
    user: decodeURIComponent(parsed.username || 'root'),
    password: decodeURIComponent(parsed.password),
    database,
  };
}

function serverOptions(target: DatabaseTarget): PoolOptions {
  const { database: _database, queueLimit: _queueLimit, ...options } = poolOptions(target, 1);
  return options;
}

function poolOptions(
  target: DatabaseTarget,
  connectionLimit: number,
  queueLimit = POOL_WAITING_REQUESTS_MAX,
): PoolOptions {
  return {
    host: target.host,
    port: target.port,
    user: target.user,
    password: target.password,
    database: target.database,
    connectionLimit,
    waitForConnections: true,
    queueLimit,
    // Times travel as strings and are read as UTC: no driver-side time zone conversion on a money path.
    dateStrings: true,
    timezone: 'Z',
    charset: 'utf8mb4',
    supportBigNumbers: true,
    bigNumberStrings: false,
    enableKeepAlive: true,
    namedPlaceholders: false,
    // The append transaction sends several statements per round trip (append-transaction.ts). Every value
    // still travels through placeholders; no SQL text is ever built from input.
    multipleStatements: true,
    // mysql2 otherwise captures a stack trace on every query, to show the caller of a failed one: about 2%
    // of the API process's CPU under load (BENCHMARKS.md). Errors keep their message, code and errno.
    trace: false,
  };
}

/**
 * How long a transaction of the ledger may sit idle (open, no statement running) before MariaDB closes its
 * connection and rolls it back. Every ledger transaction sends its statements back to back: the append
 * holds a log partition's counter row for one round trip, a projector batch for its writes, an audit or
 * export snapshot between two pages. A client that goes silent in the middle (its host lost, a network
 * partition that drops packets without a reset) would otherwise keep its row locks until `wait_timeout`
 * (8 hours by default): every process's appends to those partitions would wait 50 s
 * (`innodb_lock_wait_timeout`) and fail, for hours. With the timeout they resume after it. MySQL 8 has no
 * such setting, and TiDB has one only from 7.6 (`tidb_idle_transaction_timeout`): neither is set there
 * (docs/operations.md, "Silent clients").
 */
export const IDLE_TRANSACTION_TIMEOUT_SECONDS = 30;

export interface PoolSettings {
  /** IDLE_TRANSACTION_TIMEOUT_SECONDS unless given (tests shorten it). */
  idleTransactionTimeoutSeconds?: number;
  /** POOL_WAITING_REQUESTS_MAX unless given (tests lower it). */
  waitingRequestsMax?: number;
}

/** Creates the database if missing, then a pool on it, with the session settings the ledger relies on. */
export async function openPool(
  url: string,
  connectionLimit = POOL_CONNECTIONS_MAX,
  poolSettings: PoolSettings = {},
): Promise<Pool> {
  const target = parseDatabaseUrl(url);
  const flavour = await ensureDatabase(target);
  const pool = mysql.createPool(
    poolOptions(target, connectionLimit, poolSettings.waitingRequestsMax ?? POOL_WAITING_REQUESTS_MAX),
  );
  const settings = sessionSettings(flavour, poolSettings.idleTransactionTimeoutSeconds);
  // A connection runs its queries in order, so these run before anything else on it.
  pool.pool.on('connection', (connection) => {
    for (const statement of settings) connection.query(statement);
  });
  return pool;
}

/**
 * - READ COMMITTED everywhere: under REPEATABLE READ a locking read of a missing row takes a gap lock, and
 *   two first appends to different new streams then deadlock on each other's gap. The ledger's correctness
 *   rests on row locks and unique keys, never on gap locks.
 * - TiDB: pessimistic transactions, so SELECT ... FOR UPDATE on a log partition's counter row waits for
 *   the holder as on MySQL (the order of positions depends on it) instead of failing at commit.
 * - MariaDB: an idle transaction is ended after IDLE_TRANSACTION_TIMEOUT_SECONDS.
 */
export function sessionSettings(
  flavour: ServerFlavour,
  idleTransactionTimeoutSeconds = IDLE_TRANSACTION_TIMEOUT_SECONDS,
): string[] {
  if (!Number.isSafeInteger(idleTransactionTimeoutSeconds) || idleTransactionTimeoutSeconds < 1) {
    throw new Error(
      `idle transaction timeout must be a whole number of seconds >= 1, got ${idleTransactionTimeoutSeconds}`,
    );
  }
  const settings = ['SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED'];
  if (flavour === 'tidb') settings.push("SET SESSION tidb_txn_mode = 'pessimistic'");
  if (flavour === 'mariadb')
    settings.push(`SET SESSION idle_transaction_timeout = ${idleTransactionTimeoutSeconds}`);
  return settings;
}

/** Creates the database if missing; answers which server it is. */
export async function ensureDatabase(target: DatabaseTarget): Promise<ServerFlavour> {
  const connection = await mysql.createConnection(serverOptions(target)).catch((error: unknown) => {
    throw unreachable(target, error);
  });
  try {
    await connection.query(
      `CREATE DATABASE IF NOT EXISTS \`${target.database}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`,
    );
    const [rows] = await connection.query<RowDataPacket[]>('SELECT VERSION() AS v');
    return flavourOf(String(rows[0]?.['v'] ?? ''));
  } finally {
    await connection.end();
  }
}

/**
 * The server at `target` did not take a connection: the message says where (never the password), and the
 * driver's code stays on the error for the callers that classify it (isTransientDatabaseError).
 */
function unreachable(target: DatabaseTarget, error: unknown): Error {
  const detail = error instanceof Error ? error.message : String(error);
  return Object.assign(
    new Error(`cannot connect to the database server at ${target.host}:${target.port}: ${detail}`, {
      cause: error,
    }),
    { code: (error as { code?: unknown } | null)?.code },
  );
}

export async function dropDatabase(target: DatabaseTarget): Promise<void> {
  const connection = await mysql.createConnection(serverOptions(target));
  try {
    await connection.query(`DROP DATABASE IF EXISTS \`${target.database}\``);
  } finally {
    await connection.end();
  }
}

export type ServerFlavour = 'tidb' | 'mariadb' | 'mysql';

/** `SELECT VERSION()` says which server this is: TiDB and MariaDB name themselves. */
export function flavourOf(version: string): ServerFlavour {
  if (version.includes('TiDB')) return 'tidb';
  if (version.toLowerCase().includes('mariadb')) return 'mariadb';
  return 'mysql';
}

/** Runs fn in one transaction; rolls back on any throw. */
export async function inTransaction<T>(
  pool: Pool,
  fn: (connection: PoolConnection) => Promise<T>,
): Promise<T> {
  const connection = await pool.getConnection();
  try {
    await connection.beginTransaction();
    try {
      const result = await fn(connection);
      await connection.commit();
      return result;
    } catch (error) {
      await connection.rollback().catch(() => undefined);
      throw error;
    }
  } finally {
    connection.release();
  }
}

/** A SQL integer (number, numeric string from SUM/DECIMAL, or bigint) as a safe JS integer, or a loud failure. */
export function sqlInt(value: unknown): number {
  const n =
    typeof value === 'number' ? value : typeof value === 'bigint' ? Number(value) : Number(value ?? 0);
  if (!Number.isSafeInteger(n)) throw new Error(`expected a safe integer from SQL, got ${String(value)}`);
  return n;
}

/** 'YYYY-MM-DD HH:MM:SS.mmm' (DATETIME(3), read as UTC) to ISO-8601. */
export function sqlTimeToIso(value: string): string {
  const [date, time = '00:00:00'] = value.split(' ');
  const [hms = '00:00:00', fraction = ''] = time.split('.');
  return `${date}T${hms}.${fraction.padEnd(3, '0').slice(0, 3)}Z`;
}

/** ISO-8601 instant to the DATETIME(3) literal stored in UTC. */
export function isoToSqlTime(iso: string): string {
  const ms = Date.parse(iso);
  if (!Number.isFinite(ms)) throw new Error(`not an instant: ${iso}`);
  return new Date(ms).toISOString().replace('T', ' ').replace('Z', '');
}

/** MySQL error numbers the ledger reacts to. */
export const ER_DUP_ENTRY = 1062;
export const ER_LOCK_DEADLOCK = 1213;
export const ER_LOCK_WAIT_TIMEOUT = 1205;

/**
 * The error as it may be logged: the driver puts the failing statement, with every value inlined, on its
 * errors (`sql`): a batch of other members' data, phone numbers among it, and up to megabytes long. The
 * copy keeps the message, the driver's code, errno and SQL state, and the stack.
 */
export function loggableError(error: unknown): unknown {
  if (typeof error !== 'object' || error === null || !('sql' in error)) return error;
  const { sql: _sql, ...rest } = error as Record<string, unknown>;
  const copy = Object.assign(new Error(error instanceof Error ? error.message : 'database error'), rest);
  if (error instanceof Error) {
    copy.name = error.name;
    if (error.stack !== undefined) copy.stack = error.stack;
  }
  return copy;
}

/**
 * Errors that mean the database link broke, the server went away or is refusing connections, a lock
 * could not be had in time, or the pool's queue was full: nothing about the request was wrong, and the
 * same request may succeed when sent again. What cutting a connection, killing the server, its restart and a saturated server produce
 * (docs/reliability.md). A command that met one may or may not have committed: its retry under the same
 * Idempotency-Key says which.
 */
const DATABASE_TRANSIENT_CODES: ReadonlySet<string> = new Set([
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ER_SERVER_SHUTDOWN',
  'ER_CONNECTION_KILLED',
  'ER_CON_COUNT_ERROR',
  'ER_LOCK_DEADLOCK',
  'ER_LOCK_WAIT_TIMEOUT',
]);
/** mysql2's errors that carry no code: a query sent on a closed connection, and a full pool queue. */
const TRANSIENT_MESSAGES: ReadonlySet<string> = new Set([
  "Can't add new command when connection is in closed state",
  'Queue limit reached.',
]);

/** The error's code as the driver names it (or, for an error without one, its message). */
export function databaseErrorCause(error: unknown): string {
  if (typeof error !== 'object' || error === null) return String(error).slice(0, 100);
  const { code, message } = error as { code?: unknown; message?: unknown };
  if (typeof code === 'string' && code !== '') return code;
  return String(message ?? 'unknown').slice(0, 100);
}

/** True for an error the same request may not meet again (DATABASE_TRANSIENT_CODES); false for bugs. */
export function isTransientDatabaseError(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const cause = databaseErrorCause(error);
  return DATABASE_TRANSIENT_CODES.has(cause) || TRANSIENT_MESSAGES.has(cause);
}

export function sqlErrno(error: unknown): number | undefined {
  if (typeof error === 'object' && error !== null && 'errno' in error) {
    const errno = (error as { errno: unknown }).errno;
    return typeof errno === 'number' ? errno : undefined;
  }
  return undefined;
}
