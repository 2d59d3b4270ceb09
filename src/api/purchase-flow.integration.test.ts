import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../test/helpers/database.ts';
import { get, newIdempotencyKey, openTestLedger, post, type TestLedger } from '../../test/helpers/ledger.ts';

const database = useTestDatabase();
let ledger: TestLedger;
let pos: string;
const memberId = '0b6f3d5e-1c2a-4f4e-9d1e-7a1b2c3d4e5f';
const store = 'store-1';

beforeAll(async () => {
  ledger = await openTestLedger(database.current);
  await ledger.createTenant('acme');
  pos = await ledger.key('acme', 'pos', [store]);
});
afterAll(async () => ledger.close());

describe('a checkout, end to end over HTTP', () => {
  it('registers, earns, holds, captures, refunds, and reads its own writes', async () => {
    const registered = await post(ledger.app, pos, '/v1/members', {
      memberId,
      phone: '138 0013 8000',
      storeId: store,
      channel: 'store',
    });
    expect(registered.statusCode).toBe(201);
    expect(registered.json()).toMatchObject({
      memberId,
      tenantId: 'acme',
      tier: 'standard',
      points: { balance: 0 },
    });
    expect(registered.json().phone).not.toContain('0013');

    const purchase = await post(ledger.app, pos, `/v1/members/${memberId}/purchases`, {
      orderId: 'o-1',
      storeId: store,
      lines: [
        { sku: 'a', category: 'otc', quantity: 1, amountFen: 12_850 },
        { sku: 'b', category: 'rx', quantity: 2, amountFen: 10_000, insuranceFen: 6_000 },
      ],
    });
    expect(purchase.statusCode).toBe(201);
    // eligible = 12850 + 4000 = 16850 fen -> floor(16850 x 1 x 1000 / 100000) = 168 points.
    expect(purchase.json()).toMatchObject({ pointsEarned: 168, balance: 168, available: 168 });
    expect(purchase.json().lot.expiresAt).toBe('2027-12-31T16:00:00.000Z');

    const hold = await post(ledger.app, pos, `/v1/members/${memberId}/holds`, {
      orderId: 'o-2',
      storeId: store,
      points: 100,
    });
    expect(hold.statusCode).toBe(201);
    expect(hold.json()).toMatchObject({ points: 100, available: 68 });

    const view = await get(ledger.app, pos, `/v1/members/${memberId}`);
    expect(view.json().points).toEqual({ balance: 168, held: 100, available: 68 });

    const capture = await post(
      ledger.app,
      pos,
      `/v1/members/${memberId}/holds/${hold.json().holdId}/capture`,
      { points: 60 },
    );
    expect(capture.statusCode).toBe(200);
    expect(capture.json()).toEqual({ pointsRedeemed: 60, balance: 108, available: 108 });

    const again = await post(
      ledger.app,
      pos,
      `/v1/members/${memberId}/holds/${hold.json().holdId}/release`,
      {},
    );
    expect(again.statusCode).toBe(409);
    expect(again.json().code).toBe('hold-not-active');

    const ledgerPage = await get(ledger.app, pos, `/v1/members/${memberId}/ledger`);
    expect(ledgerPage.statusCode).toBe(200);
    expect(
      ledgerPage.json().entries.map((e: { kind: string; points: number }) => [e.kind, e.points]),
    ).toEqual([
      ['earned', 168],
      ['redeemed', -60],
    ]);
  });

  it('replays the first response for a retried Idempotency-Key and refuses it with another body', async () => {
    const key = newIdempotencyKey();
    const body = {
      orderId: 'o-idem',
      storeId: store,
      lines: [{ sku: 'a', category: 'otc', quantity: 1, amountFen: 1_000 }],
    };
    const first = await post(ledger.app, pos, `/v1/members/${memberId}/purchases`, body, key);
    const second = await post(ledger.app, pos, `/v1/members/${memberId}/purchases`, body, key);
    expect(first.statusCode).toBe(201);
    expect(second.statusCode).toBe(201);
    expect(second.headers['idempotent-replayed']).toBe('true');
    expect(second.json()).toEqual(first.json());
    const reused = await post(
      ledger.app,
      pos,
      `/v1/members/${memberId}/purchases`,
      { ...body, orderId: 'o-other' },
      key,
    );
    expect(reused.statusCode).toBe(409);
    expect(reused.json().code).toBe('idempotency-key-reused');
    const sameOrder = await post(ledger.app, pos, `/v1/members/${memberId}/purchases`, body);
    expect(sameOrder.statusCode).toBe(409);
    expect(sameOrder.json().code).toBe('order-already-recorded');
  });
});
