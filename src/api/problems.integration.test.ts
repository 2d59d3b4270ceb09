import { randomUUID } from 'node:crypto';
import type { RowDataPacket } from 'mysql2/promise';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { useTestDatabase } from '../../test/helpers/database.ts';
import { get, newIdempotencyKey, openTestLedger, post, type TestLedger } from '../../test/helpers/ledger.ts';
import {
  expectProblem,
  offendingPaths,
  registerMember,
  tenantFingerprint,
  uniqueId,
} from '../../test/helpers/api.ts';
import { ORDER_LINES_MAX } from '../domain/limits.ts';
import { EventStoreBusyError } from '../eventstore/port.ts';
import { REQUEST_BODY_BYTES_MAX } from './server.ts';

/** Every error, whoever raises it, leaves as RFC 9457 problem+json and leaks nothing of the inside. */

const database = useTestDatabase();
let ledger: TestLedger;
let pos: string;
let memberId: string;
const store = 'store-1';

beforeAll(async () => {
  ledger = await openTestLedger(database.current);
  await ledger.createTenant('acme');
  pos = await ledger.key('acme', 'pos', [store]);
  memberId = await registerMember(ledger, pos, store);
});
afterAll(async () => ledger.close());
afterEach(() => {
  vi.restoreAllMocks();
});

function rawPost(url: string, payload: string | Buffer, headers: Record<string, string> = {}) {
  return ledger.app.inject({
    method: 'POST',
    url,
    payload,
    headers: {
      authorization: `Bearer ${pos}`,
      'idempotency-key': newIdempotencyKey(),
      'content-type': 'application/json',
      ...headers,
    },
  });
}

describe('unknown routes', () => {
  it.each([
    ['GET', '/nope'],
    ['GET', '/v1'],
    ['GET', '/v1/nope'],
    ['POST', '/v1/members/00000000-0000-4000-8000-000000000000/unknown'],
    ['DELETE', '/v1/members/00000000-0000-4000-8000-000000000000'],
    ['PUT', '/v1/members'],
    ['PATCH', '/healthz'],
    ['GET', '/v2/members'],
  ])('%s %s answers 404 problem+json', async (method, url) => {
    const response = await ledger.app.inject({
      method: method as 'GET',
      url,
      headers: { authorization: `Bearer ${pos}` },
    });
    expectProblem(response, 404, 'not-found');
  });
});

describe('bodies the server cannot read', () => {
  it.each([
    ['truncated JSON', '{"orderId":'],
    ['trailing garbage', '{"points":1} x'],
    ['single quotes', "{'points':1}"],
    ['an empty body', ''],
    [
      'a prototype-poisoning key',
      '{"__proto__":{"admin":true},"orderId":"o","storeId":"store-1","points":1}',
    ],
    [
      'a constructor-poisoning key',
      '{"constructor":{"prototype":{"admin":true}},"orderId":"o","storeId":"store-1","points":1}',
    ],
  ])('%s answers 400 validation-failed', async (_label, payload) => {
    const before = await tenantFingerprint(database.current.pool, 'acme');
    const response = await rawPost(`/v1/members/${memberId}/redemptions`, payload);
    expectProblem(response, 400, 'validation-failed');
    expect(Array.isArray(response.json().errors)).toBe(true);
    expect(await tenantFingerprint(database.current.pool, 'acme')).toBe(before);
  });

  it.each([['null'], ['[]'], ['"text"'], ['42'], ['true']])(
    'a JSON %s instead of an object answers 400 naming the body',
    async (payload) => {
      const response = await rawPost(`/v1/members/${memberId}/redemptions`, payload);
      expect(offendingPaths(response)).toEqual(['body']);
    },
  );

  it.each([
    ['text/plain', 'hello'],
    ['application/xml', '<points>1</points>'],
    ['application/x-www-form-urlencoded', 'points=1'],
    ['multipart/form-data; boundary=x', '--x\r\n\r\n1\r\n--x--'],
    ['application/octet-stream', '\u0000\u0001'],
  ])('content type %s answers 415 unsupported-media-type', async (contentType, payload) => {
    const response = await rawPost(`/v1/members/${memberId}/redemptions`, payload, {
      'content-type': contentType,
    });
    expectProblem(response, 415, 'unsupported-media-type');
  });

  it('a body without a content type answers 415', async () => {
    const response = await ledger.app.inject({
      method: 'POST',
      url: `/v1/members/${memberId}/redemptions`,
      payload: JSON.stringify({ orderId: 'o', storeId: store, points: 1 }),
      headers: { authorization: `Bearer ${pos}`, 'idempotency-key': newIdempotencyKey() },
    });
    expectProblem(response, 415, 'unsupported-media-type');
  });

  it('accepts application/json with a charset', async () => {
    const response = await rawPost(
      `/v1/members/${memberId}/redemptions`,
      JSON.stringify({ orderId: 'o', storeId: store, points: 1 }),
      {
        'content-type': 'application/json; charset=utf-8',
      },
    );
    // The member has no points: the body was read and decided.
    expectProblem(response, 422, 'insufficient-points');
  });

  it(`answers 413 payload-too-large past REQUEST_BODY_BYTES_MAX (${REQUEST_BODY_BYTES_MAX} bytes) and changes nothing`, async () => {
    const before = await tenantFingerprint(database.current.pool, 'acme');
    const filler = 'x'.repeat(REQUEST_BODY_BYTES_MAX);
    const response = await rawPost(
      `/v1/members/${memberId}/redemptions`,
      JSON.stringify({ orderId: filler, storeId: store, points: 1 }),
    );
    expectProblem(response, 413, 'payload-too-large');
    expect(await tenantFingerprint(database.current.pool, 'acme')).toBe(before);
  });

  it('takes the largest order the contract allows well inside the body limit', async () => {
    const lines = Array.from({ length: ORDER_LINES_MAX }, (_, i) => ({
      sku: `sku-${'s'.repeat(50)}-${i}`,
      category: `category-${'c'.repeat(50)}`,
      quantity: 1_000_000,
      amountFen: 1_000_000,
      insuranceFen: 999_999,
    }));
    const body = JSON.stringify({
      orderId: uniqueId('big'),
      storeId: store,
      occurredAt: ledger.clock.nowIso(),
      lines,
    });
    expect(body.length).toBeLessThan(REQUEST_BODY_BYTES_MAX / 2);
    const response = await rawPost(`/v1/members/${memberId}/purchases`, body);
    expect(response.statusCode, response.body).toBe(201);
    expect(response.json().pointsEarned).toBe(2);
    const tooMany = JSON.stringify({ orderId: uniqueId('big'), storeId: store, lines: [...lines, lines[0]] });
    expect(offendingPaths(await rawPost(`/v1/members/${memberId}/purchases`, tooMany))).toEqual([
      'body.lines',
    ]);
  });

  it('answers 400 when the body does not match its Content-Length', async () => {
    const response = await rawPost(`/v1/members/${memberId}/redemptions`, '{}', { 'content-length': '100' });
    expectProblem(response, 400, 'validation-failed');
  });
});

describe('URLs the router cannot read', () => {
  it.each([
    ['a broken percent-escape', 'GET', '/v1/members/%zz'],
    ['a truncated UTF-8 escape', 'GET', '/v1/members/%E0%A4%A'],
    ['an over-long path segment', 'GET', `/v1/members/${'a'.repeat(500)}`],
    ['an over-long hold id', 'POST', `/v1/members/${randomUUID()}/holds/${'h'.repeat(500)}/capture`],
  ])('%s (%s) answers 400 problem+json', async (_label, method, url) => {
    const response = await ledger.app.inject({
      method: method as 'GET',
      url,
      headers: { authorization: `Bearer ${pos}`, 'idempotency-key': newIdempotencyKey() },
      ...(method === 'POST' ? { payload: {} } : {}),
    });
    expectProblem(response, 400, 'validation-failed');
  });
});

describe('failures inside the server', () => {
  const SQL_ERROR =
    "ER_PARSE_ERROR: You have an error in your SQL syntax; check the manual near 'SELECT * FROM commands WHERE tenant_id = ?' at line 1";

  it('a database error on a command answers 500 internal-error with no SQL text or stack trace', async () => {
    const error = Object.assign(new Error(SQL_ERROR), {
      code: 'ER_PARSE_ERROR',
      sql: 'SELECT * FROM commands WHERE tenant_id = ?',
    });
    // The append is the one store call every command makes (a member's state may come from the cache).
    vi.spyOn(ledger.runtime.store, 'append').mockRejectedValueOnce(error);
    const requestId = randomUUID();
    const response = await ledger.app.inject({
      method: 'POST',
      url: `/v1/members/${memberId}/redemptions`,
      payload: { orderId: 'o', storeId: store, points: 1 },
      headers: {
        authorization: `Bearer ${pos}`,
        'idempotency-key': newIdempotencyKey(),
        'x-request-id': requestId,
      },
    });
    const problem = expectProblem(response, 500, 'internal-error');
    expect(problem['detail']).toContain(requestId);
    expect(response.body).not.toContain('commands');
    expect(response.body).not.toContain('ER_PARSE_ERROR');
  });

  it('a database error on a read answers 500 internal-error with no SQL text or stack trace', async () => {
    vi.spyOn(ledger.runtime.store, 'streamHead').mockRejectedValueOnce(new Error(SQL_ERROR));
    const response = await get(ledger.app, pos, `/v1/members/${memberId}/ledger`);
    expectProblem(response, 500, 'internal-error');
    expect(response.body).not.toContain('syntax');
  });

  it('an event store that turns an append away answers 503 with Retry-After; the retry records it', async () => {
    vi.spyOn(ledger.runtime.store, 'append').mockRejectedValueOnce(new EventStoreBusyError(10_000));
    const body = {
      orderId: uniqueId('o'),
      storeId: store,
      lines: [{ sku: 'sku-1', category: 'otc', quantity: 1, amountFen: 1_000 }],
    };
    const key = newIdempotencyKey();
    const before = await tenantFingerprint(database.current.pool, 'acme');
    const busy = await post(ledger.app, pos, `/v1/members/${memberId}/purchases`, body, key);
    const problem = expectProblem(busy, 503, 'service-unavailable');
    expect(busy.headers['retry-after']).toBe('1');
    expect(problem['detail']).toContain('wrote nothing');
    expect(await tenantFingerprint(database.current.pool, 'acme')).toBe(before);
    const retried = await post(ledger.app, pos, `/v1/members/${memberId}/purchases`, body, key);
    expect(retried.statusCode, retried.body).toBe(201);
    expect(retried.headers['idempotent-replayed']).toBeUndefined();
  });

  it('an assertion failing in the domain answers 500 without its message', async () => {
    vi.spyOn(ledger.runtime.tenants, 'get').mockImplementationOnce(() => {
      throw new TypeError(
        "Cannot read properties of undefined (reading 'programme') at decideMember (/work/main/src/domain/member/decider.ts:42:7)",
      );
    });
    const response = await post(ledger.app, pos, `/v1/members/${memberId}/redemptions`, {
      orderId: 'o',
      storeId: store,
      points: 1,
    });
    expectProblem(response, 500, 'internal-error');
    expect(response.body).not.toContain('programme');
  });
});

describe('request ids', () => {
  async function correlationIdOfLastEvent(): Promise<string | undefined> {
    const [rows] = await database.current.pool.query<RowDataPacket[]>(
      "SELECT metadata FROM events WHERE tenant_id = 'acme' ORDER BY recorded_at DESC, partition_no, position DESC LIMIT 1",
    );
    return JSON.parse(String(rows[0]?.['metadata'])).correlationId;
  }

  it("keeps a caller's X-Request-Id as the events' correlation id", async () => {
    ledger.clock.advanceSeconds(1);
    const requestId = `till-42-${randomUUID()}`;
    const response = await ledger.app.inject({
      method: 'POST',
      url: '/v1/members',
      payload: { phone: '13912345678', storeId: store, channel: 'store' },
      headers: {
        authorization: `Bearer ${pos}`,
        'idempotency-key': newIdempotencyKey(),
        'x-request-id': requestId,
      },
    });
    expect(response.statusCode).toBe(201);
    expect(await correlationIdOfLastEvent()).toBe(requestId);
  });

  it('replaces an X-Request-Id that is not an id (too long, or not visible ASCII) with a fresh one', async () => {
    for (const requestId of ['x'.repeat(70_000), 'has space', 'caf\u00e9']) {
      ledger.clock.advanceSeconds(1);
      const response = await ledger.app.inject({
        method: 'POST',
        url: `/v1/members/${memberId}/adjustments`,
        payload: { adjustmentId: uniqueId('adj'), points: 1, reason: 'request id' },
        headers: {
          authorization: `Bearer ${await ledger.key('acme', 'support')}`,
          'idempotency-key': newIdempotencyKey(),
          'x-request-id': requestId,
        },
      });
      expect(response.statusCode, response.body.slice(0, 200)).toBe(201);
      expect(await correlationIdOfLastEvent()).toMatch(/^[0-9a-f-]{36}$/);
    }
  });
});

describe('rate limits', () => {
  it('answers 429 rate-limited as problem+json once a key passes its limit', async () => {
    const limited = await openTestLedger(database.current, { rateLimitPerMinute: 2 });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 3; i++)
        statuses.push((await get(limited.app, pos, `/v1/members/${memberId}`)).statusCode);
      expect(statuses).toEqual([200, 200, 429]);
      const response = await get(limited.app, pos, `/v1/members/${memberId}`);
      expectProblem(response, 429, 'rate-limited');
      // Health checks are not limited.
      expect((await limited.app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    } finally {
      await limited.close();
    }
  });
});
