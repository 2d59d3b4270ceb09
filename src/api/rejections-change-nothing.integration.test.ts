import { randomUUID } from 'node:crypto';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../test/helpers/database.ts';
import { get, openTestLedger, post, type TestLedger } from '../../test/helpers/ledger.ts';
import { expectProblem, purchase, registerMember, uniqueId } from '../../test/helpers/api.ts';

/**
 * "A rejected request changes nothing" (CONTRACT.md "Requests"), seen the way a POS or an auditor sees a
 * member: the member view, the whole ledger and the balance folded from the events are the same after
 * each refusal as before it, whatever refused it (schema, store binding, the programme's rules).
 */

const database = useTestDatabase();
let ledger: TestLedger;
let pos: string;
let otherStorePos: string;
let support: string;
const store = 'store-1';
const otherStore = 'store-2';
let memberId = '';
let holdId = '';
let foreignHoldId = '';
let capturedHoldId = '';
let orderId = '';

beforeAll(async () => {
  ledger = await openTestLedger(database.current);
  await ledger.createTenant('acme');
  pos = await ledger.key('acme', 'pos', [store]);
  otherStorePos = await ledger.key('acme', 'pos', [otherStore]);
  support = await ledger.key('acme', 'support');
  memberId = await registerMember(ledger, pos, store);
  orderId = uniqueId('order');
  await purchase(ledger, pos, memberId, store, 100_000, orderId);
  const placeHold = async (key: string, storeId: string, points: number): Promise<string> => {
    const response = await post(ledger.app, key, `/v1/members/${memberId}/holds`, {
      orderId: uniqueId('o'),
      storeId,
      points,
    });
    expect(response.statusCode, response.body).toBe(201);
    return response.json().holdId;
  };
  holdId = await placeHold(pos, store, 100);
  foreignHoldId = await placeHold(otherStorePos, otherStore, 50);
  capturedHoldId = await placeHold(pos, store, 20);
  const capture = await post(ledger.app, pos, `/v1/members/${memberId}/holds/${capturedHoldId}/capture`, {});
  expect(capture.statusCode, capture.body).toBe(200);
  const redemption = await post(ledger.app, pos, `/v1/members/${memberId}/redemptions`, {
    orderId,
    storeId: store,
    points: 30,
  });
  expect(redemption.statusCode, redemption.body).toBe(201);
});
afterAll(async () => ledger.close());

interface Snapshot {
  view: unknown;
  ledger: unknown;
  balance: unknown;
}

async function snapshot(): Promise<Snapshot> {
  const view = await get(ledger.app, pos, `/v1/members/${memberId}`);
  const entries = await get(ledger.app, support, `/v1/members/${memberId}/ledger?limit=500`);
  const balance = await get(ledger.app, support, `/v1/members/${memberId}/balance`);
  for (const response of [view, entries, balance]) expect(response.statusCode, response.body).toBe(200);
  const { asOf: _asOf, ...balanceBody } = balance.json() as Record<string, unknown>;
  return { view: view.json(), ledger: entries.json(), balance: balanceBody };
}

interface RejectionCase {
  name: string;
  status: number;
  code: string;
  /** For validation-failed: the one field named. */
  path?: string;
  send(): Promise<LightMyRequestResponse>;
}

const member = (rest: string) => `/v1/members/${memberId}/${rest}`;

const CASES: RejectionCase[] = [
  {
    name: 'a hold past available (held points count)',
    status: 422,
    code: 'insufficient-points',
    send: () =>
      post(ledger.app, pos, member('holds'), { orderId: uniqueId('o'), storeId: store, points: 851 }),
  },
  {
    name: 'a redemption past available',
    status: 422,
    code: 'insufficient-points',
    send: () =>
      post(ledger.app, pos, member('redemptions'), { orderId: uniqueId('o'), storeId: store, points: 851 }),
  },
  {
    name: 'a support debit past available',
    status: 422,
    code: 'insufficient-points',
    send: () =>
      post(ledger.app, support, member('adjustments'), {
        adjustmentId: uniqueId('adj'),
        points: -851,
        reason: 'too much',
      }),
  },
  {
    name: 'a capture of more than held',
    status: 400,
    code: 'validation-failed',
    path: 'body.points',
    send: () => post(ledger.app, pos, member(`holds/${holdId}/capture`), { points: 101 }),
  },
  {
    name: 'a capture of a captured hold',
    status: 409,
    code: 'hold-not-active',
    send: () => post(ledger.app, pos, member(`holds/${capturedHoldId}/capture`), {}),
  },
  {
    name: 'a release of a captured hold',
    status: 409,
    code: 'hold-not-active',
    send: () => post(ledger.app, pos, member(`holds/${capturedHoldId}/release`), {}),
  },
  {
    name: 'a capture of an unknown hold',
    status: 409,
    code: 'hold-not-active',
    send: () => post(ledger.app, pos, member(`holds/${randomUUID()}/capture`), {}),
  },
  {
    name: "a capture of another store's hold",
    status: 403,
    code: 'forbidden',
    send: () => post(ledger.app, pos, member(`holds/${foreignHoldId}/capture`), {}),
  },
  {
    name: "a release of another store's hold",
    status: 403,
    code: 'forbidden',
    send: () => post(ledger.app, pos, member(`holds/${foreignHoldId}/release`), {}),
  },
  {
    name: 'a redemption for a store the key lacks',
    status: 403,
    code: 'forbidden',
    send: () =>
      post(ledger.app, pos, member('redemptions'), {
        orderId: uniqueId('o'),
        storeId: otherStore,
        points: 1,
      }),
  },
  {
    name: 'a purchase of an order already recorded',
    status: 409,
    code: 'order-already-recorded',
    send: () =>
      post(ledger.app, pos, member('purchases'), {
        orderId,
        storeId: store,
        lines: [{ sku: 'a', category: 'otc', quantity: 1, amountFen: 5_000 }],
      }),
  },
  {
    name: 'a refund past the order total',
    status: 422,
    code: 'refund-exceeds-order',
    send: () =>
      post(ledger.app, pos, member('refunds'), {
        refundId: uniqueId('r'),
        orderId,
        storeId: store,
        amountFen: 100_001,
      }),
  },
  {
    name: 'a refund of an order the member never bought',
    status: 404,
    code: 'not-found',
    send: () =>
      post(ledger.app, pos, member('refunds'), {
        refundId: uniqueId('r'),
        orderId: uniqueId('nope'),
        storeId: store,
        amountFen: 100,
      }),
  },
  {
    name: 'a purchase whose lines total past the order limit',
    status: 400,
    code: 'validation-failed',
    path: 'body.lines',
    send: () =>
      post(ledger.app, pos, member('purchases'), {
        orderId: uniqueId('o'),
        storeId: store,
        lines: [
          { sku: 'a', category: 'otc', quantity: 1, amountFen: 600_000_000 },
          { sku: 'b', category: 'otc', quantity: 1, amountFen: 600_000_000 },
        ],
      }),
  },
  {
    name: 'a hold with a ttlSeconds past 3600',
    status: 400,
    code: 'validation-failed',
    path: 'body.ttlSeconds',
    send: () =>
      post(ledger.app, pos, member('holds'), {
        orderId: uniqueId('o'),
        storeId: store,
        points: 1,
        ttlSeconds: 3_601,
      }),
  },
];

describe('a rejected request changes nothing a client can see', () => {
  it('starts from a member with a balance, an active hold and movements of every kind', async () => {
    const view = (await get(ledger.app, pos, `/v1/members/${memberId}`)).json();
    // 1000 earned, 20 captured, 30 redeemed; 100 + 50 still held.
    expect(view.points).toEqual({ balance: 950, held: 150, available: 800 });
  });

  it.each(CASES)('$name answers $status $code', async ({ status, code, path, send }) => {
    const before = await snapshot();
    const response = await send();
    const problem = expectProblem(response, status, code);
    // Whether the schema or a domain rule refused it, the field is named the same way: where it was sent.
    if (code === 'validation-failed') {
      expect(problem.errors?.map((e) => e.path)).toEqual([path]);
      expect(problem['detail']).toMatch(new RegExp(`^${path}: `));
    }
    expect(await snapshot()).toEqual(before);
  });
});
