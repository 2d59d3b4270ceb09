import type { RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChaosProxy } from '../../scripts/chaos/proxy.ts';
import { Rng } from '../../scripts/chaos/rng.ts';
import { expectProblem, registerMember, uniqueId } from '../../test/helpers/api.ts';
import { proxiedDatabase, useTestDatabase } from '../../test/helpers/database.ts';
import { get, newIdempotencyKey, openTestLedger, post, type TestLedger } from '../../test/helpers/ledger.ts';

/**
 * A database that cannot serve a request (the link cut, the server gone or restarting) is not a bug: the
 * API answers 503 service-unavailable with Retry-After, so a till retries and no operator is paged for a
 * network blip; the retry under the same Idempotency-Key records the command once. The ledger's own
 * connections go through a TCP proxy that this test cuts and refuses, as the chaos harness does.
 */

const database = useTestDatabase();
let proxy: ChaosProxy;
let databaseDown = false;
let ledger: TestLedger;
let pos: string;
let memberId: string;
const store = 'store-1';

beforeAll(async () => {
  const proxied = await proxiedDatabase(database.current.url, () => databaseDown);
  proxy = proxied.proxy;
  ledger = await openTestLedger({ ...database.current, url: proxied.url });
  await ledger.createTenant('acme');
  pos = await ledger.key('acme', 'pos', [store]);
  memberId = await registerMember(ledger, pos, store);
});
afterAll(async () => {
  databaseDown = false;
  await ledger.close();
  await proxy.close();
});

/** Severs every open connection of the ledger to the database and refuses new ones. */
function loseTheDatabase(): void {
  databaseDown = true;
  const rng = new Rng(7);
  while (proxy.cutOne(rng)) {
    // each call severs one connection
  }
}

async function eventsOfOrder(orderId: string): Promise<number> {
  const [rows] = await database.current.pool.query<RowDataPacket[]>(
    "SELECT COUNT(*) AS n FROM events WHERE tenant_id = 'acme' AND event_type = 'PurchaseRecorded' AND JSON_VALUE(data, '$.orderId') = ?",
    [orderId],
  );
  return Number(rows[0]?.['n']);
}

describe('a database that cannot serve the request', () => {
  it('answers a command 503 with Retry-After, and its retry under the same key records it once', async () => {
    const orderId = uniqueId('order');
    const body = {
      orderId,
      storeId: store,
      lines: [{ sku: 'sku-1', category: 'otc', quantity: 1, amountFen: 5_000 }],
    };
    const key = newIdempotencyKey();
    loseTheDatabase();
    const refused = await post(ledger.app, pos, `/v1/members/${memberId}/purchases`, body, key);
    const problem = expectProblem(refused, 503, 'service-unavailable');
    expect(refused.headers['retry-after']).toBe('1');
    expect(problem['detail']).toContain('same Idempotency-Key');
    expect(await eventsOfOrder(orderId)).toBe(0);

    const read = await get(ledger.app, pos, `/v1/members/${memberId}`);
    expectProblem(read, 503, 'service-unavailable');
    expect(read.headers['retry-after']).toBe('1');

    databaseDown = false;
    const recorded = await post(ledger.app, pos, `/v1/members/${memberId}/purchases`, body, key);
    expect(recorded.statusCode, recorded.body).toBe(201);
    const replayed = await post(ledger.app, pos, `/v1/members/${memberId}/purchases`, body, key);
    expect(replayed.statusCode).toBe(201);
    expect(replayed.headers['idempotent-replayed']).toBe('true');
    expect(await eventsOfOrder(orderId)).toBe(1);
    expect((await get(ledger.app, pos, `/v1/members/${memberId}`)).statusCode).toBe(200);
    // Operators alert on it (docs/operations.md): the refused command is counted, the read is not a command.
    const metrics = await ledger.app.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.body).toMatch(
      /^ledger_command_outcomes_total\{route="\/v1\/members\/:memberId\/purchases",outcome="service-unavailable"\} 1$/m,
    );
  });
});
