import type { PrivateMariaDb } from './mariadb.ts';
import type { LedgerProcess } from './processes.ts';
import type { ChaosProxy } from './proxy.ts';
import { sleep, type Rng } from './rng.ts';

/**
 * The faults of a run, injected while the POS clients work: SIGKILL of an API process and of a projector
 * process (each started again after a short pause), SIGKILL of the run's own MariaDB and its restart
 * (crash recovery), and connections cut or stalled at random by the two proxies (POS <-> API, ledger <->
 * database).
 * Discrete faults are planned up front at random instants in the middle of the load; cuts run in loops.
 */

export const FAULT_KINDS = [
  'api kill -9',
  'projector kill -9',
  'database kill -9 + restart',
  'pos-api connection cut',
  'ledger-db connection cut',
  'pos-api connection stall',
  'ledger-db connection stall',
] as const;
/** Faults that happen many times a run: logged as counts, not one line each. */
const FREQUENT: ReadonlySet<FaultKind> = new Set([
  'pos-api connection cut',
  'ledger-db connection cut',
  'pos-api connection stall',
  'ledger-db connection stall',
]);
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface FaultPlan {
  apiKills: number;
  projectorKills: number;
  databaseRestarts: number;
  /** Pause between two cuts, drawn in [min, max] ms. */
  posCutEveryMs: readonly [number, number];
  dbCutEveryMs: readonly [number, number];
  /** Pause between two stalls; a stall holds a connection's bytes for a while, then lets them through. */
  posStallEveryMs: readonly [number, number];
  dbStallEveryMs: readonly [number, number];
}

export interface Targets {
  apis: readonly LedgerProcess[];
  projectors: readonly LedgerProcess[];
  database: PrivateMariaDb;
  apiProxy: ChaosProxy;
  dbProxy: ChaosProxy;
}

export interface FaultEvent {
  kind: FaultKind;
  /** ms since the run started. */
  atMs: number;
  detail: string;
}

/** Discrete faults fall in this part of the load: the clients are warmed up, and there is time to recover. */
const PLAN_FROM = 0.1;
const PLAN_TO = 0.8;
const API_RESTART_DELAY_MS: readonly [number, number] = [300, 2_000];
const PROJECTOR_RESTART_DELAY_MS: readonly [number, number] = [500, 3_000];
const DATABASE_DOWN_MS: readonly [number, number] = [1_000, 3_000];
/** Longer than the till's 5 s timeout: it gives up and retries while the API still works on the request. */
const POS_STALL_MS: readonly [number, number] = [5_500, 8_000];
/** A slow database link: the command waits, its till may time out and retry on the other API process. */
const DB_STALL_MS: readonly [number, number] = [1_000, 7_000];

export class FaultInjector {
  readonly events: FaultEvent[] = [];
  /** Intervals (ms since the run started) during which the database was down or recovering. */
  readonly databaseOutages: { fromMs: number; toMs: number }[] = [];
  private readonly pending: Promise<void>[] = [];
  private stopped = false;

  constructor(
    private readonly targets: Targets,
    private readonly plan: FaultPlan,
    private readonly rng: Rng,
    private readonly nowMs: () => number,
    private readonly log: (line: string) => void,
  ) {}

  counts(): Record<FaultKind, number> {
    const counts = Object.fromEntries(FAULT_KINDS.map((kind) => [kind, 0])) as Record<FaultKind, number>;
    for (const event of this.events) counts[event.kind] += 1;
    return counts;
  }

  /** Injects faults for `loadMs` from now; resolves once every killed process runs again. */
  async run(loadMs: number): Promise<void> {
    const startedMs = Date.now();
    const at = (share: number) => startedMs + loadMs * share;
    const discrete: { atMs: number; fire: () => Promise<void> }[] = [];
    const spread = () => at(PLAN_FROM + this.rng.next() * (PLAN_TO - PLAN_FROM));
    for (let i = 0; i < this.plan.apiKills; i++)
      discrete.push({ atMs: spread(), fire: () => this.killApi() });
    for (let i = 0; i < this.plan.projectorKills; i++)
      discrete.push({ atMs: spread(), fire: () => this.killProjector() });
    for (let i = 0; i < this.plan.databaseRestarts; i++) {
      // Database restarts spread over the middle of the load, never two at once.
      const slot = (i + 0.5) / this.plan.databaseRestarts;
      discrete.push({
        atMs: at(0.25 + 0.5 * slot + (this.rng.next() - 0.5) * 0.1),
        fire: () => this.restartDatabase(),
      });
    }
    discrete.sort((a, b) => a.atMs - b.atMs);
    const endMs = startedMs + loadMs;
    const { apiProxy, dbProxy } = this.targets;
    const cutLoops = [
      this.linkLoop('pos-api connection cut', this.plan.posCutEveryMs, endMs, () =>
        apiProxy.cutOne(this.rng),
      ),
      this.linkLoop('ledger-db connection cut', this.plan.dbCutEveryMs, endMs, () =>
        dbProxy.cutOne(this.rng),
      ),
      this.linkLoop('pos-api connection stall', this.plan.posStallEveryMs, endMs, () =>
        apiProxy.stallOne(this.rng, this.rng.int(...POS_STALL_MS)),
      ),
      this.linkLoop('ledger-db connection stall', this.plan.dbStallEveryMs, endMs, () =>
        dbProxy.stallOne(this.rng, this.rng.int(...DB_STALL_MS)),
      ),
    ];
    for (const fault of discrete) {
      const wait = fault.atMs - Date.now();
      if (wait > 0) await sleep(wait);
      if (this.stopped) break;
      this.pending.push(fault.fire());
    }
    await Promise.all(cutLoops);
    await Promise.all(this.pending);
  }

  /** No new fault after this (an abort). */
  stop(): void {
    this.stopped = true;
  }

  private record(kind: FaultKind, detail: string): void {
    this.events.push({ kind, atMs: this.nowMs(), detail });
    if (!FREQUENT.has(kind))
      this.log(`  fault at ${(this.nowMs() / 1000).toFixed(1)} s: ${kind} (${detail})`);
  }

  private async linkLoop(
    kind: FaultKind,
    everyMs: readonly [number, number],
    endMs: number,
    inject: () => boolean,
  ): Promise<void> {
    while (!this.stopped && Date.now() < endMs) {
      await sleep(this.rng.int(everyMs[0], everyMs[1]));
      if (Date.now() >= endMs) break;
      if (inject()) this.record(kind, '');
    }
  }

  private async killApi(): Promise<void> {
    const running = this.targets.apis.filter((api) => api.running);
    if (running.length === 0) return;
    const api = this.rng.pick(running);
    const pid = api.pid;
    await api.kill9();
    this.record('api kill -9', `${api.name} pid ${pid}`);
    await sleep(this.rng.int(...API_RESTART_DELAY_MS));
    api.start();
    await api
      .waitHealthy()
      .catch((error: unknown) => this.log(`  ${api.name} did not come back: ${String(error)}`));
  }

  private async killProjector(): Promise<void> {
    const running = this.targets.projectors.filter((projector) => projector.running);
    if (running.length === 0) return;
    const projector = this.rng.pick(running);
    const pid = projector.pid;
    await projector.kill9();
    this.record('projector kill -9', `${projector.name} pid ${pid}`);
    await sleep(this.rng.int(...PROJECTOR_RESTART_DELAY_MS));
    projector.start();
  }

  private async restartDatabase(): Promise<void> {
    const fromMs = this.nowMs();
    const pid = this.targets.database.pid;
    await this.targets.database.kill9();
    this.record('database kill -9 + restart', `mariadbd pid ${pid}`);
    await sleep(this.rng.int(...DATABASE_DOWN_MS));
    await this.targets.database.start();
    this.databaseOutages.push({ fromMs, toMs: this.nowMs() });
    this.log(`  database back after ${((this.nowMs() - fromMs) / 1000).toFixed(1)} s`);
  }
}
