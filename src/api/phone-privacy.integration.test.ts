import { randomUUID } from 'node:crypto';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../test/helpers/database.ts';
import { get, newIdempotencyKey, openTestLedger, post, type TestLedger } from '../../test/helpers/ledger.ts';
import { expectProblem, purchase } from '../../test/helpers/api.ts';

/**
 * The member view carries the phone masked (CONTRACT.md "Member view: phone (masked)"). No answer of the
 * API, success or problem, first response or replay, carries the number in the clear.
 */

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

/** No run of the number's digits longer than what a mask keeps in the clear appears in the text. */
function expectNoClearPhone(response: LightMyRequestResponse, digits: string): void {
  const compact = response.body.replace(/[\s-]/g, '');
  expect(compact, response.body).not.toContain(digits);
  expect(compact, response.body).not.toContain(digits.slice(-8));
}

describe.each([
  {
    label: 'a mainland mobile',
    phone: '138 0013 9123',
    e164: '+8613800139123',
    digits: '13800139123',
    masked: /^\+86138\*{4}9123$/,
  },
  {
    label: 'an international number',
    phone: '+44 7911 123456',
    e164: '+447911123456',
    digits: '447911123456',
    masked: /\*{4}/,
  },
])('$label', ({ phone, e164, digits, masked }) => {
  it('is masked in every view and never sent in the clear, on any route or in any problem', async () => {
    const memberId = randomUUID();
    const key = newIdempotencyKey();
    const body = { memberId, phone, storeId: store, channel: 'store' };
    const responses: LightMyRequestResponse[] = [];

    const registered = await post(ledger.app, pos, '/v1/members', body, key);
    expect(registered.statusCode, registered.body).toBe(201);
    expect(registered.json().phone).toMatch(masked);
    responses.push(registered);
    const replayed = await post(ledger.app, pos, '/v1/members', body, key);
    expect(replayed.headers['idempotent-replayed']).toBe('true');
    responses.push(replayed);

    await purchase(ledger, pos, memberId, store, 10_000);
    for (const reader of [pos, support, auditor]) {
      const byId = await get(ledger.app, reader, `/v1/members/${memberId}`);
      expect(byId.statusCode).toBe(200);
      expect(byId.json().phone).toBe(registered.json().phone);
      const byPhone = await get(ledger.app, reader, `/v1/members?phone=${encodeURIComponent(phone)}`);
      expect(byPhone.statusCode).toBe(200);
      expect(byPhone.json().memberId).toBe(memberId);
      expect(byPhone.json().phone).toBe(registered.json().phone);
      responses.push(byId, byPhone, await get(ledger.app, reader, `/v1/members/${memberId}/ledger`));
    }
    responses.push(await get(ledger.app, support, `/v1/members/${memberId}/balance`));

    // The same number registered again (spelt in E.164) answers member-exists, and its replay.
    const againKey = newIdempotencyKey();
    const again = { phone: e164, storeId: store, channel: 'app' };
    const exists = await post(ledger.app, pos, '/v1/members', again, againKey);
    expect(expectProblem(exists, 409, 'member-exists')['memberId']).toBe(memberId);
    responses.push(exists, await post(ledger.app, pos, '/v1/members', again, againKey));

    for (const response of responses) expectNoClearPhone(response, digits);
  });
});

it('does not echo a malformed phone in its validation problem', async () => {
  const response = await post(ledger.app, pos, '/v1/members', {
    phone: '1380013912',
    storeId: store,
    channel: 'store',
  });
  expect(expectProblem(response, 400, 'validation-failed').errors?.map((e) => e.path)).toEqual([
    'body.phone',
  ]);
  expect(response.body).not.toContain('1380013912');
  const lookup = await get(ledger.app, pos, '/v1/members?phone=1380013912');
  expectProblem(lookup, 400, 'validation-failed');
  expect(lookup.body).not.toContain('1380013912');
});
