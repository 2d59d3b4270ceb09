import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import type { LightMyRequestResponse } from 'fastify';
import type { RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../test/helpers/database.ts';
import { get, newIdempotencyKey, openTestLedger, post, type TestLedger } from '../../test/helpers/ledger.ts';
import {
  PROBLEM_CONTENT_TYPE,
  expectNoLeak,
  purchase,
  registerMember,
  tenantFingerprint,
  uniqueId,
} from '../../test/helpers/api.ts';
import { memberStreamId } from '../commands/streams.ts';

/**
 * Random and malformed requests against the in-process server: never a 5xx, every refusal is
 * problem+json, and no refused request changes anything the tenant's commands write.
 */

const database = useTestDatabase();
let ledger: TestLedger;
let pos: string;
let support: string;
let memberId: string;
let holdId: string;
const TENANT = 'fuzz';
const store = 'store-1';
/** Runs per property; fixed seeds keep a failure reproducible (fast-check prints the seed and path). */
const RUNS = 60;

beforeAll(async () => {
  ledger = await openTestLedger(database.current);
  await ledger.createTenant(TENANT);
  pos = await ledger.key(TENANT, 'pos', [store]);
  support = await ledger.key(TENANT, 'support');
  memberId = await registerMember(ledger, pos, store);
  await purchase(ledger, pos, memberId, store, 10_000_000, 'fuzz-order');
  const hold = await post(ledger.app, pos, `/v1/members/${memberId}/holds`, {
    orderId: 'fuzz-hold',
    storeId: store,
    points: 10,
    ttlSeconds: 3600,
  });
  holdId = hold.json().holdId;
});
afterAll(async () => ledger.close());

interface PostRoute {
  name: string;
  key: () => string;
  url: (member: string) => string;
  valid: () => Record<string, unknown>;
}

const POST_ROUTES: PostRoute[] = [
  {
    name: 'register',
    key: () => pos,
    url: () => '/v1/members',
    valid: () => ({
      phone: `+4420${String(Math.floor(Math.random() * 1e8)).padStart(8, '0')}`,
      storeId: store,
      channel: 'store',
      name: 'Fuzz',
    }),
  },
  {
    name: 'purchases',
    key: () => pos,
    url: (m) => `/v1/members/${m}/purchases`,
    valid: () => ({
      orderId: uniqueId('o'),
      storeId: store,
      lines: [{ sku: 'a', category: 'otc', quantity: 1, amountFen: 1_000 }],
    }),
  },
  {
    name: 'holds',
    key: () => pos,
    url: (m) => `/v1/members/${m}/holds`,
    valid: () => ({ orderId: uniqueId('o'), storeId: store, points: 1, ttlSeconds: 1 }),
  },
  {
    name: 'capture',
    key: () => pos,
    url: (m) => `/v1/members/${m}/holds/${holdId}/capture`,
    valid: () => ({ points: 1 }),
  },
  {
    name: 'release',
    key: () => pos,
    url: (m) => `/v1/members/${m}/holds/${holdId}/release`,
    valid: () => ({}),
  },
  {
    name: 'redemptions',
    key: () => pos,
    url: (m) => `/v1/members/${m}/redemptions`,
    valid: () => ({ orderId: uniqueId('o'), storeId: store, points: 1 }),
  },
  {
    name: 'refunds',
    key: () => pos,
    url: (m) => `/v1/members/${m}/refunds`,
    valid: () => ({ refundId: uniqueId('r'), orderId: 'fuzz-order', storeId: store, amountFen: 1 }),
  },
  {
    name: 'adjustments',
    key: () => support,
    url: (m) => `/v1/members/${m}/adjustments`,
    valid: () => ({ adjustmentId: uniqueId('adj'), points: 1, reason: 'fuzz' }),
  },
];

/** Values that break schemas: wrong types, edges of number ranges, odd strings. */
const nastyValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(
    null,
    true,
    0,
    -1,
    -0,
    1.5,
    1e21,
    -1e21,
    2 ** 53,
    2 ** 53 + 2,
    Number.MAX_SAFE_INTEGER,
    '',
    ' ',
    '0',
    '1',
    '1e3',
    'NaN',
    '\u0000',
    '\u202e',
    '\ud800',
    'x'.repeat(10_000),
    '__proto__',
    "' OR '1'='1",
    '2026-02-30T00:00:00Z',
    [],
    {},
    { $gt: '' },
  ),
  fc.integer(),
  fc.double(),
  fc.string({ maxLength: 200 }),
  fc.string({ unit: 'binary', maxLength: 50 }),
  fc.jsonValue({ maxDepth: 2 }),
);

type Mutation =
  | { op: 'set'; key: string; value: unknown }
  | { op: 'delete'; key: string }
  | { op: 'line'; key: string; value: unknown };

function mutationArbitrary(keys: readonly string[]): fc.Arbitrary<Mutation> {
  const field =
    keys.length === 0
      ? fc.string({ maxLength: 20 })
      : fc.oneof(fc.constantFrom(...keys), fc.string({ maxLength: 20 }));
  return fc.oneof(
    fc.record({ op: fc.constant('set' as const), key: field, value: nastyValue }),
    fc.record({ op: fc.constant('delete' as const), key: field }),
    fc.record({
      op: fc.constant('line' as const),
      key: fc.constantFrom('sku', 'category', 'quantity', 'amountFen', 'insuranceFen', 'insurance_fen'),
      value: nastyValue,
    }),
  );
}

function applyMutations(
  body: Record<string, unknown>,
  mutations: readonly Mutation[],
): Record<string, unknown> {
  const next: Record<string, unknown> = structuredClone(body);
  for (const mutation of mutations) {
    if (mutation.op === 'set')
      Object.defineProperty(next, mutation.key, {
        value: mutation.value,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    else if (mutation.op === 'delete') delete next[mutation.key];
    else if (
      Array.isArray(next['lines']) &&
      typeof next['lines'][0] === 'object' &&
      next['lines'][0] !== null
    ) {
      (next['lines'][0] as Record<string, unknown>)[mutation.key] = mutation.value;
    }
  }
  return next;
}

type Payload =
  | { kind: 'mutated'; mutations: Mutation[] }
  | { kind: 'json'; value: unknown }
  | { kind: 'raw'; text: string }
  | { kind: 'truncated'; cut: number }
  | { kind: 'none' };

function payloadArbitrary(keys: readonly string[]): fc.Arbitrary<Payload> {
  return fc.oneof(
    {
      weight: 5,
      arbitrary: fc.record({
        kind: fc.constant('mutated' as const),
        mutations: fc.array(mutationArbitrary(keys), { minLength: 1, maxLength: 4 }),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('json' as const),
        value: fc.oneof(fc.anything({ maxDepth: 2 }), nastyValue),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('raw' as const),
        text: fc.oneof(fc.string({ maxLength: 100 }), fc.json({ maxDepth: 2 })),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({ kind: fc.constant('truncated' as const), cut: fc.nat({ max: 60 }) }),
    },
    { weight: 1, arbitrary: fc.constant({ kind: 'none' as const }) },
  );
}

/** Characters a header value may carry on the wire (RFC 9110 field-vchar, space and tab, obs-text). */
const headerText = fc.string({
  unit: fc
    .oneof(fc.integer({ min: 0x20, max: 0x7e }), fc.integer({ min: 0x80, max: 0xff }), fc.constant(0x09))
    .map((c) => String.fromCharCode(c)),
  maxLength: 140,
});

interface HeaderChoice {
  contentType: string | null;
  idempotencyKey: 'fresh' | 'absent' | { value: string };
  authorization: 'valid' | 'absent' | { value: string };
}

const headersArbitrary: fc.Arbitrary<HeaderChoice> = fc.record({
  contentType: fc.oneof(
    { weight: 6, arbitrary: fc.constant('application/json') },
    {
      weight: 3,
      arbitrary: fc.constantFrom(
        null,
        'application/json; charset=utf-8',
        'APPLICATION/JSON',
        'application/json; charset=latin1',
        'application/jsonx',
        'text/plain',
        'application/xml',
        'application/x-www-form-urlencoded',
        'multipart/form-data',
        '',
      ),
    },
    { weight: 1, arbitrary: headerText },
  ),
  idempotencyKey: fc.oneof(
    { weight: 6, arbitrary: fc.constant('fresh' as const) },
    { weight: 1, arbitrary: fc.constant('absent' as const) },
    { weight: 2, arbitrary: fc.record({ value: headerText }) },
  ),
  authorization: fc.oneof(
    { weight: 8, arbitrary: fc.constant('valid' as const) },
    { weight: 1, arbitrary: fc.constant('absent' as const) },
    { weight: 1, arbitrary: fc.record({ value: headerText }) },
  ),
});

/** Mostly the fixture member; sometimes another uuid, or a path segment that is not an id at all. */
const memberSegment: fc.Arbitrary<() => string> = fc.oneof(
  { weight: 6, arbitrary: fc.constant(() => memberId) },
  { weight: 1, arbitrary: fc.constant(() => randomUUID()) },
  {
    weight: 2,
    arbitrary: fc
      .oneof(
        fc.string({ maxLength: 60 }),
        fc.constantFrom('..', '.', '%00', '%zz', '%2F', 'null', "' OR 1=1 --", 'x'.repeat(300)),
      )
      .map((segment) => () => (/%/.test(segment) ? segment : encodeURIComponent(segment))),
  },
);

async function send(
  route: PostRoute,
  member: string,
  payload: Payload,
  headers: HeaderChoice,
): Promise<LightMyRequestResponse> {
  const valid = route.valid();
  let body: string | undefined;
  switch (payload.kind) {
    case 'mutated':
      body = JSON.stringify(applyMutations(valid, payload.mutations));
      break;
    case 'json':
      body = JSON.stringify(payload.value) ?? 'undefined';
      break;
    case 'raw':
      body = payload.text;
      break;
    case 'truncated': {
      const text = JSON.stringify(valid);
      body = text.slice(0, Math.min(payload.cut, text.length - 1));
      break;
    }
    case 'none':
      body = undefined;
  }
  const requestHeaders: Record<string, string> = {};
  if (headers.contentType !== null) requestHeaders['content-type'] = headers.contentType;
  if (headers.idempotencyKey === 'fresh') requestHeaders['idempotency-key'] = newIdempotencyKey();
  else if (headers.idempotencyKey !== 'absent')
    requestHeaders['idempotency-key'] = headers.idempotencyKey.value;
  if (headers.authorization === 'valid') requestHeaders['authorization'] = `Bearer ${route.key()}`;
  else if (headers.authorization !== 'absent') requestHeaders['authorization'] = headers.authorization.value;
  return ledger.app.inject({
    method: 'POST',
    url: route.url(member),
    headers: requestHeaders,
    ...(body === undefined ? {} : { payload: body }),
  });
}

let baseline = '';

/** The invariant every request must keep: no 5xx, problems are problem+json, refusals change nothing. */
async function check(response: LightMyRequestResponse): Promise<void> {
  expect(response.statusCode, response.body.slice(0, 500)).toBeLessThan(500);
  expectNoLeak(response.body, { sql: false });
  const now = await tenantFingerprint(database.current.pool, TENANT);
  if (response.statusCode >= 400) {
    expect(response.headers['content-type']).toMatch(PROBLEM_CONTENT_TYPE);
    const problem = response.json();
    expect(problem).toMatchObject({ status: response.statusCode });
    for (const field of ['type', 'title', 'detail', 'code']) expect(typeof problem[field]).toBe('string');
    expect(now, `refused with ${response.statusCode} ${problem.code} but the tenant changed`).toBe(baseline);
  }
  baseline = now;
}

describe('fuzzing every POST route', () => {
  beforeAll(async () => {
    baseline = await tenantFingerprint(database.current.pool, TENANT);
  });

  it.each(POST_ROUTES.map((route, index) => ({ route, index })))(
    '$route.name: never a 5xx, and a refused request changes nothing',
    async ({ route, index }) => {
      const keys = Object.keys(route.valid());
      await fc.assert(
        fc.asyncProperty(
          memberSegment,
          payloadArbitrary(keys),
          headersArbitrary,
          async (member, payload, headers) => {
            await check(await send(route, member(), payload, headers));
          },
        ),
        { numRuns: RUNS, seed: 4242 + index },
      );
    },
  );

  it('GET routes with random paths and query strings: never a 5xx', async () => {
    const query = fc.array(
      fc.tuple(
        fc.constantFrom('phone', 'limit', 'cursor', 'from', 'to', 'asOf', 'x', ''),
        fc.oneof(fc.string({ maxLength: 40 }), fc.integer().map(String)),
      ),
      { maxLength: 3 },
    );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('', '/ledger', '/balance', '/holds', '/unknown'),
        memberSegment,
        query,
        fc.constantFrom(pos, support),
        async (suffix, member, pairs, key) => {
          const search = pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
          const path =
            suffix === '' && pairs.some(([k]) => k === 'phone')
              ? '/v1/members'
              : `/v1/members/${member()}${suffix}`;
          const response = await get(ledger.app, key, `${path}${search === '' ? '' : `?${search}`}`);
          await check(response);
        },
      ),
      { numRuns: RUNS * 2, seed: 777 },
    );
  });

  it('ledger pages are bounded: a limit of 1-500 is served, anything else is refused', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.integer({ min: 1, max: 500 }),
          fc.integer({ min: 501, max: 2 ** 31 }),
          fc.integer({ max: 0 }),
        ),
        async (limit) => {
          const response = await get(ledger.app, pos, `/v1/members/${memberId}/ledger?limit=${limit}`);
          if (limit >= 1 && limit <= 500) {
            expect(response.statusCode).toBe(200);
            expect(response.json().entries.length).toBeLessThanOrEqual(limit + 1);
          } else {
            expect(response.statusCode).toBe(400);
            expect(response.json().errors[0].path).toBe('querystring.limit');
          }
        },
      ),
      { numRuns: RUNS, seed: 99 },
    );
  });

  it('leaves the member consistent after all of it', async () => {
    const view = await get(ledger.app, pos, `/v1/members/${memberId}`);
    expect(view.statusCode).toBe(200);
    const { balance, held, available } = view.json().points;
    expect(available).toBe(balance - held);
    expect(available).toBeGreaterThanOrEqual(0);
    const ledgerPage = await get(ledger.app, pos, `/v1/members/${memberId}/ledger?limit=500`);
    const entries = ledgerPage.json().entries as { points: number; balanceAfter: number }[];
    expect(entries.reduce((sum, e) => sum + e.points, 0)).toBe(balance);
  });
});

describe('SQL injection strings are plain data', () => {
  const TEXT_PAYLOADS = [
    "'; DROP TABLE events; --",
    '" OR ""="',
    "1' OR '1'='1",
    "Robert'); DROP TABLE streams;--",
    "\\'; SELECT SLEEP(5); -- ",
    "' UNION SELECT secret_sha256, key_id FROM api_keys --",
    '`; DELETE FROM commands; #',
    "'; UPDATE streams SET version = 0; --",
    '0x27204f52202731273d2731',
    '%27%20OR%201=1',
    '{{7*7}} ${7*7} <script>alert(1)</script>',
    "李雷'); --",
  ];
  /** Ids are visible ASCII without spaces; the same attacks fit. */
  const ID_PAYLOADS = TEXT_PAYLOADS.map((text) => text.replace(/[^\x21-\x7e]/g, '/**/')).map((text) =>
    text.slice(0, 120),
  );

  async function tablesIntact(): Promise<void> {
    const [tables] = await database.current.pool.query<RowDataPacket[]>(
      "SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name IN ('events','streams','commands','unique_keys','api_keys','log_partitions')",
    );
    expect(Number(tables[0]?.['n'])).toBe(6);
  }

  it('in register name, adjustment reason and ticket, line category: stored and read back verbatim', async () => {
    for (const text of TEXT_PAYLOADS) {
      const member = randomUUID();
      const registered = await post(ledger.app, pos, '/v1/members', {
        memberId: member,
        phone: `+4479${String(Math.floor(Math.random() * 1e8)).padStart(8, '0')}`,
        name: text.slice(0, 100),
        storeId: store,
        channel: 'store',
      });
      expect(registered.statusCode, registered.body).toBe(201);
      const bought = await post(ledger.app, pos, `/v1/members/${member}/purchases`, {
        orderId: uniqueId('o'),
        storeId: store,
        lines: [{ sku: text.slice(0, 64), category: text.slice(0, 64), quantity: 1, amountFen: 10_000 }],
      });
      expect(bought.statusCode, bought.body).toBe(201);
      const adjusted = await post(ledger.app, support, `/v1/members/${member}/adjustments`, {
        adjustmentId: uniqueId('adj'),
        points: -1,
        reason: text,
        ticket: text.slice(0, 128),
      });
      expect(adjusted.statusCode, adjusted.body).toBe(201);

      const entries = (await get(ledger.app, pos, `/v1/members/${member}/ledger`)).json().entries;
      expect(entries.at(-1).reason).toBe(text);
      const events = await ledger.runtime.store.readStream(TENANT, memberStreamId(member));
      const data = events.map((event) => event.data as Record<string, unknown>);
      expect(data[0]?.['name']).toBe(text.slice(0, 100));
      // A purchase keeps its categories (not its skus).
      expect(data.find((d) => Array.isArray(d['categories']))?.['categories']).toEqual([text.slice(0, 64)]);
      expect(data.at(-1)?.['ticket']).toBe(text.slice(0, 128));
    }
    await tablesIntact();
  });

  it('in orderId, refundId, storeId and Idempotency-Key: stored verbatim, found again, deduplicated', async () => {
    const injectedStore = ID_PAYLOADS[0]!;
    const storeKey = await ledger.key(TENANT, 'pos', [injectedStore]);
    const member = await registerMember(ledger, storeKey, injectedStore);
    for (const orderId of ID_PAYLOADS) {
      const idempotencyKey = `k-${orderId}`.slice(0, 128);
      const body = {
        orderId,
        storeId: injectedStore,
        lines: [{ sku: 'a', category: 'otc', quantity: 1, amountFen: 10_000 }],
      };
      const first = await post(ledger.app, storeKey, `/v1/members/${member}/purchases`, body, idempotencyKey);
      expect(first.statusCode, first.body).toBe(201);
      const replay = await post(
        ledger.app,
        storeKey,
        `/v1/members/${member}/purchases`,
        body,
        idempotencyKey,
      );
      expect(replay.headers['idempotent-replayed']).toBe('true');
      const duplicate = await post(ledger.app, storeKey, `/v1/members/${member}/purchases`, body);
      expect(duplicate.json().code).toBe('order-already-recorded');
      const refund = await post(ledger.app, storeKey, `/v1/members/${member}/refunds`, {
        refundId: orderId,
        orderId,
        storeId: injectedStore,
        amountFen: 5_000,
      });
      expect(refund.statusCode, refund.body).toBe(201);
      expect(refund.json().pointsReversed).toBe(50);
    }
    const entries = (await get(ledger.app, storeKey, `/v1/members/${member}/ledger?limit=500`)).json()
      .entries as { kind: string; orderId: string; storeId: string }[];
    expect(entries.filter((e) => e.kind === 'earned').map((e) => e.orderId)).toEqual(ID_PAYLOADS);
    expect(new Set(entries.map((e) => e.storeId))).toEqual(new Set([injectedStore]));
    await tablesIntact();
  });

  it('in query strings: refused or treated as data', async () => {
    for (const text of TEXT_PAYLOADS) {
      const byPhone = await get(ledger.app, pos, `/v1/members?phone=${encodeURIComponent(text)}`);
      expect(byPhone.statusCode).toBe(400);
      const cursor = await get(
        ledger.app,
        pos,
        `/v1/members/${memberId}/ledger?cursor=${encodeURIComponent(text)}`,
      );
      expect(cursor.statusCode).toBe(400);
    }
    await tablesIntact();
  });
});
