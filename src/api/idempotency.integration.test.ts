import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { useTestDatabase } from '../../test/helpers/database.ts';
import { newIdempotencyKey, openTestLedger, post, type TestLedger } from '../../test/helpers/ledger.ts';
import {
  eventCount,
  expectProblem,
  expectReplayOf,
  offendingPaths,
  purchase,
  registerMember,
  tenantFingerprint,
  uniqueId,
  uniquePhone,
} from '../../test/helpers/api.ts';

const database = useTestDatabase();
let ledger: TestLedger;
let pos: string;
let support: string;
const store = 'store-1';

beforeAll(async () => {
  ledger = await openTestLedger(database.current);
  await ledger.createTenant('acme');
  await ledger.createTenant('globex');
  pos = await ledger.key('acme', 'pos', [store]);
  support = await ledger.key('acme', 'support');
});
afterAll(async () => ledger.close());

interface PostCase {
  route: string;
  success: number;
  /** Sets up what the command needs and returns the key to use, the url, a body, and another valid body. */
  prepare(): Promise<{ key: string; url: string; body: unknown; otherBody: unknown }>;
}

async function richMember(): Promise<string> {
  const memberId = await registerMember(ledger, pos, store);
  await purchase(ledger, pos, memberId, store, 100_000, uniqueId('order'));
  return memberId;
}

async function heldMember(): Promise<{ memberId: string; holdId: string }> {
  const memberId = await richMember();
  const hold = await post(ledger.app, pos, `/v1/members/${memberId}/holds`, {
    orderId: uniqueId('o'),
    storeId: store,
    points: 100,
  });
  expect(hold.statusCode).toBe(201);
  return { memberId, holdId: hold.json().holdId };
}

const POST_CASES: PostCase[] = [
  {
    route: 'POST /v1/members',
    success: 201,
    prepare: async () => ({
      key: pos,
      url: '/v1/members',
      body: { phone: uniquePhone(), storeId: store, channel: 'store' },
      otherBody: { phone: uniquePhone(), storeId: store, channel: 'app' },
    }),
  },
  {
    route: 'POST /v1/members/{memberId}/purchases',
    success: 201,
    prepare: async () => {
      const memberId = await registerMember(ledger, pos, store);
      const line = { sku: 'a', category: 'otc', quantity: 1, amountFen: 5_000 };
      return {
        key: pos,
        url: `/v1/members/${memberId}/purchases`,
        body: { orderId: uniqueId('o'), storeId: store, lines: [line] },
        otherBody: { orderId: uniqueId('o'), storeId: store, lines: [{ ...line, amountFen: 5_001 }] },
      };
    },
  },
  {
    route: 'POST /v1/members/{memberId}/holds',
    success: 201,
    prepare: async () => {
      const memberId = await richMember();
      const orderId = uniqueId('o');
      return {
        key: pos,
        url: `/v1/members/${memberId}/holds`,
        body: { orderId, storeId: store, points: 10 },
        otherBody: { orderId, storeId: store, points: 11 },
      };
    },
  },
  {
    route: 'POST /v1/members/{memberId}/holds/{holdId}/capture',
    success: 200,
    prepare: async () => {
      const { memberId, holdId } = await heldMember();
      return {
        key: pos,
        url: `/v1/members/${memberId}/holds/${holdId}/capture`,
        body: { points: 40 },
        otherBody: {},
      };
    },
  },
  {
    route: 'POST /v1/members/{memberId}/holds/{holdId}/release',
    success: 200,
    prepare: async () => {
      const { memberId, holdId } = await heldMember();
      const second = await post(ledger.app, pos, `/v1/members/${memberId}/holds`, {
        orderId: uniqueId('o'),
        storeId: store,
        points: 5,
      });
      // Another body for release can only be another hold's url: the same key on another hold is reuse too.
      return {
        key: pos,
        url: `/v1/members/${memberId}/holds/${holdId}/release`,
        body: {},
        otherBody: { url: `/v1/members/${memberId}/holds/${second.json().holdId}/release`, body: {} },
      };
    },
  },
  {
    route: 'POST /v1/members/{memberId}/redemptions',
    success: 201,
    prepare: async () => {
      const memberId = await richMember();
      const orderId = uniqueId('o');
      return {
        key: pos,
        url: `/v1/members/${memberId}/redemptions`,
        body: { orderId, storeId: store, points: 30 },
        otherBody: { orderId, storeId: store, points: 31 },
      };
    },
  },
  {
    route: 'POST /v1/members/{memberId}/refunds',
    success: 201,
    prepare: async () => {
      const memberId = await registerMember(ledger, pos, store);
      const orderId = uniqueId('o');
      await purchase(ledger, pos, memberId, store, 100_000, orderId);
      return {
        key: pos,
        url: `/v1/members/${memberId}/refunds`,
        body: { refundId: uniqueId('r'), orderId, storeId: store, amountFen: 10_000 },
        otherBody: { refundId: uniqueId('r'), orderId, storeId: store, amountFen: 10_000 },
      };
    },
  },
  {
    route: 'POST /v1/members/{memberId}/adjustments',
    success: 201,
    prepare: async () => {
      const memberId = await richMember();
      return {
        key: support,
        url: `/v1/members/${memberId}/adjustments`,
        body: { adjustmentId: uniqueId('adj'), points: -5, reason: 'correction' },
        otherBody: { adjustmentId: uniqueId('adj'), points: -5, reason: 'another correction' },
      };
    },
  },
];

/** otherBody may name another url (release has no body to vary). */
function other(prepared: { url: string; otherBody: unknown }): { url: string; body: unknown } {
  const value = prepared.otherBody as { url?: string; body?: unknown };
  return typeof value === 'object' && value !== null && typeof value.url === 'string'
    ? { url: value.url, body: value.body }
    : { url: prepared.url, body: prepared.otherBody };
}

describe.each(POST_CASES)('$route', ({ success, prepare }) => {
  it('replays the first response for the same key and body, with Idempotent-Replayed: true, changing nothing', async () => {
    const prepared = await prepare();
    const key = newIdempotencyKey();
    const first = await post(ledger.app, prepared.key, prepared.url, prepared.body, key);
    expect(first.statusCode, first.body).toBe(success);
    const before = await tenantFingerprint(database.current.pool, 'acme');
    for (let attempt = 0; attempt < 2; attempt++) {
      expectReplayOf(await post(ledger.app, prepared.key, prepared.url, prepared.body, key), first);
    }
    expect(await tenantFingerprint(database.current.pool, 'acme')).toBe(before);
  });

  it('answers 409 idempotency-key-reused for the same key with another body, changing nothing', async () => {
    const prepared = await prepare();
    const key = newIdempotencyKey();
    expect((await post(ledger.app, prepared.key, prepared.url, prepared.body, key)).statusCode).toBe(success);
    const before = await tenantFingerprint(database.current.pool, 'acme');
    const reuse = other(prepared);
    expectProblem(
      await post(ledger.app, prepared.key, reuse.url, reuse.body, key),
      409,
      'idempotency-key-reused',
    );
    expect(await tenantFingerprint(database.current.pool, 'acme')).toBe(before);
  });

  it('answers 400 without an Idempotency-Key, or with one that is not 1-128 visible ASCII characters', async () => {
    const prepared = await prepare();
    const before = await tenantFingerprint(database.current.pool, 'acme');
    const missing = await ledger.app.inject({
      method: 'POST',
      url: prepared.url,
      headers: { authorization: `Bearer ${prepared.key}`, 'content-type': 'application/json' },
      payload: JSON.stringify(prepared.body),
    });
    expect(offendingPaths(missing)).toEqual(['headers.idempotency-key']);
    for (const bad of ['', 'k'.repeat(129), 'has space', 'caf\u00e9']) {
      const response = await ledger.app.inject({
        method: 'POST',
        url: prepared.url,
        headers: {
          authorization: `Bearer ${prepared.key}`,
          'content-type': 'application/json',
          'idempotency-key': bad,
        },
        payload: JSON.stringify(prepared.body),
      });
      expect(offendingPaths(response), JSON.stringify(bad)).toEqual(['headers.idempotency-key']);
    }
    expect(await tenantFingerprint(database.current.pool, 'acme')).toBe(before);
    // 128 characters is the longest key.
    expect(
      (
        await post(
          ledger.app,
          prepared.key,
          prepared.url,
          prepared.body,
          `${'k'.repeat(96)}${randomUUID().replaceAll('-', '')}`,
        )
      ).statusCode,
    ).toBe(success);
  });
});

describe('Idempotency-Key scope and request identity', () => {
  it('treats the same key on another route or member as reuse', async () => {
    const memberId = await richMember();
    const key = newIdempotencyKey();
    const body = { orderId: uniqueId('o'), storeId: store, points: 1 };
    expect((await post(ledger.app, pos, `/v1/members/${memberId}/redemptions`, body, key)).statusCode).toBe(
      201,
    );
    expectProblem(
      await post(ledger.app, pos, `/v1/members/${memberId}/holds`, body, key),
      409,
      'idempotency-key-reused',
    );
    const otherMember = await richMember();
    expectProblem(
      await post(ledger.app, pos, `/v1/members/${otherMember}/redemptions`, body, key),
      409,
      'idempotency-key-reused',
    );
  });

  it('scopes keys to the tenant: another tenant may use the same key', async () => {
    const globexPos = await ledger.key('globex', 'pos', [store]);
    const key = newIdempotencyKey();
    const acme = await post(
      ledger.app,
      pos,
      '/v1/members',
      { phone: uniquePhone(), storeId: store, channel: 'store' },
      key,
    );
    const globex = await post(
      ledger.app,
      globexPos,
      '/v1/members',
      { phone: uniquePhone(), storeId: store, channel: 'store' },
      key,
    );
    expect(acme.statusCode).toBe(201);
    expect(globex.statusCode).toBe(201);
    expect(globex.headers['idempotent-replayed']).toBeUndefined();
    expect(globex.json().tenantId).toBe('globex');
  });

  it('treats a body with its fields in another order as the same request', async () => {
    const memberId = await richMember();
    const key = newIdempotencyKey();
    const orderId = uniqueId('o');
    const first = await ledger.app.inject({
      method: 'POST',
      url: `/v1/members/${memberId}/redemptions`,
      headers: { authorization: `Bearer ${pos}`, 'idempotency-key': key, 'content-type': 'application/json' },
      payload: `{"orderId":"${orderId}","storeId":"${store}","points":7}`,
    });
    const reordered = await ledger.app.inject({
      method: 'POST',
      url: `/v1/members/${memberId}/redemptions`,
      headers: { authorization: `Bearer ${pos}`, 'idempotency-key': key, 'content-type': 'application/json' },
      payload: `{ "points": 7, "storeId": "${store}", "orderId": "${orderId}" }`,
    });
    expect(first.statusCode).toBe(201);
    expect(reordered.statusCode).toBe(201);
    expect(reordered.headers['idempotent-replayed']).toBe('true');
  });

  it('replays the first response even after the member has moved on', async () => {
    const memberId = await registerMember(ledger, pos, store);
    const key = newIdempotencyKey();
    const body = {
      orderId: uniqueId('o'),
      storeId: store,
      lines: [{ sku: 'a', category: 'otc', quantity: 1, amountFen: 20_000 }],
    };
    const first = await post(ledger.app, pos, `/v1/members/${memberId}/purchases`, body, key);
    expect(first.json()).toMatchObject({ pointsEarned: 200, balance: 200 });
    await post(ledger.app, pos, `/v1/members/${memberId}/redemptions`, {
      orderId: uniqueId('o'),
      storeId: store,
      points: 50,
    });
    const retry = await post(ledger.app, pos, `/v1/members/${memberId}/purchases`, body, key);
    expect(retry.json()).toEqual(first.json());
  });

  it('answers a retry of a refused request with the same refusal, even after the points arrive', async () => {
    // Contract: the same key returns the first response again. A refusal is kept under its key (no
    // events, no ledger change), so an attempt still in flight elsewhere cannot later succeed under a
    // key whose retry the till already saw refused. A new request needs a new key.
    const memberId = await registerMember(ledger, pos, store);
    const key = newIdempotencyKey();
    const body = { orderId: uniqueId('o'), storeId: store, points: 100 };
    const before = await tenantFingerprint(database.current.pool, 'acme');
    const refused = await post(ledger.app, pos, `/v1/members/${memberId}/redemptions`, body, key);
    expectProblem(refused, 422, 'insufficient-points');
    expect(await tenantFingerprint(database.current.pool, 'acme')).toBe(before);
    await purchase(ledger, pos, memberId, store, 10_000);
    const retry = await post(ledger.app, pos, `/v1/members/${memberId}/redemptions`, body, key);
    expectReplayOf(retry, refused);
    const fresh = await post(ledger.app, pos, `/v1/members/${memberId}/redemptions`, body);
    expect(fresh.statusCode).toBe(201);
  });

  it('keeps a 400 by the programme rules too: an occurredAt ahead of the clock stays refused once it is not', async () => {
    const memberId = await registerMember(ledger, pos, store);
    const key = newIdempotencyKey();
    const body = {
      orderId: uniqueId('o'),
      storeId: store,
      occurredAt: new Date(ledger.clock.nowMs() + 600_000).toISOString(),
      lines: [{ sku: 'a', category: 'otc', quantity: 1, amountFen: 10_000 }],
    };
    const before = await tenantFingerprint(database.current.pool, 'acme');
    const refused = await post(ledger.app, pos, `/v1/members/${memberId}/purchases`, body, key);
    expectProblem(refused, 400, 'validation-failed');
    expect(await tenantFingerprint(database.current.pool, 'acme')).toBe(before);
    // Ten minutes on, the same purchase is no longer ahead of the clock; under its key it is still refused.
    ledger.clock.advanceSeconds(601);
    const retry = await post(ledger.app, pos, `/v1/members/${memberId}/purchases`, body, key);
    expectReplayOf(retry, refused);
    const fresh = await post(ledger.app, pos, `/v1/members/${memberId}/purchases`, body);
    expect(fresh.statusCode, fresh.body).toBe(201);
  });
});

describe('retries that overlap the first attempt (a till retrying on a timeout)', () => {
  it('records a purchase sent 4 times at once exactly once and answers every copy with the first response', async () => {
    const memberId = await registerMember(ledger, pos, store);
    const key = newIdempotencyKey();
    const body = {
      orderId: uniqueId('o'),
      storeId: store,
      lines: [{ sku: 'a', category: 'otc', quantity: 1, amountFen: 30_000 }],
    };
    const eventsBefore = await eventCount(database.current.pool, 'acme');
    const responses = await Promise.all(
      [1, 2, 3, 4].map(() => post(ledger.app, pos, `/v1/members/${memberId}/purchases`, body, key)),
    );
    // Exactly one PurchaseRecorded, whatever the answers.
    expect(await eventCount(database.current.pool, 'acme')).toBe(eventsBefore + 1);
    const fresh = responses.filter((r) => r.headers['idempotent-replayed'] === undefined);
    expect(fresh).toHaveLength(1);
    for (const response of responses) {
      expect(response.statusCode, response.body).toBe(201);
      expect(response.json()).toEqual(fresh[0]!.json());
    }
  });

  it('captures a hold sent 3 times at once exactly once and answers every copy with the first response', async () => {
    const { memberId, holdId } = await heldMember();
    const key = newIdempotencyKey();
    const eventsBefore = await eventCount(database.current.pool, 'acme');
    const responses = await Promise.all(
      [1, 2, 3].map(() =>
        post(ledger.app, pos, `/v1/members/${memberId}/holds/${holdId}/capture`, { points: 60 }, key),
      ),
    );
    expect(await eventCount(database.current.pool, 'acme')).toBe(eventsBefore + 1);
    for (const response of responses) {
      expect(response.statusCode, response.body).toBe(200);
      expect(response.json()).toEqual({ pointsRedeemed: 60, balance: 940, available: 940 });
    }
  });

  it('redeems once for a redemption sent 4 times at once', async () => {
    const memberId = await richMember();
    const key = newIdempotencyKey();
    const body = { orderId: uniqueId('o'), storeId: store, points: 600 };
    const responses = await Promise.all(
      [1, 2, 3, 4].map(() => post(ledger.app, pos, `/v1/members/${memberId}/redemptions`, body, key)),
    );
    for (const response of responses) {
      expect(response.statusCode, response.body).toBe(201);
      expect(response.json()).toEqual({ pointsRedeemed: 600, balance: 400, available: 400 });
    }
  });
});

describe('faults between the till and the database', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('an append that fails answers 500 and writes nothing; the retry under the same key records the command once', async () => {
    const memberId = await richMember();
    const key = newIdempotencyKey();
    const body = { orderId: uniqueId('o'), storeId: store, points: 25 };
    const before = await tenantFingerprint(database.current.pool, 'acme');
    vi.spyOn(ledger.runtime.store, 'append').mockRejectedValueOnce(
      new Error('Connection lost: The server closed the connection.'),
    );
    const failed = await post(ledger.app, pos, `/v1/members/${memberId}/redemptions`, body, key);
    expectProblem(failed, 500, 'internal-error');
    expect(await tenantFingerprint(database.current.pool, 'acme')).toBe(before);
    const retry = await post(ledger.app, pos, `/v1/members/${memberId}/redemptions`, body, key);
    expect(retry.statusCode).toBe(201);
    expect(retry.json()).toEqual({ pointsRedeemed: 25, balance: 975, available: 975 });
    const again = await post(ledger.app, pos, `/v1/members/${memberId}/redemptions`, body, key);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.json()).toEqual(retry.json());
  });

  it('an append that commits but whose answer is lost: the retry replays it and nothing posts twice', async () => {
    const memberId = await richMember();
    const key = newIdempotencyKey();
    const body = { orderId: uniqueId('o'), storeId: store, points: 40 };
    const store_ = ledger.runtime.store;
    const append = store_.append.bind(store_);
    vi.spyOn(store_, 'append').mockImplementationOnce(async (request) => {
      await append(request);
      throw new Error('read ECONNRESET');
    });
    const eventsBefore = await eventCount(database.current.pool, 'acme');
    const lost = await post(ledger.app, pos, `/v1/members/${memberId}/redemptions`, body, key);
    expectProblem(lost, 500, 'internal-error');
    const retry = await post(ledger.app, pos, `/v1/members/${memberId}/redemptions`, body, key);
    expect(retry.statusCode).toBe(201);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(retry.json()).toEqual({ pointsRedeemed: 40, balance: 960, available: 960 });
    expect(await eventCount(database.current.pool, 'acme')).toBe(eventsBefore + 1);
  });
});
