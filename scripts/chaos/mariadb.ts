import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import mysql from 'mysql2/promise';
import { sleep } from './rng.ts';

/**
 * The run's own MariaDB server: a scratch data directory, a free loopback port, root with an empty
 * password over TCP. The harness kills it with SIGKILL and starts it again on the same data directory
 * (InnoDB crash recovery), which it must never do to the shared server on 127.0.0.1:3306 that other
 * engineers and CI use.
 */
const INSTALL_TIMEOUT_MS = 120_000;
/** Crash recovery of a small data directory takes a second or two; allow for a loaded machine. */
const READY_TIMEOUT_MS = 90_000;
const STOP_TIMEOUT_MS = 20_000;
/** 2 API + 2 projector processes of 40 connections, the audit's, the harness's, headroom. */
const MAX_CONNECTIONS = 400;

const MARIADBD_CANDIDATES = ['/usr/sbin/mariadbd', '/usr/sbin/mysqld', '/usr/bin/mariadbd'];
const INSTALL_DB_CANDIDATES = [
  '/usr/bin/mariadb-install-db',
  '/usr/bin/mysql_install_db',
  '/usr/local/bin/mariadb-install-db',
];

function firstExisting(candidates: readonly string[], what: string): string {
  const found = candidates.find((candidate) => existsSync(candidate));
  if (found === undefined)
    throw new Error(`chaos: ${what} not found (looked in ${candidates.join(', ')}); install mariadb-server`);
  return found;
}

/** mariadbd refuses to run as root unless told to; any other user runs it as themself. */
function userArgs(): string[] {
  const user = os.userInfo().username;
  return [`--user=${user}`];
}

/** A port nothing listens on now (the OS picks it); loopback only. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export class PrivateMariaDb {
  private child: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();
  private readonly dataDir: string;
  private readonly socketPath: string;
  private readonly logPath: string;
  starts = 0;

  private constructor(
    readonly dir: string,
    readonly port: number,
  ) {
    this.dataDir = path.join(dir, 'data');
    this.socketPath = path.join(dir, 'mariadb.sock');
    this.logPath = path.join(dir, 'mariadb.err');
  }

  /** Creates a fresh data directory under `dir` (mariadb-install-db) on a free port. */
  static async install(dir: string): Promise<PrivateMariaDb> {
    mkdirSync(dir, { recursive: true });
    const installer = firstExisting(INSTALL_DB_CANDIDATES, 'mariadb-install-db');
    const result = spawnSync(
      installer,
      [
        '--no-defaults',
        ...userArgs(),
        `--datadir=${path.join(dir, 'data')}`,
        '--auth-root-authentication-method=normal',
        '--skip-test-db',
      ],
      { encoding: 'utf8', timeout: INSTALL_TIMEOUT_MS },
    );
    if (result.status !== 0) {
      throw new Error(
        `chaos: mariadb-install-db failed (${result.status ?? result.signal}): ${result.stderr || result.stdout}`,
      );
    }
    return new PrivateMariaDb(dir, await freePort());
  }

  get url(): string {
    return `mysql://root@127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Starts the server and waits until root can run a query over TCP. */
  async start(): Promise<void> {
    if (this.child !== null) throw new Error('chaos: mariadb already running');
    const server = firstExisting(MARIADBD_CANDIDATES, 'mariadbd');
    const log = openSync(this.logPath, 'a');
    const child = spawn(
      server,
      [
        '--no-defaults',
        ...userArgs(),
        `--datadir=${this.dataDir}`,
        `--port=${this.port}`,
        `--socket=${this.socketPath}`,
        `--pid-file=${path.join(this.dir, 'mariadb.pid')}`,
        '--bind-address=127.0.0.1',
        '--skip-name-resolve',
        `--max-connections=${MAX_CONNECTIONS}`,
        '--innodb-buffer-pool-size=128M',
        // Durability as in production: a commit is on disk before it is acknowledged.
        '--innodb-flush-log-at-trx-commit=1',
        '--performance-schema=OFF',
        `--log-error=${this.logPath}`,
      ],
      { stdio: ['ignore', log, log], detached: false },
    );
    closeSync(log);
    this.child = child;
    this.starts += 1;
    this.exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    void this.exited.then(() => {
      if (this.child === child) this.child = null;
    });
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (this.child !== child)
        throw new Error(`chaos: mariadbd exited during start-up; see ${this.logPath}`);
      try {
        const connection = await mysql.createConnection({
          host: '127.0.0.1',
          port: this.port,
          user: 'root',
          password: '',
          connectTimeout: 2_000,
        });
        await connection.query('SELECT 1');
        await connection.end();
        return;
      } catch (error) {
        if (Date.now() > deadline)
          throw new Error(`chaos: mariadbd not ready after ${READY_TIMEOUT_MS} ms: ${String(error)}`);
        await sleep(100);
      }
    }
  }

  /** SIGKILL, as a crash or an OOM kill would: no shutdown, InnoDB recovers on the next start. */
  async kill9(): Promise<void> {
    const child = this.child;
    if (child === null) return;
    child.kill('SIGKILL');
    await this.exited;
    this.child = null;
  }

  /** Graceful stop at the end of the run (SIGTERM, then SIGKILL if it does not exit in time). */
  async stop(): Promise<void> {
    const child = this.child;
    if (child === null) return;
    child.kill('SIGTERM');
    const stopped = await Promise.race([
      this.exited.then(() => true),
      sleep(STOP_TIMEOUT_MS).then(() => false),
    ]);
    if (!stopped) child.kill('SIGKILL');
    await this.exited;
    this.child = null;
  }

  /** For an emergency exit handler: kill synchronously what is still running. */
  killNow(): void {
    this.child?.kill('SIGKILL');
  }

  get running(): boolean {
    return this.child !== null;
  }

  get log(): string {
    return this.logPath;
  }
}
