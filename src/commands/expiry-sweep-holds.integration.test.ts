import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerMember, uniqueId } from '../../test/helpers/api.ts';
import { useTestDatabase } from '../../test/helpers/database.ts';
import { get, openTestLedger, post, type TestLedger } from '../../test/helpers/ledger.ts';
import { Projector } from '../projections/runtime.ts';
import { sweepExpiredLots } from './expiry-sweep.ts';

const database = useTestDatabase();
let ledger: TestLedger;
let pos: string;
let support: string;
const store = 's1';

beforeAll(async () => {
  ledger = await openTestLedger(database.current, { clockStart: '2024-07-01T02:00:00.000Z' });
  await ledger.createTenant('acme');
  pos = await ledger.key('acme', 'pos', [store]);
  support = await ledger.key('acme', 'support');
});
afterAll(async () => ledger.close());

async function buy(memberId: string, amountFen: number): Promise<void> {
  const r = await post(ledger.app, pos, `/v1/members/${memberId}/purchases`, {
    orderId: uniqueId('o'),
    storeId: store,
    lines: [{ sku: 'a', category: 'otc', quantity: 1, amountFen }],
  });
  expect(r.statusCode, r.body).toBe(201);
}

describe('expire while a hold counts on due points', () => {
  it('ends with the same balance whether the hold is captured before or after the sweep', async () => {
    const a = randomUUID();
    const b = randomUUID();
    ledger.clock.set('2024-07-01T02:00:00.000Z');
    for (const m of [a, b]) {
      await registerMember(ledger, pos, store, m);
      await buy(m, 6_000);
    } // lot due 2025-12-31T16:00Z, 60 points
    ledger.clock.set('2025-07-01T02:00:00.000Z');
    for (const m of [a, b]) await buy(m, 4_000); // lot due 2026-12-31T16:00Z, 40 points
    ledger.clock.set('2026-01-05T02:00:00.000Z');
    const holds = new Map<string, string>();
    for (const m of [a, b]) {
      const h = await post(ledger.app, pos, `/v1/members/${m}/holds`, {
        orderId: uniqueId('o'),
        storeId: store,
        points: 50,
        ttlSeconds: 3600,
      });
      expect(h.statusCode, h.body).toBe(201);
      holds.set(m, h.json().holdId as string);
    }
    const capture = async (m: string) => {
      const c = await post(ledger.app, pos, `/v1/members/${m}/holds/${holds.get(m)}/capture`, {});
      expect(c.statusCode, c.body).toBe(200);
    };
    // Member b: the till captures first, then the nightly sweep runs.
    ledger.clock.advanceSeconds(60);
    await capture(b);
    await new Projector(ledger.runtime.pool, ledger.runtime.store).runOnce();
    // Member a: the sweep runs first (the hold is live), then the till captures.
    ledger.clock.advanceSeconds(60);
    const sweep = await sweepExpiredLots(ledger.runtime, 'acme', '2026-01-01T00:00:00+08:00');
    await capture(a);
    const balanceOf = async (m: string) => (await get(ledger.app, support, `/v1/members/${m}`)).json().points;
    // Contract: captures consume lots soonest-expiring first, so the hold's 50 come from the due lot:
    // 10 due points expire and the 40 points not due until 2027 stay.
    expect(await balanceOf(b)).toEqual({ balance: 40, held: 0, available: 40 });
    expect(await balanceOf(a)).toEqual({ balance: 40, held: 0, available: 40 });
    expect(sweep.points).toBe(20);
  });
});
