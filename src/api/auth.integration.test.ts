import { createHash, randomUUID } from 'node:crypto';
import type { RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../test/helpers/database.ts';
import { newIdempotencyKey, openTestLedger, post, type TestLedger } from '../../test/helpers/ledger.ts';
import { expectProblem, purchase, tenantFingerprint, uniqueId, uniquePhone } from '../../test/helpers/api.ts';
import { ROLES, type Role } from '../auth/roles.ts';

/**
 * Who may do what (CONTRACT.md "Tenancy, keys and roles"): every route x every role x a member of the
 * key's own tenant or of another x, for pos keys, a store bound to the key or not.
 */

const database = useTestDatabase();
let ledger: TestLedger;
const OWN = 'acme';
const OTHER = 'globex';
const BOUND_STORE = 'store-1';
const UNBOUND_STORE = 'store-2';
/** Every key made in this file, in plaintext, to prove none is stored. */
const plaintextKeys: string[] = [];
const UUID_PATTERN = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;
const keys = {} as Record<Role, string>;
const setupKeys = {} as Record<string, string>;

interface Target {
  tenantId: string;
  memberId: string;
  phone: string;
}
const targets = {} as Record<'own' | 'other', Target>;
/** The phone of a member of the other tenant that this tenant's matrix registers here (phones are per tenant). */
let otherTenantPhone = '';

async function makeKey(tenantId: string, role: Role, stores: string[] = []): Promise<string> {
  const key = await ledger.key(tenantId, role, stores);
  plaintextKeys.push(key);
  return key;
}

async function makeTarget(tenantId: string): Promise<Target> {
  const memberId = randomUUID();
  const phone = uniquePhone();
  const response = await post(ledger.app, setupKeys[tenantId]!, '/v1/members', {
    memberId,
    phone,
    storeId: BOUND_STORE,
    channel: 'store',
  });
  expect(response.statusCode).toBe(201);
  await purchase(ledger, setupKeys[tenantId]!, memberId, BOUND_STORE, 100_000_000, uniqueId('order'));
  return { tenantId, memberId, phone };
}

beforeAll(async () => {
  ledger = await openTestLedger(database.current);
  await ledger.createTenant(OWN);
  await ledger.createTenant(OTHER);
  for (const tenantId of [OWN, OTHER])
    setupKeys[tenantId] = await makeKey(tenantId, 'pos', [BOUND_STORE, UNBOUND_STORE]);
  for (const role of ROLES) keys[role] = await makeKey(OWN, role, role === 'pos' ? [BOUND_STORE] : []);
  targets.own = await makeTarget(OWN);
  targets.other = await makeTarget(OTHER);
  otherTenantPhone = (await makeTarget(OTHER)).phone;
});
afterAll(async () => ledger.close());

interface Request {
  method: 'GET' | 'POST';
  url: string;
  body?: unknown;
}

interface RouteCase {
  route: string;
  roles: readonly Role[];
  /** Where a pos key's store binding is checked: a storeId in the body, the hold's store, or nowhere. */
  store: 'body' | 'hold' | 'none';
  success: number;
  /** `live` is false when the request is refused before it reads anything, so no fixture is needed. */
  request(target: Target, storeId: string, live: boolean): Promise<Request>;
}

async function placeHold(target: Target, storeId: string): Promise<string> {
  const response = await post(
    ledger.app,
    setupKeys[target.tenantId]!,
    `/v1/members/${target.memberId}/holds`,
    {
      orderId: uniqueId('o'),
      storeId,
      points: 1,
    },
  );
  expect(response.statusCode).toBe(201);
  return response.json().holdId;
}

const ROUTES: RouteCase[] = [
  {
    route: 'POST /v1/members',
    roles: ['pos'],
    store: 'body',
    success: 201,
    // "Another tenant's member": a phone registered in the other tenant registers here all the same.
    request: async (target, storeId) => ({
      method: 'POST',
      url: '/v1/members',
      body: { phone: target.tenantId === OWN ? uniquePhone() : otherTenantPhone, storeId, channel: 'store' },
    }),
  },
  {
    route: 'GET /v1/members/{memberId}',
    roles: ['pos', 'support', 'auditor'],
    store: 'none',
    success: 200,
    request: async (target) => ({ method: 'GET', url: `/v1/members/${target.memberId}` }),
  },
  {
    route: 'GET /v1/members?phone=',
    roles: ['pos', 'support', 'auditor'],
    store: 'none',
    success: 200,
    request: async (target) => ({ method: 'GET', url: `/v1/members?phone=${target.phone}` }),
  },
  {
    route: 'POST /v1/members/{memberId}/purchases',
    roles: ['pos'],
    store: 'body',
    success: 201,
    request: async (target, storeId) => ({
      method: 'POST',
      url: `/v1/members/${target.memberId}/purchases`,
      body: {
        orderId: uniqueId('o'),
        storeId,
        lines: [{ sku: 'a', category: 'otc', quantity: 1, amountFen: 1_000 }],
      },
    }),
  },
  {
    route: 'POST /v1/members/{memberId}/holds',
    roles: ['pos'],
    store: 'body',
    success: 201,
    request: async (target, storeId) => ({
      method: 'POST',
      url: `/v1/members/${target.memberId}/holds`,
      body: { orderId: uniqueId('o'), storeId, points: 1, ttlSeconds: 1 },
    }),
  },
  {
    route: 'POST /v1/members/{memberId}/holds/{holdId}/capture',
    roles: ['pos'],
    store: 'hold',
    success: 200,
    request: async (target, storeId, live) => ({
      method: 'POST',
      url: `/v1/members/${target.memberId}/holds/${live ? await placeHold(target, storeId) : randomUUID()}/capture`,
      body: {},
    }),
  },
  {
    route: 'POST /v1/members/{memberId}/holds/{holdId}/release',
    roles: ['pos'],
    store: 'hold',
    success: 200,
    request: async (target, storeId, live) => ({
      method: 'POST',
      url: `/v1/members/${target.memberId}/holds/${live ? await placeHold(target, storeId) : randomUUID()}/release`,
      body: {},
    }),
  },
  {
    route: 'POST /v1/members/{memberId}/redemptions',
    roles: ['pos'],
    store: 'body',
    success: 201,
    request: async (target, storeId) => ({
      method: 'POST',
      url: `/v1/members/${target.memberId}/redemptions`,
      body: { orderId: uniqueId('o'), storeId, points: 1 },
    }),
  },
  {
    route: 'POST /v1/members/{memberId}/refunds',
    roles: ['pos'],
    store: 'body',
    success: 201,
    request: async (target, storeId, live) => {
      const orderId = uniqueId('o');
      if (live && target.tenantId === OWN) {
        await purchase(ledger, setupKeys[target.tenantId]!, target.memberId, BOUND_STORE, 10_000, orderId);
      }
      return {
        method: 'POST',
        url: `/v1/members/${target.memberId}/refunds`,
        body: { refundId: uniqueId('r'), orderId, storeId, amountFen: 1_000 },
      };
    },
  },
  {
    route: 'POST /v1/members/{memberId}/adjustments',
    roles: ['support', 'admin'],
    store: 'none',
    success: 201,
    request: async (target) => ({
      method: 'POST',
      url: `/v1/members/${target.memberId}/adjustments`,
      body: { adjustmentId: uniqueId('adj'), points: 1, reason: 'matrix' },
    }),
  },
  {
    route: 'GET /v1/members/{memberId}/ledger',
    roles: ['pos', 'support', 'auditor'],
    store: 'none',
    success: 200,
    request: async (target) => ({ method: 'GET', url: `/v1/members/${target.memberId}/ledger?limit=5` }),
  },
  {
    route: 'GET /v1/members/{memberId}/balance',
    roles: ['support', 'auditor'],
    store: 'none',
    success: 200,
    request: async (target) => ({ method: 'GET', url: `/v1/members/${target.memberId}/balance` }),
  },
];

interface MatrixCase {
  name: string;
  routeCase: RouteCase;
  role: Role;
  tenant: 'own' | 'other';
  storeId: string;
  expected: number;
}

function expectedStatus(routeCase: RouteCase, role: Role, tenant: 'own' | 'other', storeId: string): number {
  if (!routeCase.roles.includes(role)) return 403;
  const unbound = role === 'pos' && storeId === UNBOUND_STORE;
  // The body's store is checked before the member is looked up; that answer says nothing about the member.
  if (unbound && routeCase.store === 'body') return 403;
  if (tenant === 'other') return routeCase.route === 'POST /v1/members' ? 201 : 404;
  if (unbound && routeCase.store === 'hold') return 403;
  return routeCase.success;
}

const MATRIX: MatrixCase[] = ROUTES.flatMap((routeCase) =>
  ROLES.flatMap((role) =>
    (['own', 'other'] as const).flatMap((tenant) =>
      (role === 'pos' ? [BOUND_STORE, UNBOUND_STORE] : [BOUND_STORE]).map((storeId) => {
        const expected = expectedStatus(routeCase, role, tenant, storeId);
        return {
          name: `${routeCase.route} as ${role}, ${tenant} tenant's member${role === 'pos' ? `, ${storeId === BOUND_STORE ? 'bound' : 'unbound'} store` : ''} -> ${expected}`,
          routeCase,
          role,
          tenant,
          storeId,
          expected,
        };
      }),
    ),
  ),
);

async function send(key: string | null, request: Request, headers: Record<string, string> = {}) {
  return ledger.app.inject({
    method: request.method,
    url: request.url,
    headers: {
      ...(key === null ? {} : { authorization: `Bearer ${key}` }),
      ...(request.method === 'POST'
        ? { 'idempotency-key': newIdempotencyKey(), 'content-type': 'application/json' }
        : {}),
      ...headers,
    },
    ...(request.body === undefined ? {} : { payload: JSON.stringify(request.body) }),
  });
}

describe('the role / tenant / store matrix', () => {
  it('covers every route and role', () => {
    expect(new Set(MATRIX.map((c) => c.routeCase.route)).size).toBe(12);
    expect(new Set(MATRIX.map((c) => c.role))).toEqual(new Set(ROLES));
  });

  it.each(MATRIX)('$name', async ({ routeCase, role, tenant, storeId, expected }) => {
    const target = targets[tenant];
    const live = routeCase.roles.includes(role);
    const request = await routeCase.request(target, storeId, live);
    const otherBefore = await tenantFingerprint(database.current.pool, OTHER);
    const response = await send(keys[role], request);
    expect(response.statusCode, response.body).toBe(expected);
    if (expected === 403) expectProblem(response, 403, 'forbidden');
    if (expected === 404) {
      const problem = expectProblem(response, 404, 'not-found');
      // Nothing in the answer tells a member of another tenant from one that does not exist at all.
      const unknownTarget = { ...target, memberId: randomUUID(), phone: uniquePhone() };
      const unknown = await send(keys[role], await routeCase.request(unknownTarget, storeId, false));
      const anonymous = (value: unknown) => JSON.stringify(value).replace(UUID_PATTERN, '<id>');
      expect(anonymous(problem)).toBe(anonymous(expectProblem(unknown, 404, 'not-found')));
    }
    // A key never changes another tenant's data.
    expect(await tenantFingerprint(database.current.pool, OTHER)).toBe(otherBefore);
  });
});

describe('authentication', () => {
  let revoked: string;
  let wrongSecret: string;
  let unknownKeyId: string;
  let otherTenantClaim: string;

  beforeAll(async () => {
    revoked = await makeKey(OWN, 'support');
    const [, , keyId] = revoked.split('.');
    await database.current.pool.query(
      'UPDATE api_keys SET revoked_at = UTC_TIMESTAMP(3) WHERE tenant_id = ? AND key_id = ?',
      [OWN, keyId],
    );
    const [prefix, tenant, keyId2, secret] = keys.support.split('.') as [string, string, string, string];
    wrongSecret = [prefix, tenant, keyId2, `${secret.slice(0, -1)}${secret.endsWith('A') ? 'B' : 'A'}`].join(
      '.',
    );
    unknownKeyId = [prefix, tenant, '0123456789abcdef', secret].join('.');
    otherTenantClaim = [prefix, OTHER, keyId2, secret].join('.');
  });

  const BAD_AUTHORIZATION: [string, () => string | null][] = [
    ['no Authorization header', () => null],
    ['an empty bearer', () => 'Bearer '],
    ['a non-key bearer', () => 'Bearer nonsense'],
    ['Basic credentials', () => `Basic ${Buffer.from('user:pass').toString('base64')}`],
    ['a lower-case scheme', () => `bearer ${keys.support}`],
    ['a key with a wrong secret', () => `Bearer ${wrongSecret}`],
    ['a key id that does not exist', () => `Bearer ${unknownKeyId}`],
    ['a key rewritten to claim another tenant', () => `Bearer ${otherTenantClaim}`],
    ['a revoked key', () => `Bearer ${revoked}`],
    ['a key with trailing text', () => `Bearer ${keys.support} x`],
  ];

  const CASES = ROUTES.flatMap((routeCase) =>
    BAD_AUTHORIZATION.map(([label, header]) => ({
      name: `${routeCase.route} with ${label} -> 401`,
      routeCase,
      header,
    })),
  );

  it.each(CASES)('$name', async ({ routeCase, header }) => {
    const request = await routeCase.request(targets.own, BOUND_STORE, false);
    const before = await tenantFingerprint(database.current.pool, OWN);
    const value = header();
    const response = await send(null, request, value === null ? {} : { authorization: value });
    expectProblem(response, 401, 'unauthorized');
    expect(await tenantFingerprint(database.current.pool, OWN)).toBe(before);
  });

  it('answers 401 before looking at the body, the Idempotency-Key or the route parameters', async () => {
    const response = await ledger.app.inject({
      method: 'POST',
      url: '/v1/members/not-a-uuid/purchases',
      payload: 'not json',
      headers: { 'content-type': 'application/json' },
    });
    expectProblem(response, 401, 'unauthorized');
  });

  it('lets a pos key bound to several stores act for each of them', async () => {
    const both = await makeKey(OWN, 'pos', [BOUND_STORE, UNBOUND_STORE]);
    for (const storeId of [BOUND_STORE, UNBOUND_STORE]) {
      const response = await post(ledger.app, both, `/v1/members/${targets.own.memberId}/redemptions`, {
        orderId: uniqueId('o'),
        storeId,
        points: 1,
      });
      expect(response.statusCode).toBe(201);
    }
    const third = await post(ledger.app, both, `/v1/members/${targets.own.memberId}/redemptions`, {
      orderId: uniqueId('o'),
      storeId: 'store-3',
      points: 1,
    });
    expectProblem(third, 403, 'forbidden');
  });
});

describe('keys at rest', () => {
  it('stores only a sha256 of each secret: the plaintext appears in no column of any table', async () => {
    const pool = database.current.pool;
    expect(plaintextKeys.length).toBeGreaterThan(ROLES.length);
    const [stored] = await pool.query<RowDataPacket[]>(
      'SELECT tenant_id, key_id, secret_sha256 FROM api_keys',
    );
    for (const key of plaintextKeys) {
      const [, tenantId, keyId, secret] = key.split('.') as [string, string, string, string];
      const row = stored.find((r) => r['tenant_id'] === tenantId && r['key_id'] === keyId);
      expect(row?.['secret_sha256']).toBe(createHash('sha256').update(secret).digest('hex'));
    }
    const [tables] = await pool.query<RowDataPacket[]>(
      "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE'",
    );
    expect(tables.length).toBeGreaterThan(5);
    for (const table of tables) {
      const [rows] = await pool.query<RowDataPacket[]>(`SELECT * FROM \`${String(table['name'])}\``);
      const text = JSON.stringify(rows);
      for (const key of plaintextKeys) {
        const secret = key.split('.')[3]!;
        expect(text.includes(secret), `${String(table['name'])} holds a key's secret`).toBe(false);
        expect(
          text.includes(Buffer.from(secret).toString('hex')),
          `${String(table['name'])} holds a key's secret in hex`,
        ).toBe(false);
      }
    }
  });
});
