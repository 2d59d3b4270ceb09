import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../test/helpers/database.ts';
import { get, openTestLedger, post, type TestLedger } from '../../test/helpers/ledger.ts';
import { expectProblem, offendingPaths, uniquePhone } from '../../test/helpers/api.ts';

const database = useTestDatabase();
let ledger: TestLedger;
let pos: string;
let support: string;
let auditor: string;
const store = 'store-1';

beforeAll(async () => {
  ledger = await openTestLedger(database.current);
  await ledger.createTenant('acme');
  pos = await ledger.key('acme', 'pos', [store]);
  support = await ledger.key('acme', 'support');
  auditor = await ledger.key('acme', 'auditor');
});
afterAll(async () => ledger.close());

describe('POST /v1/members', () => {
  it('registers a member and answers 201 with the member view', async () => {
    const memberId = randomUUID();
    const response = await post(ledger.app, pos, '/v1/members', {
      memberId,
      phone: '138 0013 8001',
      name: 'Li Lei',
      storeId: store,
      channel: 'wechat',
    });
    expect(response.statusCode).toBe(201);
    expect(response.headers['content-type']).toMatch(/^application\/json/);
    expect(response.json()).toEqual({
      memberId,
      tenantId: 'acme',
      phone: '+86138****8001',
      tier: 'standard',
      points: { balance: 0, held: 0, available: 0 },
      expiring: [],
      tags: [],
      version: 1,
    });
  });

  it('derives the member id from the Idempotency-Key when none is given, so a retry names the same member', async () => {
    const body = { phone: uniquePhone(), storeId: store, channel: 'app' };
    const first = await post(ledger.app, pos, '/v1/members', body, 'register-derived-1');
    const retry = await post(ledger.app, pos, '/v1/members', body, 'register-derived-1');
    expect(first.statusCode).toBe(201);
    expect(first.json().memberId).toMatch(/^[0-9a-f-]{36}$/);
    expect(retry.statusCode).toBe(201);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(retry.json()).toEqual(first.json());
  });

  it('answers 409 member-exists with the existing memberId for the same phone, however it is spelt', async () => {
    const memberId = randomUUID();
    const phone = uniquePhone();
    expect(
      (await post(ledger.app, pos, '/v1/members', { memberId, phone, storeId: store, channel: 'store' }))
        .statusCode,
    ).toBe(201);
    const spelt = `${phone.slice(0, 3)} ${phone.slice(3, 7)}-${phone.slice(7)}`;
    for (const candidate of [phone, spelt, `+86${phone}`]) {
      const again = await post(ledger.app, pos, '/v1/members', {
        memberId: randomUUID(),
        phone: candidate,
        storeId: store,
        channel: 'o2o',
      });
      const problem = expectProblem(again, 409, 'member-exists');
      expect(problem['memberId']).toBe(memberId);
    }
    // Without a memberId as well (the derived id is new, the phone is not).
    const derived = await post(ledger.app, pos, '/v1/members', { phone, storeId: store, channel: 'b2c' });
    expect(expectProblem(derived, 409, 'member-exists')['memberId']).toBe(memberId);
  });

  it('answers 409 member-exists with the memberId when the memberId is taken with another phone', async () => {
    const memberId = randomUUID();
    expect(
      (
        await post(ledger.app, pos, '/v1/members', {
          memberId,
          phone: uniquePhone(),
          storeId: store,
          channel: 'store',
        })
      ).statusCode,
    ).toBe(201);
    const again = await post(ledger.app, pos, '/v1/members', {
      memberId,
      phone: uniquePhone(),
      storeId: store,
      channel: 'store',
    });
    expect(expectProblem(again, 409, 'member-exists')['memberId']).toBe(memberId);
  });

  it('answers 400 validation-failed listing every offending field', async () => {
    const response = await post(ledger.app, pos, '/v1/members', {
      memberId: 'not-a-uuid',
      phone: '12345',
      name: '   ',
      storeId: '',
      channel: 'shop',
    });
    expect(offendingPaths(response)).toEqual([
      'body.channel',
      'body.memberId',
      'body.name',
      'body.phone',
      'body.storeId',
    ]);
  });

  it('names unknown fields in the list rather than ignoring them', async () => {
    const response = await post(ledger.app, pos, '/v1/members', {
      phone: uniquePhone(),
      storeId: store,
      channel: 'store',
      nickname: 'x',
      referrer: 'y',
    });
    expect(offendingPaths(response)).toEqual(['body.nickname', 'body.referrer']);
  });

  it('refuses a missing field and a name past 100 characters', async () => {
    expect(
      offendingPaths(await post(ledger.app, pos, '/v1/members', { phone: uniquePhone(), storeId: store })),
    ).toEqual(['body.channel']);
    const long = await post(ledger.app, pos, '/v1/members', {
      phone: uniquePhone(),
      name: 'n'.repeat(101),
      storeId: store,
      channel: 'store',
    });
    expect(offendingPaths(long)).toEqual(['body.name']);
  });
});

describe('GET /v1/members/{memberId}', () => {
  it('answers 200 with the member view to pos, support and auditor', async () => {
    const memberId = randomUUID();
    await post(ledger.app, pos, '/v1/members', {
      memberId,
      phone: uniquePhone(),
      storeId: store,
      channel: 'store',
    });
    for (const key of [pos, support, auditor]) {
      const response = await get(ledger.app, key, `/v1/members/${memberId}`);
      expect(response.statusCode).toBe(200);
      expect(response.json()).toMatchObject({ memberId, tenantId: 'acme', version: 1, tags: [] });
    }
  });

  it('answers 404 not-found for an unknown member and 400 for an id that is not a uuid', async () => {
    expectProblem(await get(ledger.app, pos, `/v1/members/${randomUUID()}`), 404, 'not-found');
    expect(offendingPaths(await get(ledger.app, pos, '/v1/members/42'))).toEqual(['params.memberId']);
  });

  it("shows the member's tags from the read model, only while they hold", async () => {
    const memberId = randomUUID();
    await post(ledger.app, pos, '/v1/members', {
      memberId,
      phone: uniquePhone(),
      storeId: store,
      channel: 'store',
    });
    // The projector writes member_tags; these rows stand in for it.
    await database.current.pool.query(
      `INSERT INTO member_tags (tenant_id, member_id, tag, expires_at, updated_at) VALUES
       ('acme', ?, 'chronic:diabetes', '2026-06-01 00:00:00.000', '2026-03-01 00:00:00.000'),
       ('acme', ?, 'baby', '2026-02-01 00:00:00.000', '2026-01-01 00:00:00.000')`,
      [memberId, memberId],
    );
    const response = await get(ledger.app, pos, `/v1/members/${memberId}`);
    expect(response.json().tags).toEqual(['chronic:diabetes']);
  });
});

describe('GET /v1/members?phone=', () => {
  it('finds a member by any spelling of the phone', async () => {
    const memberId = randomUUID();
    const phone = uniquePhone();
    await post(ledger.app, pos, '/v1/members', { memberId, phone, storeId: store, channel: 'store' });
    for (const spelling of [
      phone,
      `+86${phone}`,
      `${phone.slice(0, 3)} ${phone.slice(3, 7)} ${phone.slice(7)}`,
    ]) {
      for (const key of [pos, support, auditor]) {
        const response = await get(ledger.app, key, `/v1/members?phone=${encodeURIComponent(spelling)}`);
        expect(response.statusCode, spelling).toBe(200);
        expect(response.json().memberId).toBe(memberId);
      }
    }
  });

  it('answers 404 for a phone no member has, and 400 for a missing or malformed phone', async () => {
    expectProblem(await get(ledger.app, pos, `/v1/members?phone=${uniquePhone()}`), 404, 'not-found');
    expect(offendingPaths(await get(ledger.app, pos, '/v1/members'))).toEqual(['querystring.phone']);
    expect(offendingPaths(await get(ledger.app, pos, '/v1/members?phone=abc'))).toEqual([
      'querystring.phone',
    ]);
    expect(offendingPaths(await get(ledger.app, pos, '/v1/members?phone=13800138000&extra=1'))).toEqual([
      'querystring.extra',
    ]);
  });
});
