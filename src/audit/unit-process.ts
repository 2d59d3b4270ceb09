/**
 * A child process that runs audit units (unit-process-main.ts), so one audit uses more than one core: the
 * audit is bound by JavaScript (the domain fold, JSON parsing, sha256), and one process runs its JavaScript
 * on one core whatever its concurrency. A child gets jobs and answers outcomes over the IPC channel; it
 * opens its own pool on the same database, and each of its units reads in its own snapshot, as in process.
 *
 * Why processes and not worker_threads: the code is TypeScript run through tsx, whose loader a worker thread
 * does not inherit here; a child started with `--import <tsx loader>` runs the same modules.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { UnitJob, UnitOutcome, UnitProgress } from './unit.ts';
import { ledgerNodeArgs } from '../../bin/ledger-node.js';

/** How long a child may take to exit after `close` before it is killed. */
const UNIT_PROCESS_EXIT_TIMEOUT_MS = 5_000;

export type ToUnitProcess =
  { type: 'run'; id: number; databaseUrl: string; connections: number; job: UnitJob } | { type: 'close' };

export type FromUnitProcess =
  | { type: 'progress'; id: number; pass: 'chain' | 'member'; count: number }
  | { type: 'done'; id: number; outcome: UnitOutcome }
  | { type: 'failed'; id: number; message: string };

interface Pending {
  resolve: (outcome: UnitOutcome) => void;
  reject: (error: Error) => void;
  onEvents: UnitProgress;
}

export class UnitProcess {
  private readonly child: ChildProcess;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private exit: Error | null = null;
  private readonly exited: Promise<void>;

  constructor(
    private readonly databaseUrl: string,
    /** Connections of the child's pool: one per unit it runs at once. */
    private readonly connections: number,
  ) {
    this.child = fork(fileURLToPath(new URL('./unit-process-main.ts', import.meta.url)), [], {
      execArgv: ledgerNodeArgs(),
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.child.on('message', (message: FromUnitProcess) => this.receive(message));
    this.exited = new Promise((resolve) => {
      const gone = (why: string) => {
        this.exit ??= new Error(`an audit unit process ${why}`);
        for (const pending of this.pending.values()) pending.reject(this.exit);
        this.pending.clear();
        resolve();
      };
      this.child.on('exit', (code, signal) => gone(`exited (code ${code}, signal ${signal})`));
      this.child.on('error', (error) => gone(`failed: ${error.message}`));
    });
  }

  /** The child's process id (the benchmark samples its memory). */
  get pid(): number | undefined {
    return this.child.pid;
  }

  run(job: UnitJob, onEvents: UnitProgress): Promise<UnitOutcome> {
    if (this.exit !== null) return Promise.reject(this.exit);
    const id = this.nextId++;
    return new Promise<UnitOutcome>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onEvents });
      this.send({ type: 'run', id, databaseUrl: this.databaseUrl, connections: this.connections, job });
    });
  }

  /**
   * Asks the child to finish the units it runs, end its pool and exit; kills it if it does not in time, or at
   * once with `now` (the audit failed: what it is still running will not be used).
   */
  async close(options: { now?: boolean } = {}): Promise<void> {
    if (options.now === true) this.child.kill('SIGTERM');
    else if (this.exit === null) this.send({ type: 'close' });
    const timer = setTimeout(() => this.child.kill('SIGKILL'), UNIT_PROCESS_EXIT_TIMEOUT_MS);
    try {
      await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  private send(message: ToUnitProcess): void {
    this.child.send(message, (error) => {
      if (error !== null) this.child.kill('SIGKILL');
    });
  }

  private receive(message: FromUnitProcess): void {
    const pending = this.pending.get(message.id);
    if (pending === undefined) return;
    if (message.type === 'progress') {
      pending.onEvents(message.pass, message.count);
      return;
    }
    this.pending.delete(message.id);
    if (message.type === 'done') pending.resolve(message.outcome);
    else pending.reject(new Error(message.message));
  }
}
