import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { ledgerNodeArgs } from '../../bin/ledger-node.js';
import { sleep } from './rng.ts';

export const REPO_ROOT = path.resolve(import.meta.dirname, '..', '..');
const CLI_ENTRY = path.join(REPO_ROOT, 'src', 'cli', 'main.ts');
/** A `serve` process answers /healthz within this long of its start (tsx compiles on first load). */
const READY_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 15_000;

/**
 * `node <ledger's node flags> --import tsx src/cli/main.ts <verb>`: what `bin/ledger.js` starts, without
 * the launcher, so SIGKILL hits the ledger itself (a kill of the launcher would orphan the ledger).
 */
export function ledgerCommand(verb: readonly string[]): { command: string; args: string[] } {
  return { command: process.execPath, args: [...ledgerNodeArgs(), CLI_ENTRY, ...verb] };
}

/** One ledger process the harness runs, kills with SIGKILL and starts again (`serve` or `project`). */
export class LedgerProcess {
  private child: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();
  starts = 0;
  /** Exits the harness did not cause (crashes), with their code or signal. */
  readonly unexpectedExits: string[] = [];

  constructor(
    readonly name: string,
    private readonly verb: 'serve' | 'project',
    private readonly env: NodeJS.ProcessEnv,
    readonly logPath: string,
    /** The API port for `serve`; null for `project`. */
    readonly port: number | null,
  ) {}

  get running(): boolean {
    return this.child !== null;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  start(): void {
    if (this.child !== null) return;
    const { command, args } = ledgerCommand([this.verb]);
    const log = openSync(this.logPath, 'a');
    const child = spawn(command, args, { cwd: REPO_ROOT, env: this.env, stdio: ['ignore', log, log] });
    closeSync(log);
    this.child = child;
    this.starts += 1;
    let expected = false;
    this.expectExit = () => (expected = true);
    this.exited = new Promise<void>((resolve) =>
      child.once('exit', (code, signal) => {
        if (!expected)
          this.unexpectedExits.push(`${this.name}: exit ${code ?? signal} at ${new Date().toISOString()}`);
        if (this.child === child) this.child = null;
        resolve();
      }),
    );
  }

  private expectExit: () => void = () => undefined;

  /** SIGKILL: no graceful shutdown, whatever was in flight is cut where it stood. */
  async kill9(): Promise<void> {
    const child = this.child;
    if (child === null) return;
    this.expectExit();
    child.kill('SIGKILL');
    await this.exited;
  }

  /** SIGTERM (in-flight work finishes), then SIGKILL if it takes too long. */
  async stop(): Promise<void> {
    const child = this.child;
    if (child === null) return;
    this.expectExit();
    child.kill('SIGTERM');
    const stopped = await Promise.race([
      this.exited.then(() => true),
      sleep(STOP_TIMEOUT_MS).then(() => false),
    ]);
    if (!stopped) child.kill('SIGKILL');
    await this.exited;
  }

  killNow(): void {
    this.expectExit();
    this.child?.kill('SIGKILL');
  }

  /**
   * For `serve`: until GET /healthz answers 200 (bounded). Returns quietly if the harness itself killed
   * this start of the process meanwhile (a second fault hit it while it started).
   */
  async waitHealthy(timeoutMs = READY_TIMEOUT_MS): Promise<void> {
    if (this.port === null) return;
    const child = this.child;
    const exits = this.unexpectedExits.length;
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.child !== child || child === null) {
        if (this.unexpectedExits.length === exits) return;
        throw new Error(`${this.name} exited during start-up:\n${this.tail()}`);
      }
      if (await healthz(this.port)) return;
      await sleep(100);
    }
    throw new Error(`${this.name} not healthy after ${timeoutMs} ms:\n${this.tail()}`);
  }

  tail(lines = 30): string {
    try {
      return readFileSync(this.logPath, 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }
}

function healthz(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const request = http.get(
      { host: '127.0.0.1', port, path: '/healthz', timeout: 1_000, agent: false },
      (response) => {
        response.resume();
        resolve(response.statusCode === 200);
      },
    );
    request.on('timeout', () => request.destroy());
    request.on('error', () => resolve(false));
  });
}

/** Runs a one-shot ledger verb to its end (bounded); returns its exit code and output. */
export function runVerb(
  verb: readonly string[],
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<{ code: number | null; stdout: string; stderr: string; timedOut: boolean }> {
  const { command, args } = ledgerCommand(verb);
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, timedOut });
    });
  });
}
