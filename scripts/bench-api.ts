/**
 * npm run bench:api — the POS API under a checkout mix: purchase, hold, capture, over 10,000 members, for
 * 30 s, with autocannon on the same machine against `ledger serve` in its own process. Prints commands/s,
 * p50/p99/p999 latency, and the raw durable-commit rate of the same server measured in the same run.
 * The server logs at its default level, info (one access line per request), to /dev/null; BENCH_LOG_LEVEL
 * sets another. Target on the 2-core machine: >= 3,000 commands/s with p99 <= 25 ms.
 */
import autocannon from 'autocannon';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { createKey } from '../src/auth/keys.ts';
import { systemClock } from '../src/clock.ts';
import { CommandRunner } from '../src/commands/run-command.ts';
import { TenantDirectory } from '../src/commands/tenants.ts';
import { SqlEventStore } from '../src/eventstore/sql/sql-event-store.ts';
import { fmt, machineLine, rawSingleRowInsertRate, scratchDatabase } from './lib/bench.ts';
import { localDatabaseServerPid, procCpuSeconds, treeCpuSeconds } from './lib/rss.ts';

const MEMBERS = Number(process.env['BENCH_MEMBERS'] ?? 10_000);
const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 30);
const CONNECTIONS = Number(process.env['BENCH_CONNECTIONS'] ?? 32);
const PORT = Number(process.env['BENCH_PORT'] ?? 3999);
const STORE = 'store-1';

async function waitForServer(url: string, seconds: number): Promise<void> {
  const deadline = Date.now() + seconds * 1000;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not up yet
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`server at ${url} did not come up`);
}

async function main(): Promise<void> {
  const db = await scratchDatabase('pl_bench_api', CONNECTIONS + 4);
  const store = new SqlEventStore(db.pool);
  const clock = systemClock();
  await new TenantDirectory(store, new CommandRunner(store, clock), clock).create({ tenantId: 'bench' });
  const { key } = await createKey(db.pool, clock, { tenantId: 'bench', role: 'pos', stores: [STORE] });

  const server = spawn(
    process.execPath,
    [
      // `ledger serve` as installed (bin/ledger.js, with its node flags); extra flags (a profiler) reach it too.
      ...(process.env['BENCH_SERVER_NODE_ARGS'] ?? '').split(' ').filter(Boolean),
      'bin/ledger.js',
      'serve',
    ],
    {
      env: {
        ...process.env,
        LEDGER_DATABASE_URL: db.url,
        PORT: String(PORT),
        HOST: '127.0.0.1',
        // The default level: one access line per request, as in production (to /dev/null here).
        LEDGER_LOG_LEVEL: process.env['BENCH_LOG_LEVEL'] ?? 'info',
        LEDGER_RATE_LIMIT_PER_MINUTE: '10000000',
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  try {
    const base = `http://127.0.0.1:${PORT}`;
    await waitForServer(`${base}/healthz`, 30);
    const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };

    // Members, registered through the API (not timed).
    const members = Array.from({ length: MEMBERS }, () => randomUUID());
    const register = await autocannon({
      url: base,
      connections: CONNECTIONS,
      amount: MEMBERS,
      requests: [
        {
          method: 'POST',
          path: '/v1/members',
          setupRequest: (request: autocannon.Request) => {
            const index = (globalCounter += 1) - 1;
            const memberId = members[index % MEMBERS]!;
            return {
              ...request,
              headers: { ...headers, 'idempotency-key': `reg-${memberId}` },
              body: JSON.stringify({
                memberId,
                phone: `+86139${String(index).padStart(8, '0')}`,
                storeId: STORE,
                channel: 'store',
              }),
            };
          },
        },
      ],
    });
    if (register.non2xx > 0) throw new Error(`${register.non2xx} registrations failed`);

    const raw = await rawSingleRowInsertRate(db.pool, CONNECTIONS, 5);

    // The checkout mix, per connection: purchase (earns ~128 points), hold 50, capture it.
    let sequence = 0;
    // CPU used by each party during the timed run: the load generator shares the machine with the others.
    const databasePid = localDatabaseServerPid();
    const cpu = () => ({
      load: process.cpuUsage(),
      server: treeCpuSeconds(server.pid!),
      database: databasePid === undefined ? 0 : procCpuSeconds(databasePid),
    });
    const cpuBefore = cpu();
    const result = await autocannon({
      url: base,
      connections: CONNECTIONS,
      duration: SECONDS,
      requests: [
        {
          method: 'POST',
          setupRequest: (request: autocannon.Request, ctx: object) => {
            const context = ctx as Record<string, unknown>;
            sequence += 1;
            const memberId = members[sequence % MEMBERS]!;
            const orderId = `o-${sequence}-${randomUUID()}`;
            context['memberId'] = memberId;
            context['orderId'] = orderId;
            context['holdId'] = randomUUID();
            return {
              ...request,
              path: `/v1/members/${memberId}/purchases`,
              headers: { ...headers, 'idempotency-key': `p-${orderId}` },
              body: JSON.stringify({
                orderId,
                storeId: STORE,
                lines: [{ sku: 'sku-1', category: 'otc', quantity: 1, amountFen: 12_800 }],
              }),
            };
          },
        },
        {
          method: 'POST',
          setupRequest: (request: autocannon.Request, ctx: object) => ({
            ...request,
            path: `/v1/members/${String((ctx as Record<string, unknown>)['memberId'])}/holds`,
            headers: {
              ...headers,
              'idempotency-key': `h-${String((ctx as Record<string, unknown>)['holdId'])}`,
            },
            body: JSON.stringify({
              holdId: (ctx as Record<string, unknown>)['holdId'],
              orderId: (ctx as Record<string, unknown>)['orderId'],
              storeId: STORE,
              points: 50,
            }),
          }),
        },
        {
          method: 'POST',
          setupRequest: (request: autocannon.Request, ctx: object) => ({
            ...request,
            path: `/v1/members/${String((ctx as Record<string, unknown>)['memberId'])}/holds/${String((ctx as Record<string, unknown>)['holdId'])}/capture`,
            headers: {
              ...headers,
              'idempotency-key': `c-${String((ctx as Record<string, unknown>)['holdId'])}`,
            },
            body: '{}',
          }),
        },
      ],
    });
    const cpuAfter = cpu();
    const loadCpu = process.cpuUsage(cpuBefore.load);
    const cpuLine = [
      `load generator ${fmt((loadCpu.user + loadCpu.system) / 1e6, 1)} s`,
      `API server ${fmt(cpuAfter.server - cpuBefore.server, 1)} s`,
      databasePid === undefined
        ? 'database server not on this machine'
        : `database server ${fmt(cpuAfter.database - cpuBefore.database, 1)} s`,
    ].join(', ');
    const commands = result.requests.total;
    const lines = [
      `machine: ${machineLine()}`,
      `load: ${CONNECTIONS} connections, ${SECONDS} s, ${fmt(MEMBERS)} members, purchase -> hold -> capture`,
      `commands: ${fmt(commands)} (${fmt(result.non2xx)} non-2xx, ${fmt(result.errors)} errors, ${fmt(result.timeouts)} timeouts)`,
      `throughput: ${fmt(commands / SECONDS)} commands/s`,
      `latency: p50 ${fmt(result.latency.p50, 1)} ms, p99 ${fmt(result.latency.p99, 1)} ms, p99.9 ${fmt(result.latency.p99_9, 1)} ms, max ${fmt(result.latency.max, 1)} ms`,
      `CPU during the run: ${cpuLine} (of ${fmt(os.cpus().length * SECONDS)} core-seconds)`,
      `raw durable single-row INSERT commits, same server, ${CONNECTIONS} connections: ${fmt(raw.perSecond)}/s`,
      `ratio commands / raw commits: ${fmt(commands / SECONDS / raw.perSecond, 2)}`,
      `target: >= 3,000 commands/s with p99 <= 25 ms`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    server.kill('SIGTERM');
    await new Promise((resolve) => server.once('exit', resolve));
    await db.drop();
  }
}

let globalCounter = 0;
await main();
