import { randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../test/helpers/database.ts';
import { get, newIdempotencyKey, openTestLedger, post, type TestLedger } from '../../test/helpers/ledger.ts';
import {
  expectProblem,
  expectReplayOf,
  purchase,
  registerMember,
  tenantFingerprint,
  uniqueId,
  uniquePhone,
} from '../../test/helpers/api.ts';

/**
 * Idempotency-Key edges not covered by idempotency.integration.test.ts (CONTRACT.md "Requests"):
 * "1-128 visible ASCII chars, scoped to the tenant. The same key with the same body returns the first
 * response again (same status and body, plus header `Idempotent-Replayed: true`) and changes nothing.
 * The same key with a different body answers 409 `idempotency-key-reused`."
 */

const database = useTestDatabase();
let ledger: TestLedger;
let pos: string;
let secondTill: string;
let globexPos: string;
const store = 'store-1';

beforeAll(async () => {
  ledger = await openTestLedger(database.current);
  await ledger.createTenant('acme');
  await ledger.createTenant('globex');
  pos = await ledger.key('acme', 'pos', [store]);
  secondTill = await ledger.key('acme', 'pos', [store]);
  globexPos = await ledger.key('globex', 'pos', [store]);
});
afterAll(async () => ledger.close());

async function memberWith(points: number): Promise<string> {
  const memberId = await registerMember(ledger, pos, store);
  await purchase(ledger, pos, memberId, store, points * 100);
  return memberId;
}

describe('Idempotency-Key length', () => {
  it('accepts a key of exactly one visible ASCII character and replays under it', async () => {
    const memberId = await memberWith(100);
    const body = { orderId: uniqueId('o'), storeId: store, points: 3 };
    // Keys are per tenant and this file's tenant has no other one-character key.
    const first = await post(ledger.app, pos, `/v1/members/${memberId}/redemptions`, body, '~');
    expect(first.statusCode, first.body).toBe(201);
    expect(first.json()).toEqual({ pointsRedeemed: 3, balance: 97, available: 97 });
    const before = await tenantFingerprint(database.current.pool, 'acme');
    expectReplayOf(await post(ledger.app, pos, `/v1/members/${memberId}/redemptions`, body, '~'), first);
    expect(await tenantFingerprint(database.current.pool, 'acme')).toBe(before);
  });
});

describe('replays are byte-for-byte', () => {
  it('a 201 member view, replayed with the same status, content type and body bytes', async () => {
    const key = newIdempotencyKey();
    const body = { phone: uniquePhone(), name: '王小明', storeId: store, channel: 'wechat' };
    const first = await post(ledger.app, pos, '/v1/members', body, key);
    expect(first.statusCode, first.body).toBe(201);
    // Another command on the member in between: the replay is still the first answer, not the current view.
    await purchase(ledger, pos, first.json().memberId, store, 10_000);
    expectReplayOf(await post(ledger.app, pos, '/v1/members', body, key), first);
  });

  it('a 409 member-exists problem, replayed with its memberId', async () => {
    const phone = uniquePhone();
    const existing = await post(ledger.app, pos, '/v1/members', { phone, storeId: store, channel: 'store' });
    expect(existing.statusCode).toBe(201);
    const key = newIdempotencyKey();
    const body = { phone, storeId: store, channel: 'app' };
    const first = await post(ledger.app, pos, '/v1/members', body, key);
    expect(expectProblem(first, 409, 'member-exists')['memberId']).toBe(existing.json().memberId);
    expectReplayOf(await post(ledger.app, pos, '/v1/members', body, key), first);
  });

  it('a 404 for an unknown member and a 409 order-already-recorded, each replayed as problem+json', async () => {
    const ghost = randomUUID();
    const line = { sku: 'a', category: 'otc', quantity: 1, amountFen: 1_000 };
    const ghostBody = { orderId: uniqueId('o'), storeId: store, lines: [line] };
    const ghostKey = newIdempotencyKey();
    const notFound = await post(ledger.app, pos, `/v1/members/${ghost}/purchases`, ghostBody, ghostKey);
    expectProblem(notFound, 404, 'not-found');
    const notFoundAgain = await post(ledger.app, pos, `/v1/members/${ghost}/purchases`, ghostBody, ghostKey);
    expectProblem(notFoundAgain, 404, 'not-found');
    expectReplayOf(notFoundAgain, notFound);

    const memberId = await registerMember(ledger, pos, store);
    const orderId = uniqueId('o');
    await purchase(ledger, pos, memberId, store, 1_000, orderId);
    const dupKey = newIdempotencyKey();
    const dupBody = { orderId, storeId: store, lines: [line] };
    const duplicate = await post(ledger.app, pos, `/v1/members/${memberId}/purchases`, dupBody, dupKey);
    expectProblem(duplicate, 409, 'order-already-recorded');
    const duplicateAgain = await post(ledger.app, pos, `/v1/members/${memberId}/purchases`, dupBody, dupKey);
    expectProblem(duplicateAgain, 409, 'order-already-recorded');
    expectReplayOf(duplicateAgain, duplicate);
  });
});

describe('the same key with a different body after a refusal', () => {
  it('answers 409 idempotency-key-reused after a 422, changes nothing, and still replays the 422', async () => {
    const memberId = await memberWith(50);
    const key = newIdempotencyKey();
    const orderId = uniqueId('o');
    const refusedBody = { orderId, storeId: store, points: 51 };
    const refused = await post(ledger.app, pos, `/v1/members/${memberId}/holds`, refusedBody, key);
    expectProblem(refused, 422, 'insufficient-points');
    const before = await tenantFingerprint(database.current.pool, 'acme');
    // The till lowers the points but keeps the key: that is another request.
    expectProblem(
      await post(
        ledger.app,
        pos,
        `/v1/members/${memberId}/holds`,
        { orderId, storeId: store, points: 50 },
        key,
      ),
      409,
      'idempotency-key-reused',
    );
    expect(await tenantFingerprint(database.current.pool, 'acme')).toBe(before);
    const view = await get(ledger.app, pos, `/v1/members/${memberId}`);
    expect(view.json().points).toEqual({ balance: 50, held: 0, available: 50 });
    expectReplayOf(await post(ledger.app, pos, `/v1/members/${memberId}/holds`, refusedBody, key), refused);
  });

  it('answers 409 idempotency-key-reused after a 404 unknown order', async () => {
    const memberId = await memberWith(50);
    const key = newIdempotencyKey();
    const refused = await post(
      ledger.app,
      pos,
      `/v1/members/${memberId}/refunds`,
      { refundId: uniqueId('r'), orderId: uniqueId('nope'), storeId: store, amountFen: 100 },
      key,
    );
    expectProblem(refused, 404, 'not-found');
    const before = await tenantFingerprint(database.current.pool, 'acme');
    expectProblem(
      await post(
        ledger.app,
        pos,
        `/v1/members/${memberId}/redemptions`,
        { orderId: uniqueId('o'), storeId: store, points: 1 },
        key,
      ),
      409,
      'idempotency-key-reused',
    );
    expect(await tenantFingerprint(database.current.pool, 'acme')).toBe(before);
  });
});

describe('key scope', () => {
  it('the same key and the very same body in two tenants are two requests, each replayed in its own tenant', async () => {
    const key = newIdempotencyKey();
    const body = { memberId: randomUUID(), phone: uniquePhone(), storeId: store, channel: 'store' };
    const acme = await post(ledger.app, pos, '/v1/members', body, key);
    const globex = await post(ledger.app, globexPos, '/v1/members', body, key);
    expect(acme.statusCode, acme.body).toBe(201);
    expect(globex.statusCode, globex.body).toBe(201);
    expect(globex.headers['idempotent-replayed']).toBeUndefined();
    expect(acme.json().tenantId).toBe('acme');
    expect(globex.json().tenantId).toBe('globex');
    // Points earned in one tenant stay there.
    await purchase(ledger, pos, body.memberId, store, 20_000);
    expect((await get(ledger.app, globexPos, `/v1/members/${body.memberId}`)).json().points.balance).toBe(0);
    expectReplayOf(await post(ledger.app, pos, '/v1/members', body, key), acme);
    expectReplayOf(await post(ledger.app, globexPos, '/v1/members', body, key), globex);
  });

  it('is the tenant, not the API key: another till of the tenant sending the same key and body gets the replay', async () => {
    const memberId = await memberWith(100);
    const key = newIdempotencyKey();
    const body = { orderId: uniqueId('o'), storeId: store, points: 10 };
    const first = await post(ledger.app, pos, `/v1/members/${memberId}/redemptions`, body, key);
    expect(first.statusCode).toBe(201);
    const before = await tenantFingerprint(database.current.pool, 'acme');
    expectReplayOf(
      await post(ledger.app, secondTill, `/v1/members/${memberId}/redemptions`, body, key),
      first,
    );
    expectProblem(
      await post(ledger.app, secondTill, `/v1/members/${memberId}/redemptions`, { ...body, points: 11 }, key),
      409,
      'idempotency-key-reused',
    );
    expect(await tenantFingerprint(database.current.pool, 'acme')).toBe(before);
  });
});

describe('over a real connection', () => {
  it('refuses two Idempotency-Key headers with 400 naming the header, and changes nothing', async () => {
    const memberId = await memberWith(100);
    await ledger.app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = ledger.app.server.address() as AddressInfo;
    const payload = JSON.stringify({ orderId: uniqueId('o'), storeId: store, points: 1 });
    const before = await tenantFingerprint(database.current.pool, 'acme');
    // Node folds repeated headers into one value joined by ", "; neither key may be picked silently.
    const answer = await new Promise<{ status: number; contentType: string; body: string }>(
      (resolve, reject) => {
        const outgoing = httpRequest(
          {
            host: '127.0.0.1',
            port,
            method: 'POST',
            path: `/v1/members/${memberId}/redemptions`,
            headers: {
              authorization: `Bearer ${pos}`,
              'content-type': 'application/json',
              'idempotency-key': [newIdempotencyKey(), newIdempotencyKey()],
            },
          },
          (incoming) => {
            let body = '';
            incoming.setEncoding('utf8');
            incoming.on('data', (chunk: string) => (body += chunk));
            incoming.on('end', () =>
              resolve({
                status: incoming.statusCode ?? 0,
                contentType: String(incoming.headers['content-type']),
                body,
              }),
            );
          },
        );
        outgoing.on('error', reject);
        outgoing.end(payload);
      },
    );
    expect(answer.status, answer.body).toBe(400);
    expect(answer.contentType).toMatch(/^application\/problem\+json/);
    const problem = JSON.parse(answer.body) as { code: string; errors: { path: string }[] };
    expect(problem.code).toBe('validation-failed');
    expect(problem.errors.map((error) => error.path)).toEqual(['headers.idempotency-key']);
    expect(await tenantFingerprint(database.current.pool, 'acme')).toBe(before);
  });
});
