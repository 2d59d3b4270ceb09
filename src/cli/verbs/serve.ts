import { createKey } from '../../auth/keys.ts';
import { buildServer } from '../../api/server.ts';
import type { Config } from '../../config.ts';
import { Projector } from '../../projections/runtime.ts';
import { openRuntime, type Runtime } from '../../runtime.ts';
import { noArguments } from '../args.ts';
import type { Verb } from './verb.ts';

const DEMO_TENANT_ID = 'demo';
const DEMO_STORE_ID = 'store-001';
/** Between start-up attempts while the database is not ready. */
const DATABASE_RETRY_MS = 1_000;

/** Runs the API and/or the projectors until SIGTERM/SIGINT, then stops gracefully. */
async function runProcess(
  config: Config,
  parts: { api: boolean; projector: boolean; migrate: boolean },
): Promise<number> {
  const runtime = await openWhenReachable(config, parts.migrate);
  const projector = parts.projector ? new Projector(runtime.pool, runtime.store) : null;
  const app = parts.api
    ? await buildServer(runtime, { logLevel: config.logLevel, rateLimitPerMinute: config.rateLimitPerMinute })
    : null;
  if (parts.migrate) await ensureDemoTenant(runtime, config);
  projector?.start();
  if (app) await app.listen({ port: config.port, host: config.host });

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`ledger: ${signal}: finishing in-flight work\n`);
    // In-flight requests finish (a command either commits or writes nothing); new ones get 503.
    await app?.close();
    await projector?.stop();
    await runtime.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  return new Promise<number>(() => undefined);
}

/**
 * Opens the runtime (and migrates, for `start`), trying again for LEDGER_DATABASE_WAIT_SECONDS: a pod started
 * before its database, or restarted while connections to it are being cut, waits instead of exiting
 * half-started. With the default 0 the first failure stops the process.
 */
async function openWhenReachable(config: Config, migrate: boolean): Promise<Runtime> {
  const deadline = Date.now() + config.databaseWaitSeconds * 1000;
  for (;;) {
    try {
      return await openRuntime(config, { migrate });
    } catch (error) {
      if (Date.now() >= deadline) throw error;
      const reason = error instanceof Error ? error.message : String(error);
      process.stderr.write(`ledger: the database is not ready (${reason}); trying again in 1 s\n`);
      await new Promise((resolve) => setTimeout(resolve, DATABASE_RETRY_MS));
    }
  }
}

/** On an empty database, `start` makes a demo tenant and a pos key, so a new user posts a purchase at once. */
async function ensureDemoTenant(runtime: Runtime, config: Config): Promise<void> {
  if ((await runtime.store.listTenants()).length > 0) return;
  const created = await runtime.tenants.create({ tenantId: DEMO_TENANT_ID, name: 'Demo pharmacy' });
  if (!created.ok) return;
  const { key } = await createKey(runtime.pool, runtime.clock, {
    tenantId: DEMO_TENANT_ID,
    role: 'pos',
    stores: [DEMO_STORE_ID],
  });
  const base = `http://127.0.0.1:${config.port}`;
  process.stdout.write(
    [
      '',
      `Created tenant '${DEMO_TENANT_ID}' with a pos key for store ${DEMO_STORE_ID} (shown once):`,
      `  ${key}`,
      '',
      'Register a member, then record a purchase:',
      `  curl -s -X POST ${base}/v1/members -H 'Authorization: Bearer ${key}' -H 'Idempotency-Key: reg-1' \\`,
      `    -H 'Content-Type: application/json' -d '{"memberId":"6a0f6a43-7d53-4a53-9a5e-0b8f8f3f2c11","phone":"13800138000","storeId":"${DEMO_STORE_ID}","channel":"store"}'`,
      `  curl -s -X POST ${base}/v1/members/6a0f6a43-7d53-4a53-9a5e-0b8f8f3f2c11/purchases -H 'Authorization: Bearer ${key}' \\`,
      `    -H 'Idempotency-Key: buy-1' -H 'Content-Type: application/json' \\`,
      `    -d '{"orderId":"order-1","storeId":"${DEMO_STORE_ID}","lines":[{"sku":"sku-1","category":"otc","quantity":1,"amountFen":12800}]}'`,
      '',
      `API docs: ${base}/docs`,
      '',
    ].join('\n'),
  );
}

export const start: Verb = {
  usage: 'start',
  summary: 'migrate, then serve the API and run the projectors in one process (the embedded default)',
  run: (argv, config) => {
    noArguments(argv);
    return runProcess(config, { api: true, projector: true, migrate: true });
  },
};

export const serve: Verb = {
  usage: 'serve',
  summary: 'serve the API alone (scale it on its own)',
  run: (argv, config) => {
    noArguments(argv);
    return runProcess(config, { api: true, projector: false, migrate: false });
  },
};

export const project: Verb = {
  usage: 'project',
  summary: 'run the projectors alone (processes share partitions by lease)',
  run: (argv, config) => {
    noArguments(argv);
    return runProcess(config, { api: false, projector: true, migrate: false });
  },
};
