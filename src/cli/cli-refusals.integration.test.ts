import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, scratchDirectory, type CliRun } from '../../test/helpers/cli.ts';
import { useTestDatabase } from '../../test/helpers/database.ts';
import { openTestLedger, post, type TestLedger } from '../../test/helpers/ledger.ts';
import { loadConfig } from '../config.ts';
import { Projector } from '../projections/runtime.ts';
import { UsageError } from './args.ts';
import { VERBS } from './verbs/index.ts';

const database = useTestDatabase();

/** The CLI in its own process, against this test's database. */
function ledger(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  return runCli(args, { LEDGER_DATABASE_URL: database.current.url, ...env });
}

/**
 * What a verb refuses before it does anything, run in this process (a usage error is exit 2 in main.ts, which
 * the spawned runs in this file and cli.integration.test.ts cover): the verb is picked as main.ts picks it.
 */
async function usageError(words: string[]): Promise<string> {
  const twoWord = VERBS[`${words[0]} ${words[1]}`];
  const verb = twoWord ?? VERBS[words[0]!];
  if (verb === undefined) throw new Error(`no verb ${words.join(' ')}`);
  try {
    await verb.run(words.slice(twoWord ? 2 : 1), loadConfig({ LEDGER_DATABASE_URL: database.current.url }));
  } catch (error) {
    if (error instanceof UsageError) return error.message;
    throw error;
  }
  throw new Error(`${words.join(' ')} ran instead of refusing`);
}

async function count(sql: string, params: unknown[] = []): Promise<number> {
  const [rows] = await database.current.pool.query<RowDataPacket[]>(sql, params);
  return Number(rows[0]!['n']);
}

const memberId = '3c9e2a1f-5b7d-4e8a-9f60-1d2c3b4a5e6f';
let seeded: TestLedger;

beforeAll(async () => {
  // A tenant with one member whose 2023 lot is due at the start of 2025 (Asia/Shanghai).
  seeded = await openTestLedger(database.current, { clockStart: '2023-06-01T02:00:00.000Z' });
  await seeded.createTenant('acme');
  const pos = await seeded.key('acme', 'pos', ['s1']);
  expect(
    (
      await post(seeded.app, pos, '/v1/members', {
        memberId,
        phone: '13800138000',
        storeId: 's1',
        channel: 'store',
      })
    ).statusCode,
  ).toBe(201);
  const purchase = await post(seeded.app, pos, `/v1/members/${memberId}/purchases`, {
    orderId: 'o-1',
    storeId: 's1',
    lines: [{ sku: 'a', category: 'otc', quantity: 1, amountFen: 25_000 }],
  });
  expect(purchase.json()).toMatchObject({
    pointsEarned: 250,
    lot: { expiresAt: '2024-12-31T16:00:00.000Z' },
  });
  await new Projector(seeded.runtime.pool, seeded.runtime.store, { owner: 'cli-refusals' }).runOnce();
});
afterAll(async () => seeded.close());

describe('ledger CLI: refusals create nothing and say why', () => {
  it('tenants create with a bad time zone or a bad programme file exits 2, names the problem, and creates no tenant', async () => {
    const dir = await scratchDirectory('ledger-cli-refusals-');
    const notJson = join(dir, 'not-json.json');
    await writeFile(notJson, '{"pointsPerYuan": 2,');
    const wrongField = join(dir, 'wrong-field.json');
    await writeFile(wrongField, JSON.stringify({ pointsPerYuan: 'two' }));
    const cases: [string[], RegExp][] = [
      [['tenants', 'create', 'bad-zone', '--time-zone', 'Mars/Olympus_Mons'], /timeZone/],
      [['tenants', 'create', 'bad-zone', '--time-zone', '+08:00'], /timeZone/],
      [['tenants', 'create', 'bad-json', '--programme', notJson], /--programme .*not-json\.json/],
      [['tenants', 'create', 'bad-field', '--programme', wrongField], /programme\.pointsPerYuan/],
      [['tenants', 'create', 'no-file', '--programme', join(dir, 'missing.json')], /ENOENT/],
    ];
    for (const [args, message] of cases) {
      const run = await ledger(args);
      // Input it cannot use: could not run.
      expect(run.code, args.join(' ')).toBe(2);
      expect(run.stderr, args.join(' ')).toMatch(message);
      expect(run.stdout, args.join(' ')).toBe('');
    }
    // A tenant that exists already: the verb ran and refused (1).
    const again = await ledger(['tenants', 'create', 'acme']);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/tenant-exists/);
    for (const tenantId of ['bad-zone', 'bad-json', 'bad-field', 'no-file']) {
      expect(await count('SELECT COUNT(*) AS n FROM events WHERE tenant_id = ?', [tenantId])).toBe(0);
      const key = await ledger(['keys', 'create', '--tenant', tenantId, '--role', 'admin']);
      expect(key.code).toBe(2);
      expect(key.stderr).toMatch(new RegExp(`tenant ${tenantId} does not exist`));
    }
  });

  it('a stray positional argument is refused (exit 2), not silently ignored: no key is made', async () => {
    const keysBefore = await count('SELECT COUNT(*) AS n FROM api_keys WHERE tenant_id = ?', ['acme']);
    // The user meant two stores; a key bound to s1 alone must not be printed as if it were.
    const twoStores = await ledger([
      'keys',
      'create',
      '--tenant',
      'acme',
      '--role',
      'pos',
      '--store',
      's1',
      's2',
    ]);
    expect(twoStores.code).toBe(2);
    expect(twoStores.stdout).toBe('');
    expect(twoStores.stderr).toMatch(/unexpected argument s2/);
    expect(await count('SELECT COUNT(*) AS n FROM api_keys WHERE tenant_id = ?', ['acme'])).toBe(keysBefore);

    for (const args of [
      ['db', 'migrate', 'now'],
      ['expire', '--as-of', '2025-01-01T00:00:00+08:00', 'acme'],
      ['status', 'acme'],
      ['tags', 'set', '--tenant', 'acme', '--file', 'rules.json', 'extra'],
      ['start', 'now'],
    ]) {
      expect(await usageError(args), args.join(' ')).toMatch(/unexpected argument/);
    }
  });

  it('unknown options and missing values are usage errors naming the option', async () => {
    expect(await usageError(['keys', 'create', '--tenant', 'acme', '--role'])).toMatch(
      /--role needs a value/,
    );
    expect(await usageError(['replay', '--tenant', 'acme', '--member', memberId, '--since', 'x'])).toMatch(
      /unknown option --since/,
    );
    expect(
      await usageError(['expire', '--as-of', '2025-01-01T00:00:00Z', '--as-of', '2025-02-01T00:00:00Z']),
    ).toMatch(/--as-of given more than once/);
    expect(await usageError(['audit', '--json=yes'])).toMatch(/--json takes no value/);
    // A verb's first word alone is not a verb: main.ts answers it, so this one runs as a user runs it.
    const halfVerb = await ledger(['keys']);
    expect(halfVerb.code).toBe(2);
    expect(halfVerb.stderr).toMatch(/unknown verb 'keys'/);
  });

  it('expire --as-of twice: the first run expires the due lot, the second changes nothing', async () => {
    const eventsBefore = await count('SELECT COUNT(*) AS n FROM events WHERE tenant_id = ?', ['acme']);
    const first = await ledger(['expire', '--as-of', '2025-01-01T00:00:00+08:00', '--tenant', 'acme']);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/^acme: expired 250 points in 1 lots of 1 members/);
    const eventsAfter = await count('SELECT COUNT(*) AS n FROM events WHERE tenant_id = ?', ['acme']);
    expect(eventsAfter).toBe(eventsBefore + 1);

    // The read model still lists the lot as a candidate (nothing has projected the expiry yet):
    // the member's own state decides, and nothing more expires.
    const second = await ledger(['expire', '--as-of', '2025-01-01T00:00:00+08:00', '--tenant', 'acme']);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toMatch(/^acme: expired 0 points in 0 lots of 0 members/);
    expect(await count('SELECT COUNT(*) AS n FROM events WHERE tenant_id = ?', ['acme'])).toBe(eventsAfter);
  });

  it('replay of a member with no events exits 1, of an unknown tenant 2 (as every verb), printing no history', async () => {
    const unknownMember = await ledger([
      'replay',
      '--tenant',
      'acme',
      '--member',
      '00000000-0000-4000-8000-000000000000',
    ]);
    expect(unknownMember.code).toBe(1);
    expect(unknownMember.stdout).toBe('');
    expect(unknownMember.stderr).toMatch(
      /member 00000000-0000-4000-8000-000000000000 has no events in tenant acme/,
    );
    const unknownTenant = await ledger(['replay', '--tenant', 'nobody', '--member', memberId]);
    expect(unknownTenant.code).toBe(2);
    expect(unknownTenant.stdout).toBe('');
    expect(unknownTenant.stderr).toMatch(/tenant nobody does not exist/);
  });

  it('export refusals exit 2 and leave no files: open period, unknown tenant, non-empty DIR, bad dates', async () => {
    const dir = await scratchDirectory('ledger-cli-export-');
    const open = await ledger([
      'export',
      '--tenant',
      'acme',
      '--from',
      '2099-01-01',
      '--to',
      '2099-02-01',
      '--out',
      join(dir, 'open'),
    ]);
    expect(open.code).toBe(2);
    expect(open.stderr).toMatch(/period-open/);
    const unknown = await ledger([
      'export',
      '--tenant',
      'nobody',
      '--from',
      '2024-01-01',
      '--to',
      '2024-02-01',
      '--out',
      join(dir, 'unknown'),
    ]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown-tenant/);
    const backwards = await ledger([
      'export',
      '--tenant',
      'acme',
      '--from',
      '2024-02-01',
      '--to',
      '2024-01-01',
      '--out',
      join(dir, 'backwards'),
    ]);
    expect(backwards.code).toBe(2);
    expect(backwards.stderr).toMatch(/--from must be before --to/);

    const taken = join(dir, 'taken');
    await mkdir(taken);
    await writeFile(join(taken, 'keep.txt'), 'mine');
    const occupied = await ledger([
      'export',
      '--tenant',
      'acme',
      '--from',
      '2024-01-01',
      '--to',
      '2024-02-01',
      '--out',
      taken,
    ]);
    expect(occupied.code).toBe(2);
    expect(occupied.stderr).toMatch(/output-exists/);
    expect(await readdir(taken)).toEqual(['keep.txt']);
    // Nothing else was created beside DIR either (no temporary directory left behind).
    expect((await readdir(dir)).sort()).toEqual(['taken']);
  });
});
