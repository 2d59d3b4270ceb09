import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mysql, { type Pool, type RowDataPacket } from 'mysql2/promise';
import { RETRY_LATER_LOG_MESSAGES } from '../../src/api/plugins/errors.ts';
import { databaseErrorCause } from '../../src/db/pool.ts';
import { createKey } from '../../src/auth/keys.ts';
import { loadConfig } from '../../src/config.ts';
import { openRuntime } from '../../src/runtime.ts';
import { FaultInjector, type FaultKind, type FaultPlan } from './faults.ts';
import { TillConnection } from './http.ts';
import { Journal, type CommandKind } from './journal.ts';
import { freePort, PrivateMariaDb } from './mariadb.ts';
import {
  checkJournal,
  checkLedger,
  expectedMembers,
  type Discrepancy,
  type LedgerSnapshot,
  type MemberViewPoints,
} from './oracle.ts';
import { LedgerProcess, runVerb } from './processes.ts';
import { ChaosProxy } from './proxy.ts';
import { Rng, sleep } from './rng.ts';
import { PosClient, type ClientSetup, type TenantKeys } from './workload.ts';

/**
 * One chaos run, end to end (docs/reliability.md):
 *   1. a private MariaDB (never the shared server on :3306), migrated, two tenants, keys;
 *   2. API processes (`ledger serve`) and projector processes (`ledger project`), each its own child,
 *      reaching the database through a cutting proxy; the POS clients reach the API through another;
 *   3. the load (bounded POS clients) while faults are injected;
 *   4. the outbox: commands without a definitive answer are sent again once the faults are over;
 *   5. the projector drains; `ledger audit` must exit 0; the oracle checks every acknowledged command,
 *      every refused one, every business id and every member's balance.
 */

export type ChaosMode = 'short' | 'long';

interface ModeSettings {
  clients: number;
  loadSeconds: number;
  commandsPerClientMax: number;
  apiProcesses: number;
  projectorProcesses: number;
  thinkMs: readonly [number, number];
  faults: FaultPlan;
  /** The whole run, set-up to teardown, must end within this; every wait below is bounded to fit. */
  budgetSeconds: number;
}

export const MODES: Readonly<Record<ChaosMode, ModeSettings>> = {
  short: {
    clients: 10,
    loadSeconds: 45,
    commandsPerClientMax: 2_000,
    apiProcesses: 2,
    projectorProcesses: 1,
    thinkMs: [20, 80],
    faults: {
      apiKills: 2,
      projectorKills: 2,
      databaseRestarts: 1,
      posCutEveryMs: [300, 1_500],
      dbCutEveryMs: [800, 3_000],
      posStallEveryMs: [1_500, 5_000],
      dbStallEveryMs: [2_000, 6_000],
    },
    budgetSeconds: 175,
  },
  long: {
    clients: 20,
    loadSeconds: 300,
    commandsPerClientMax: 100_000,
    apiProcesses: 2,
    projectorProcesses: 2,
    thinkMs: [10, 50],
    faults: {
      apiKills: 12,
      projectorKills: 10,
      databaseRestarts: 2,
      posCutEveryMs: [200, 1_200],
      dbCutEveryMs: [500, 2_500],
      posStallEveryMs: [1_000, 4_000],
      dbStallEveryMs: [1_500, 5_000],
    },
    budgetSeconds: 900,
  },
};

const DATABASE_NAME = 'points_ledger_chaos';
const TENANTS = ['chaos-a', 'chaos-b'] as const;
/** Well above what the clients send: a 429 would only slow the run down. */
const RATE_LIMIT_PER_MINUTE = 10_000_000;
/** How long the projector processes get to catch up by themselves (a killed one's leases last 15 s). */
const DRAIN_TIMEOUT_MS = 60_000;
const RESOLVE_TIMEOUT_MS = 45_000;
const AUDIT_TIMEOUT_MS = 120_000;
const READ_TIMEOUT_MS = 10_000;

export interface ChaosOptions {
  mode: ChaosMode;
  seed?: number;
  /** Progress lines (default: stderr). */
  log?: (line: string) => void;
  /** Keep the run's directory (logs, data) even when it passes. */
  keep?: boolean;
  /** Overrides for a quick experiment (tests of the harness itself). */
  overrides?: Partial<Pick<ModeSettings, 'clients' | 'loadSeconds'>>;
}

export interface ChaosReport {
  mode: ChaosMode;
  seed: number;
  durationSeconds: number;
  loadSeconds: number;
  clients: number;
  commands: {
    sent: number;
    acknowledged: number;
    acknowledgedDone: number;
    acknowledgedRefused: number;
    retried: number;
    extraAttempts: number;
    answeredAsReplay: number;
    resolvedAfterLoad: number;
    unresolved: number;
    duplicateDeliveries: number;
    requests: number;
    noAnswerTimeout: number;
    noAnswerConnection: number;
  };
  byKind: Record<string, { sent: number; done: number; refused: number }>;
  faults: Record<FaultKind, number>;
  /** 5xx, 429 and concurrency-conflict answers (retried), by status and code. */
  transientAnswers: Record<string, number>;
  /** What the API processes logged for their 5xx, by error code; the unexplained ones also fail a check. */
  serverErrorCauses: Record<string, number>;
  projector: {
    progressedDuringLoad: boolean;
    caughtUpByItself: boolean;
    drainSeconds: number;
    events: number;
  };
  audit: {
    exitCode: number | null;
    clean: boolean;
    events: number | null;
    members: number | null;
    discrepancyCount: number | null;
    output: string;
  };
  members: number;
  discrepancies: Discrepancy[];
  /** Checks that are not about a single command (audit exit code, projector hang, crashes). */
  failedChecks: string[];
  runDir: string | null;
}

interface Child {
  killNow(): void;
}

/** Every process the run started, so an abort or an exit kills them (by their own handle, never by name). */
const live = new Set<Child>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of live) child.killNow();
  });
}

export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  installExitHook();
  const settings: ModeSettings = { ...MODES[options.mode], ...options.overrides };
  const seed = options.seed ?? Math.floor(Math.random() * 2 ** 31);
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const rng = new Rng(seed);
  const startedMs = Date.now();
  const runDir = mkdtempSync(path.join(os.tmpdir(), 'points-ledger-chaos-'));
  const journal = new Journal();
  const failedChecks: string[] = [];
  const cleanup: (() => Promise<void>)[] = [];
  const budgetTimer = setTimeout(() => {
    log(`chaos: over the ${settings.budgetSeconds} s budget; killing everything`);
    for (const child of live) child.killNow();
  }, settings.budgetSeconds * 1000);
  budgetTimer.unref();
  log(
    `chaos: ${options.mode} mode, seed ${seed}, ${settings.clients} clients, ${settings.loadSeconds} s of load; run directory ${runDir}`,
  );

  let passed = false;
  try {
    // 1. The run's own database.
    const database = await PrivateMariaDb.install(path.join(runDir, 'db'));
    live.add(database);
    cleanup.push(async () => {
      await database.stop();
      live.delete(database);
    });
    await database.start();
    const dbProxy = new ChaosProxy('ledger-db', () => [database.port]);
    await dbProxy.listen();
    cleanup.push(() => dbProxy.close());
    const directUrl = `${database.url}/${DATABASE_NAME}`;
    const proxiedUrl = `mysql://root@127.0.0.1:${dbProxy.port}/${DATABASE_NAME}`;
    log(`  mariadb on 127.0.0.1:${database.port} (proxied at :${dbProxy.port})`);

    const { tenants, clients } = await setUp(directUrl, settings.clients);

    // 2. The ledger's processes.
    const baseEnv: NodeJS.ProcessEnv = { ...process.env };
    delete baseEnv['LEDGER_CLOCK_START'];
    Object.assign(baseEnv, {
      LEDGER_DATABASE_URL: proxiedUrl,
      LEDGER_EVENT_STORE: 'sql',
      HOST: '127.0.0.1',
      LEDGER_RATE_LIMIT_PER_MINUTE: String(RATE_LIMIT_PER_MINUTE),
      LEDGER_LOG_LEVEL: 'warn',
      LEDGER_DATABASE_WAIT_SECONDS: '120',
    });
    const apis: LedgerProcess[] = [];
    for (let i = 0; i < settings.apiProcesses; i++) {
      const port = await freePort();
      apis.push(
        new LedgerProcess(
          `api-${i + 1}`,
          'serve',
          { ...baseEnv, PORT: String(port) },
          path.join(runDir, `api-${i + 1}.log`),
          port,
        ),
      );
    }
    const projectors = Array.from(
      { length: settings.projectorProcesses },
      (_, i) =>
        new LedgerProcess(
          `projector-${i + 1}`,
          'project',
          baseEnv,
          path.join(runDir, `projector-${i + 1}.log`),
          null,
        ),
    );
    const processes = [...apis, ...projectors];
    for (const child of processes) {
      live.add(child);
      child.start();
    }
    cleanup.push(async () => {
      await Promise.all(processes.map((child) => child.stop()));
      for (const child of processes) live.delete(child);
    });
    await Promise.all(apis.map((api) => api.waitHealthy()));
    const apiProxy = new ChaosProxy('pos-api', () => apis.map((api) => api.port!));
    await apiProxy.listen();
    cleanup.push(() => apiProxy.close());
    log(
      `  ${apis.length} API process(es), ${projectors.length} projector process(es) up; POS clients through :${apiProxy.port}`,
    );

    // 3. Load and faults.
    const runTag = seed.toString(36);
    const posClients = clients.map(
      (setup) => new PosClient(setup, apiProxy.port, journal, rng.fork(), runTag, settings.thinkMs),
    );
    const injector = new FaultInjector(
      { apis, projectors, database, apiProxy, dbProxy },
      settings.faults,
      rng.fork(),
      () => journal.nowMs(),
      log,
    );
    const loadStartedMs = Date.now();
    journal.startedMs = loadStartedMs;
    const deadlineMs = loadStartedMs + settings.loadSeconds * 1000;
    // Settled, not rejected, until awaited: a failed restart must not surface as an unhandled rejection mid-load.
    const faultsDone = injector.run(settings.loadSeconds * 1000).then(
      () => null,
      (error: unknown) => error,
    );
    const progress = setInterval(() => {
      const acked = journal.commands.filter((c) => c.answer !== null).length;
      log(
        `  ${((Date.now() - loadStartedMs) / 1000).toFixed(0)} s: ${journal.commands.length} commands sent, ${acked} answered, ${journal.counters.requests} requests`,
      );
    }, 10_000);
    try {
      await Promise.all(posClients.map((client) => client.run(deadlineMs, settings.commandsPerClientMax)));
    } finally {
      clearInterval(progress);
    }
    const faultError = await faultsDone;
    if (faultError !== null) throw faultError;
    const loadSeconds = (Date.now() - loadStartedMs) / 1000;
    const checkpointAfterLoad = await readLag(directUrl);
    for (const api of apis) if (!api.running) api.start();
    for (const projector of projectors) if (!projector.running) projector.start();
    await Promise.all(apis.map((api) => api.waitHealthy()));

    // 4. The outbox, once the faults are over.
    const outboxSize = journal.commands.filter((c) => c.answer === null).length;
    const resolveDeadline = Date.now() + RESOLVE_TIMEOUT_MS;
    const unresolvedCounts = await Promise.all(posClients.map((client) => client.resolve(resolveDeadline)));
    const unresolved = unresolvedCounts.reduce((a, b) => a + b, 0);
    for (const client of posClients) client.close();
    log(
      `  load over after ${loadSeconds.toFixed(1)} s; ${outboxSize} command(s) re-sent from the outboxes, ${unresolved} still without an answer`,
    );

    // 5. Drain, audit, oracle.
    const drainStartedMs = Date.now();
    const caughtUp = await waitForProjection(directUrl, DRAIN_TIMEOUT_MS);
    const drainSeconds = (Date.now() - drainStartedMs) / 1000;
    const progressedDuringLoad = checkpointAfterLoad.applied > 0 || checkpointAfterLoad.head === 0;
    if (!progressedDuringLoad) {
      failedChecks.push(
        `projector: the \`ledger project\` processes applied no event during the load (${checkpointAfterLoad.head} events in the log, checkpoints at 0)`,
      );
    }
    if (!caughtUp.done) {
      failedChecks.push(
        `projector: not caught up ${DRAIN_TIMEOUT_MS / 1000} s after the load (lag ${caughtUp.lag} events); drained in-process to run the other checks`,
      );
      await drainInProcess(directUrl);
    }
    log(
      `  projector ${caughtUp.done ? `caught up in ${drainSeconds.toFixed(1)} s` : 'did NOT catch up by itself'}; running \`ledger audit\``,
    );

    const audit = await runAudit({ ...baseEnv, LEDGER_DATABASE_URL: directUrl });
    if (!audit.clean)
      failedChecks.push(`audit: \`ledger audit\` exited ${audit.exitCode}: ${audit.output.slice(0, 2000)}`);

    const expected = expectedMembers(journal.commands);
    const discrepancies = checkJournal(journal.commands, journal.replayMismatches);
    for (const tenant of tenants) {
      const snapshot = await readLedger(
        directUrl,
        tenant,
        apis[0]!.port!,
        [...expected.values()].filter((m) => m.tenantId === tenant.tenantId).map((m) => m.memberId),
      );
      discrepancies.push(...checkLedger(journal.commands, expected, snapshot));
    }
    for (const child of processes)
      failedChecks.push(...child.unexpectedExits.map((exit) => `crash: ${exit}`));
    const serverErrorCauses = scanServerErrors(apis.map((api) => api.logPath));
    for (const [cause, count] of Object.entries(serverErrorCauses)) {
      if (cause.startsWith('500 '))
        failedChecks.push(
          `5xx: ${count} answer(s) failed with ${cause.slice(4)}, which no injected fault explains (see the api-*.log files)`,
        );
    }

    const report = buildReport({
      options,
      seed,
      settings,
      startedMs,
      loadSeconds,
      journal,
      injector,
      outboxSize,
      unresolved,
      projector: {
        progressedDuringLoad,
        caughtUpByItself: caughtUp.done,
        drainSeconds,
        events: checkpointAfterLoad.head,
      },
      audit,
      serverErrorCauses,
      members: expected.size,
      discrepancies,
      failedChecks,
      runDir,
    });
    passed = report.discrepancies.length === 0 && report.failedChecks.length === 0;
    if (!passed || options.keep) report.runDir = runDir;
    return report;
  } finally {
    clearTimeout(budgetTimer);
    for (const step of cleanup.reverse()) {
      await step().catch((error: unknown) => log(`chaos: cleanup: ${String(error)}`));
    }
    // A failed run keeps its logs (named in the report) but not the 100+ MB data directory, unless --keep.
    if (!options.keep) {
      if (passed) rmSync(runDir, { recursive: true, force: true });
      else rmSync(path.join(runDir, 'db', 'data'), { recursive: true, force: true });
    }
  }
}

/** Schema, tenants, and keys: a pos key per till (bound to its store), a support and an auditor key per tenant. */
async function setUp(
  url: string,
  clientCount: number,
): Promise<{ tenants: TenantKeys[]; clients: ClientSetup[] }> {
  const runtime = await openRuntime({ ...loadConfig({}), databaseUrl: url }, { migrate: true });
  try {
    const tenants: TenantKeys[] = [];
    for (const tenantId of TENANTS) {
      const created = await runtime.tenants.create({ tenantId, name: `Chaos ${tenantId}` });
      if (!created.ok)
        throw new Error(`chaos: could not create tenant ${tenantId}: ${created.rejection.code}`);
      const supportKey = (
        await createKey(runtime.pool, runtime.clock, { tenantId, role: 'support', stores: [] })
      ).key;
      const auditorKey = (
        await createKey(runtime.pool, runtime.clock, { tenantId, role: 'auditor', stores: [] })
      ).key;
      tenants.push({ tenantId, supportKey, auditorKey });
    }
    const clients: ClientSetup[] = [];
    for (let index = 0; index < clientCount; index++) {
      const tenant = tenants[index % tenants.length]!;
      const storeId = `store-${String(index + 1).padStart(3, '0')}`;
      const posKey = (
        await createKey(runtime.pool, runtime.clock, {
          tenantId: tenant.tenantId,
          role: 'pos',
          stores: [storeId],
        })
      ).key;
      clients.push({ index, tenant, storeId, posKey });
    }
    return { tenants, clients };
  } finally {
    await runtime.close();
  }
}

async function withPool<T>(url: string, fn: (pool: Pool) => Promise<T>): Promise<T> {
  const target = new URL(url);
  const pool = mysql.createPool({
    host: target.hostname,
    port: Number(target.port),
    user: 'root',
    password: '',
    database: target.pathname.slice(1),
    connectionLimit: 2,
    dateStrings: true,
    supportBigNumbers: true,
    bigNumberStrings: false,
  });
  try {
    return await fn(pool);
  } finally {
    await pool.end();
  }
}

/** Events in the logs and events the projector has applied (the checkpoints), over every partition. */
async function readLag(url: string): Promise<{ head: number; applied: number; lag: number }> {
  return withPool(url, async (pool) => {
    const [rows] = await pool.query<RowDataPacket[]>(
      `SELECT lp.next_position - 1 AS head, COALESCE(pc.position, 0) AS applied
       FROM log_partitions lp LEFT JOIN projection_checkpoints pc ON pc.tenant_id = lp.tenant_id AND pc.partition_no = lp.partition_no`,
    );
    let head = 0;
    let applied = 0;
    let lag = 0;
    for (const row of rows) {
      head += Number(row['head']);
      applied += Number(row['applied']);
      lag += Math.max(0, Number(row['head']) - Number(row['applied']));
    }
    return { head, applied, lag };
  });
}

async function waitForProjection(url: string, timeoutMs: number): Promise<{ done: boolean; lag: number }> {
  const deadline = Date.now() + timeoutMs;
  let lag = Number.NaN;
  while (Date.now() < deadline) {
    lag = (await readLag(url)).lag;
    if (lag === 0) return { done: true, lag };
    await sleep(250);
  }
  return { done: false, lag };
}

/** Only when the projector processes did not drain: the project's own Projector, once, so the read-model checks still run. */
async function drainInProcess(url: string): Promise<void> {
  const { Projector } = await import('../../src/projections/index.ts');
  const runtime = await openRuntime({ ...loadConfig({}), databaseUrl: url });
  try {
    await new Projector(runtime.pool, runtime.store, { owner: 'chaos-drain' }).runOnce();
  } finally {
    await runtime.close();
  }
}

async function runAudit(env: NodeJS.ProcessEnv): Promise<ChaosReport['audit']> {
  const result = await runVerb(['audit', '--json'], env, AUDIT_TIMEOUT_MS);
  let events: number | null = null;
  let members: number | null = null;
  let discrepancyCount: number | null = null;
  try {
    const parsed = JSON.parse(result.stdout) as {
      events?: number;
      members?: number;
      discrepancyCount?: number;
    };
    events = parsed.events ?? null;
    members = parsed.members ?? null;
    discrepancyCount = parsed.discrepancyCount ?? null;
  } catch {
    // Not JSON (it could not run): the exit code and stderr say why.
  }
  const output = result.timedOut
    ? `timed out after ${AUDIT_TIMEOUT_MS} ms`
    : `${result.stderr}${discrepancyCount === null ? result.stdout : ''}`.trim();
  return { exitCode: result.code, clean: result.code === 0, events, members, discrepancyCount, output };
}

/** Commands, events and read-model rows of one tenant, and each member as the API shows it to an auditor. */
async function readLedger(
  url: string,
  tenant: TenantKeys,
  apiPort: number,
  memberIds: readonly string[],
): Promise<LedgerSnapshot> {
  const tables = await withPool(url, async (pool) => {
    const [commands] = await pool.query<RowDataPacket[]>(
      'SELECT command_id, stream_id, first_version, event_count, response_status, response_body FROM commands WHERE tenant_id = ?',
      [tenant.tenantId],
    );
    const [events] = await pool.query<RowDataPacket[]>(
      'SELECT stream_id, stream_version, event_type, data, metadata FROM events WHERE tenant_id = ? ORDER BY stream_id, stream_version',
      [tenant.tenantId],
    );
    const [accounts] = await pool.query<RowDataPacket[]>(
      'SELECT member_id, balance, version FROM member_accounts WHERE tenant_id = ?',
      [tenant.tenantId],
    );
    return { commands, events, accounts };
  });
  const connection = new TillConnection(apiPort);
  const headers = { authorization: `Bearer ${tenant.auditorKey}` };
  const views: LedgerSnapshot['views'] = new Map();
  const readAtMs = Date.now();
  try {
    for (const memberId of memberIds) {
      const view = await connection.request(
        'GET',
        `/v1/members/${memberId}`,
        headers,
        undefined,
        READ_TIMEOUT_MS,
      );
      const balance = await connection.request(
        'GET',
        `/v1/members/${memberId}/balance`,
        headers,
        undefined,
        READ_TIMEOUT_MS,
      );
      const points =
        view.kind === 'answer' && view.status === 200
          ? (view.body as { points: MemberViewPoints }).points
          : null;
      const fromEvents =
        balance.kind === 'answer' && balance.status === 200
          ? (balance.body as { balance: number; held: number })
          : null;
      views.set(memberId, {
        view: points,
        balanceFromEvents: fromEvents?.balance ?? null,
        heldFromEvents: fromEvents?.held ?? null,
      });
    }
  } finally {
    connection.close();
  }
  return {
    tenantId: tenant.tenantId,
    commands: tables.commands.map((row) => ({
      commandId: String(row['command_id']),
      streamId: String(row['stream_id']),
      firstVersion: Number(row['first_version']),
      eventCount: Number(row['event_count']),
      responseStatus: row['response_status'] === null ? null : Number(row['response_status']),
      responseBody: row['response_body'] === null ? null : String(row['response_body']),
    })),
    events: tables.events.map((row) => {
      const metadata = JSON.parse(String(row['metadata'])) as { commandId?: string; correlationId?: string };
      return {
        streamId: String(row['stream_id']),
        streamVersion: Number(row['stream_version']),
        type: String(row['event_type']),
        data: JSON.parse(String(row['data'])) as Record<string, unknown>,
        commandId: metadata.commandId ?? null,
        correlationId: metadata.correlationId ?? null,
      };
    }),
    accounts: tables.accounts.map((row) => ({
      memberId: String(row['member_id']),
      balance: Number(row['balance']),
      version: Number(row['version']),
    })),
    views,
    readAtMs,
  };
}

function buildReport(input: {
  options: ChaosOptions;
  seed: number;
  settings: ModeSettings;
  startedMs: number;
  loadSeconds: number;
  journal: Journal;
  injector: FaultInjector;
  outboxSize: number;
  unresolved: number;
  projector: ChaosReport['projector'];
  audit: ChaosReport['audit'];
  serverErrorCauses: Record<string, number>;
  members: number;
  discrepancies: Discrepancy[];
  failedChecks: string[];
  runDir: string;
}): ChaosReport {
  const { journal, injector } = input;
  const commands = journal.commands;
  const answered = commands.filter((c) => c.answer !== null);
  const byKind: ChaosReport['byKind'] = {};
  for (const command of commands) {
    const entry = (byKind[command.kind] ??= { sent: 0, done: 0, refused: 0 });
    entry.sent += 1;
    if (command.answer !== null && command.answer.status < 300) entry.done += 1;
    else if (command.answer !== null) entry.refused += 1;
  }
  const transientAnswers: Record<string, number> = {};
  for (const answer of journal.transientAnswers) {
    const label = `${answer.status} ${answer.code ?? ''}`.trim();
    transientAnswers[label] = (transientAnswers[label] ?? 0) + 1;
  }
  const kinds: CommandKind[] = [
    'register',
    'purchase',
    'hold',
    'capture',
    'release',
    'redemption',
    'refund',
    'adjustment',
  ];
  const orderedByKind = Object.fromEntries(
    kinds.filter((kind) => byKind[kind] !== undefined).map((kind) => [kind, byKind[kind]!]),
  );
  return {
    mode: input.options.mode,
    seed: input.seed,
    durationSeconds: (Date.now() - input.startedMs) / 1000,
    loadSeconds: input.loadSeconds,
    clients: input.settings.clients,
    commands: {
      sent: commands.length,
      acknowledged: answered.length,
      acknowledgedDone: answered.filter((c) => c.answer!.status < 300).length,
      acknowledgedRefused: answered.filter((c) => c.answer!.status >= 300).length,
      retried: commands.filter((c) => c.attempts > 1).length,
      extraAttempts: commands.reduce((sum, c) => sum + Math.max(0, c.attempts - 1), 0),
      answeredAsReplay: answered.filter((c) => c.answer!.replayed).length,
      resolvedAfterLoad: input.outboxSize - input.unresolved,
      unresolved: input.unresolved,
      duplicateDeliveries: journal.counters.duplicateDeliveries,
      requests: journal.counters.requests,
      noAnswerTimeout: journal.counters.noAnswerTimeout,
      noAnswerConnection: journal.counters.noAnswerConnection,
    },
    byKind: orderedByKind,
    faults: injector.counts(),
    transientAnswers,
    serverErrorCauses: input.serverErrorCauses,
    projector: input.projector,
    audit: input.audit,
    members: input.members,
    discrepancies: input.discrepancies,
    failedChecks: input.failedChecks,
    runDir: null,
  };
}

/**
 * The API processes' failed requests (pino JSON lines), counted by status and cause: `503 <cause>` for a
 * request the database could not serve (the API's own classification, isTransientDatabaseError: what
 * cutting a connection, killing the server or its restart produce, and a correct answer to them), a full
 * write queue (`503 event-store-busy`) or a command past its deadline (`503 deadline`); `500 <cause>` for
 * anything else, which is a finding.
 */
/** The API's log message for each kind of 503 with Retry-After, to the cause it names. */
const RETRY_LATER_CAUSES: ReadonlyMap<string, string> = new Map(
  Object.entries(RETRY_LATER_LOG_MESSAGES).map(([cause, message]) => [message, cause]),
);

function scanServerErrors(logPaths: readonly string[]): Record<string, number> {
  const causes: Record<string, number> = {};
  for (const logPath of logPaths) {
    let text = '';
    try {
      text = readFileSync(logPath, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n')) {
      // Every request logs a line; only failures and the 503s' warn lines need parsing.
      if (!line.startsWith('{')) continue;
      if (!line.includes('request failed') && ![...RETRY_LATER_CAUSES.keys()].some((m) => line.includes(m)))
        continue;
      try {
        const entry = JSON.parse(line) as { level?: number; msg?: unknown; err?: unknown };
        const retryLater = RETRY_LATER_CAUSES.get(String(entry.msg));
        if (retryLater === undefined && (entry.level ?? 0) < 50) continue;
        const cause =
          retryLater === undefined
            ? `500 ${databaseErrorCause(entry.err ?? 'unknown')}`
            : `503 ${retryLater === 'database' ? databaseErrorCause(entry.err ?? 'unknown') : retryLater}`;
        causes[cause] = (causes[cause] ?? 0) + 1;
      } catch {
        // A line cut by SIGKILL.
      }
    }
  }
  return causes;
}

/** The report as the run prints it. */
export function formatReport(report: ChaosReport): string {
  const c = report.commands;
  const lines = [
    `chaos ${report.mode} run, seed ${report.seed}: ${report.durationSeconds.toFixed(1)} s in all, ${report.loadSeconds.toFixed(1)} s of load, ${report.clients} POS clients, ${report.members} members`,
    `  commands sent          ${c.sent} (${c.requests} HTTP requests)`,
    `  acknowledged           ${c.acknowledged} (${c.acknowledgedDone} done, ${c.acknowledgedRefused} refused with a definitive 4xx); ${c.answeredAsReplay} answered as a replay`,
    `  retried                ${c.retried} commands, ${c.extraAttempts} extra attempts (no answer: ${c.noAnswerTimeout} timeouts, ${c.noAnswerConnection} connection errors)`,
    `  outbox after the load  ${c.resolvedAfterLoad} resolved, ${c.unresolved} unresolved; ${c.duplicateDeliveries} duplicate deliveries checked`,
    `  by kind                ${Object.entries(report.byKind)
      .map(([kind, k]) => `${kind} ${k.sent} (${k.done}/${k.refused})`)
      .join(', ')}`,
    `  faults injected        ${Object.entries(report.faults)
      .map(([kind, n]) => `${kind}: ${n}`)
      .join(', ')}`,
    `  retryable answers      ${
      Object.entries(report.transientAnswers)
        .map(([label, n]) => `${label}: ${n}`)
        .join(', ') || 'none'
    }`,
    `  5xx causes (API logs)  ${
      Object.entries(report.serverErrorCauses)
        .map(([cause, n]) => `${cause}: ${n}`)
        .join(', ') || 'none'
    }`,
    `  projector              ${report.projector.progressedDuringLoad ? 'applied events during the load' : 'applied NOTHING during the load'}; ${report.projector.caughtUpByItself ? `caught up ${report.projector.drainSeconds.toFixed(1)} s after it` : 'did NOT catch up by itself'} (${report.projector.events} events in the log after the load)`,
    `  ledger audit           exit ${report.audit.exitCode}${report.audit.events === null ? '' : `, ${report.audit.events} events, ${report.audit.members} members, ${report.audit.discrepancyCount} discrepancies`}`,
    `  discrepancies          ${report.discrepancies.length}`,
  ];
  const byKind = new Map<string, string[]>();
  for (const d of report.discrepancies) byKind.set(d.kind, [...(byKind.get(d.kind) ?? []), d.detail]);
  for (const [kind, details] of byKind) {
    lines.push(`    ${kind}: ${details.length}`);
    for (const detail of details.slice(0, 5)) lines.push(`      ${detail}`);
  }
  if (report.failedChecks.length > 0) {
    lines.push(`  failed checks          ${report.failedChecks.length}`);
    for (const check of report.failedChecks) lines.push(`    ${check}`);
  }
  if (report.runDir !== null) lines.push(`  logs                   ${report.runDir}`);
  lines.push(
    report.discrepancies.length === 0 && report.failedChecks.length === 0 ? 'chaos: PASS' : 'chaos: FAIL',
  );
  return `${lines.join('\n')}\n`;
}
