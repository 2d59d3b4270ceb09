import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect, createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../test/helpers/database.ts';

const database = useTestDatabase();

/**
 * In front of the real server: until `open`, connections are cut as soon as they arrive, all of them or
 * all but the first `forwardFirst` (a database that answered a probe and then dropped the next ones).
 */
let open = false;
let forwardFirst = 0;
let proxy: Server;
let proxyUrl: string;

beforeAll(async () => {
  proxy = createServer((client) => {
    if (!open && forwardFirst-- <= 0) {
      client.destroy();
      return;
    }
    const target = new URL(database.current.url);
    const upstream = connect(Number(target.port || 3306), target.hostname);
    client.pipe(upstream).pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  proxy.listen(0, '127.0.0.1');
  await once(proxy, 'listening');
  const url = new URL(database.current.url);
  url.hostname = '127.0.0.1';
  url.port = String((proxy.address() as AddressInfo).port);
  proxyUrl = url.toString();
});
afterAll(() => new Promise<void>((resolve) => proxy.close(() => resolve())));

async function until(condition: () => boolean | Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function serve(waitSeconds: number, port: number) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve'], {
    env: {
      ...process.env,
      LEDGER_DATABASE_URL: proxyUrl,
      LEDGER_DATABASE_WAIT_SECONDS: String(waitSeconds),
      PORT: String(port),
      HOST: '127.0.0.1',
      LEDGER_LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const output = { stderr: '' };
  child.stderr.on('data', (chunk: Buffer) => (output.stderr += chunk.toString()));
  return { child, output };
}

describe('LEDGER_DATABASE_WAIT_SECONDS', () => {
  it('without it, a start-up whose database connection is cut exits 2', async () => {
    open = false;
    forwardFirst = 0;
    const { child, output } = serve(0, 0);
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(code, output.stderr).toBe(2);
  });

  it('with it, serve keeps trying while connections are cut, and answers once the database is reachable', async () => {
    open = false;
    forwardFirst = 0;
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    const { child, output } = serve(60, port);
    try {
      await until(() => output.stderr.includes('the database is not ready'), 30_000);
      // Now a connection gets through and the next ones are cut (the failure seen under chaos: a probe that
      // succeeds, then a start-up query on a cut connection): the process must still not give up.
      forwardFirst = 1;
      await new Promise((resolve) => setTimeout(resolve, 2_500));
      expect(child.exitCode, output.stderr).toBeNull();
      open = true;
      await until(
        async () =>
          (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => null))?.status === 200 &&
          (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => null))?.status === 200,
        30_000,
      );
      expect(child.exitCode).toBeNull();
    } finally {
      child.kill('SIGTERM');
      if (child.exitCode === null) await once(child, 'exit');
    }
  });
});
