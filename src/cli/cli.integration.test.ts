import { spawn, spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli, scratchDirectory, type CliRun } from '../../test/helpers/cli.ts';
import { useTestDatabase } from '../../test/helpers/database.ts';

const database = useTestDatabase({ migrate: false });

/** The CLI in its own process, against this test's database. */
function ledger(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  return runCli(args, { LEDGER_DATABASE_URL: database.current.url, ...env });
}

describe('the ledger CLI', () => {
  it('migrates idempotently, creates a tenant once, and prints a new key and nothing else', async () => {
    const first = await ledger(['db', 'migrate']);
    expect(first.code, first.stderr).toBe(0);
    expect((await ledger(['db', 'migrate'])).stdout).toMatch(/schema is current/);

    expect((await ledger(['tenants', 'create', 'acme', '--time-zone', 'Asia/Shanghai'])).code).toBe(0);
    const again = await ledger(['tenants', 'create', 'acme']);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/tenant-exists/);

    const key = await ledger(['keys', 'create', '--tenant', 'acme', '--role', 'pos', '--store', 's1']);
    expect(key.code, key.stderr).toBe(0);
    expect(key.stdout).toMatch(/^pl\.acme\.[0-9a-f]{16}\.[A-Za-z0-9_-]{43}\n$/);
  });

  it('refuses bad usage and bad configuration with exit 2 and a message naming the problem', async () => {
    const noRole = await ledger(['keys', 'create', '--tenant', 'acme']);
    expect(noRole.code).toBe(2);
    expect(noRole.stderr).toMatch(/--role is required/);
    const unknownTenant = await ledger(['keys', 'create', '--tenant', 'nobody', '--role', 'auditor']);
    expect(unknownTenant.code).toBe(2);
    expect(unknownTenant.stderr).toMatch(/tenant nobody does not exist/);
    const badEnv = await ledger(['status'], { PORT: 'eighty' });
    expect(badEnv.code).toBe(2);
    expect(badEnv.stderr).toMatch(/PORT/);
    const clockInProduction = await ledger(['status'], {
      NODE_ENV: 'production',
      LEDGER_CLOCK_START: '2026-01-01T00:00:00Z',
    });
    expect(clockInProduction.code).toBe(2);
    expect(clockInProduction.stderr).toMatch(/LEDGER_CLOCK_START/);
    const future = await ledger(['expire', '--as-of', '2999-01-01T00:00:00Z']);
    expect(future.code).toBe(2);
    expect(future.stderr).toMatch(/in the future/);
    expect((await ledger(['no-such-verb'])).code).toBe(2);
    // Nothing listens on port 1: the audit could not run, which is exit 2, never 0 (clean) or 1 (found).
    const unreachable = await ledger(['audit'], {
      LEDGER_DATABASE_URL: 'mysql://root@127.0.0.1:1/points_ledger',
    });
    expect(unreachable.code, unreachable.stderr).toBe(2);
    expect(unreachable.stdout).toBe('');
    expect(unreachable.stderr).toMatch(/cannot connect to the database server at 127\.0\.0\.1:1: /);
  });

  it('sets tag rules, reports projection status, expires nothing due, and audits clean', async () => {
    const dir = await scratchDirectory('ledger-cli-');
    const rules = join(dir, 'rules.json');
    await writeFile(
      rules,
      JSON.stringify([
        { category: 'diabetes', minPurchases: 2, windowDays: 90, tagPattern: 'chronic:{category}' },
      ]),
    );
    const tags = await ledger(['tags', 'set', '--tenant', 'acme', '--file', rules]);
    expect(tags.code, tags.stderr).toBe(0);
    expect(tags.stdout).toMatch(/version 1 \(1 rules\)/);

    const status = await ledger(['status', '--json']);
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout)).toHaveProperty('totalLag');

    const expired = await ledger(['expire', '--as-of', '2026-01-01T00:00:00Z', '--tenant', 'acme']);
    expect(expired.code, expired.stderr).toBe(0);
    expect(expired.stdout).toMatch(/acme: expired 0 points/);

    const audit = await ledger(['audit', '--json']);
    expect(audit.code, audit.stdout + audit.stderr).toBe(0);
  });

  it('as installed (bin/ledger.js): passes the exit code on, and a stop signal reaches the server, which stops gracefully', async () => {
    const env = { ...process.env, LEDGER_DATABASE_URL: database.current.url };
    const refused = spawnSync(process.execPath, ['bin/ledger.js', 'status'], {
      env: { ...env, PORT: 'eighty' },
      encoding: 'utf8',
    });
    expect(refused.status).toBe(2);
    expect(refused.stderr).toMatch(/PORT/);

    const port = 20_000 + Math.floor(Math.random() * 20_000);
    const server = spawn(process.execPath, ['bin/ledger.js', 'start'], {
      env: { ...env, PORT: String(port), HOST: '127.0.0.1', LEDGER_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    server.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    server.stdout.resume();
    const exited = new Promise<number | null>((resolve) => server.on('exit', (code) => resolve(code)));
    try {
      let healthy = false;
      for (let i = 0; i < 150 && !healthy; i++) {
        healthy = await fetch(`http://127.0.0.1:${port}/healthz`).then(
          (response) => response.ok,
          () => false,
        );
        if (!healthy) await new Promise((resolve) => setTimeout(resolve, 200));
      }
      expect(healthy, stderr).toBe(true);
      // The launcher holds the CLI as a child: the signal sent to it must reach the server.
      server.kill('SIGTERM');
      expect(await exited, stderr).toBe(0);
      expect(stderr).toMatch(/SIGTERM: finishing in-flight work/);
    } finally {
      server.kill('SIGKILL');
    }
  });
});
