import type { RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../test/helpers/database.ts';
import { openTestLedger, post, type TestLedger } from '../../test/helpers/ledger.ts';
import { ChaosProxy } from './proxy.ts';

/**
 * The bug the chaos run found (docs/reliability.md, "Findings"), reproduced deterministically with two API
 * processes on one database, the first one's database link frozen by the chaos proxy:
 *   1. a till sends a hold (key K) to process A, whose database link is frozen: the attempt waits there;
 *   2. the till times out and sends K again, same body, to process B: 422 insufficient-points, a definitive
 *      answer; the till tells the customer and moves on;
 *   3. the member earns points (another command);
 *   4. A's link comes back: the first attempt, still in flight, finds no command K (a rejection stores
 *      nothing), decides again on the new state, and records the hold under K.
 * The till was told K changed nothing; the ledger held its points (a hold) or took them (a redemption: the
 * customer paid cash and still lost the points). CONTRACT.md: the same key returns the first response
 * again, and a rejected request changes nothing. Fixed in src/commands/run-command.ts: a refusal is kept
 * under its key (no events), so the late attempt finds K answered and replays the refusal.
 */
const TENANT = 'stale-attempt';
const STORE = 'store-1';

describe('a refused command stays refused when an older attempt of it is still in flight', () => {
  const database = useTestDatabase();
  let proxy: ChaosProxy;
  let a: TestLedger;
  let b: TestLedger;
  let key: string;

  beforeAll(async () => {
    const target = new URL(database.current.url);
    proxy = new ChaosProxy('a-db', () => [Number(target.port || 3306)]);
    await proxy.listen();
    b = await openTestLedger(database.current);
    const proxiedUrl = `mysql://${target.username || 'root'}@127.0.0.1:${proxy.port}${target.pathname}`;
    a = await openTestLedger({ ...database.current, url: proxiedUrl });
    await b.createTenant(TENANT);
    key = await b.key(TENANT, 'pos', [STORE]);
  });

  afterAll(async () => {
    proxy.thaw();
    await a.close();
    await b.close();
    await proxy.close();
  });

  const cases = [
    { name: 'hold', memberId: '0b6f4f2e-6a55-4c1e-8d7b-5b0f6f0b9a11', phone: '13912345678', route: 'holds' },
    {
      name: 'redemption',
      memberId: '5d1c7e0a-2b3f-4a6d-9e8c-7f1a2b3c4d5e',
      phone: '13912345679',
      route: 'redemptions',
    },
  ] as const;

  it.each(cases)(
    'a $name answered 422 is never recorded afterwards',
    async ({ name, memberId, phone, route }) => {
      const auth = { authorization: `Bearer ${key}` };
      const register = await post(
        b.app,
        key,
        '/v1/members',
        { memberId, phone, storeId: STORE, channel: 'store' },
        `reg-${name}`,
      );
      expect(register.statusCode, register.body).toBe(201);
      const earn = {
        orderId: `order-1-${name}`,
        storeId: STORE,
        lines: [{ sku: 's', category: 'otc', quantity: 1, amountFen: 10_000 }],
      };
      expect(
        (await post(b.app, key, `/v1/members/${memberId}/purchases`, earn, `buy-1-${name}`)).json(),
      ).toMatchObject({ pointsEarned: 100 });
      // A knows the key and the tenant already (its caches), as a process that has been serving does.
      expect(
        (await a.app.inject({ method: 'GET', url: `/v1/members/${memberId}`, headers: auth })).statusCode,
      ).toBe(200);

      const body = { orderId: `order-2-${name}`, storeId: STORE, points: 150 };
      const idempotencyKey = `${name}-K`;
      proxy.freeze();
      const firstAttempt = post(a.app, key, `/v1/members/${memberId}/${route}`, body, idempotencyKey);
      await new Promise((resolve) => setTimeout(resolve, 300));
      const retry = await post(b.app, key, `/v1/members/${memberId}/${route}`, body, idempotencyKey);
      expect(retry.statusCode, retry.body).toBe(422);
      expect(retry.json()).toMatchObject({ code: 'insufficient-points' });

      const earnMore = { ...earn, orderId: `order-3-${name}` };
      expect(
        (await post(b.app, key, `/v1/members/${memberId}/purchases`, earnMore, `buy-2-${name}`)).statusCode,
      ).toBe(201);
      proxy.thaw();
      const late = await firstAttempt;

      const [rows] = await database.current.pool.query<RowDataPacket[]>(
        'SELECT event_count, response_status FROM commands WHERE tenant_id = ? AND command_id = ?',
        [TENANT, idempotencyKey],
      );
      const again = await post(b.app, key, `/v1/members/${memberId}/${route}`, body, idempotencyKey);
      const view = (
        await b.app.inject({ method: 'GET', url: `/v1/members/${memberId}`, headers: auth })
      ).json() as {
        points: { balance: number; held: number };
      };
      // What the till was told (422, nothing changed) must stay true: 200 points earned, none held or redeemed.
      expect({
        kept: rows.map((row) => [row['event_count'], row['response_status']]),
        lateStatus: late.statusCode,
        againStatus: again.statusCode,
        againReplayed: again.headers['idempotent-replayed'],
        balance: view.points.balance,
        held: view.points.held,
      }).toEqual({
        kept: [[0, 422]],
        lateStatus: 422,
        againStatus: 422,
        againReplayed: 'true',
        balance: 200,
        held: 0,
      });
    },
  );
});
