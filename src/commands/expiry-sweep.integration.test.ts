import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../test/helpers/database.ts';
import { get, openTestLedger, post, type TestLedger } from '../../test/helpers/ledger.ts';
import { Projector } from '../projections/runtime.ts';
import { sweepExpiredLots } from './expiry-sweep.ts';

const database = useTestDatabase();
let ledger: TestLedger;
let pos: string;
let support: string;
const store = 's1';
const members = ['6f9a1f6e-0c1b-4d7e-9a4b-000000000001', '6f9a1f6e-0c1b-4d7e-9a4b-000000000002'];

beforeAll(async () => {
  ledger = await openTestLedger(database.current, { clockStart: '2026-06-01T04:00:00.000Z' });
  await ledger.createTenant('acme');
  pos = await ledger.key('acme', 'pos', [store]);
  support = await ledger.key('acme', 'support');
  for (const [i, memberId] of members.entries()) {
    expect(
      (
        await post(ledger.app, pos, '/v1/members', {
          memberId,
          phone: `1390000000${i}`,
          storeId: store,
          channel: 'store',
        })
      ).statusCode,
    ).toBe(201);
    const bought = await post(ledger.app, pos, `/v1/members/${memberId}/purchases`, {
      orderId: `o-${i}`,
      storeId: store,
      lines: [{ sku: 'a', category: 'otc', quantity: 1, amountFen: 50_000 }],
    });
    expect(bought.json().pointsEarned).toBe(500);
  }
});
afterAll(async () => ledger.close());

const balanceOf = async (memberId: string) =>
  (await get(ledger.app, support, `/v1/members/${memberId}`)).json().points;

describe('ledger expire', () => {
  it('expires the lots due by as-of, keeps held points, and changes nothing when run again', async () => {
    // Member 1 holds 200 points at checkout just before the lots expire (2026 lots expire at 2028 local).
    ledger.clock.set('2027-12-31T15:50:00.000Z');
    const hold = await post(ledger.app, pos, `/v1/members/${members[1]}/holds`, {
      orderId: 'late',
      storeId: store,
      points: 200,
      ttlSeconds: 3600,
    });
    expect(hold.statusCode).toBe(201);
    ledger.clock.set('2027-12-31T16:30:00.000Z');
    await new Projector(ledger.runtime.pool, ledger.runtime.store).runOnce();

    const first = await sweepExpiredLots(ledger.runtime, 'acme', ledger.clock.nowIso());
    expect(first).toMatchObject({ membersChecked: 2, membersExpired: 2, points: 500 + 300 });
    expect(await balanceOf(members[0]!)).toEqual({ balance: 0, held: 0, available: 0 });
    expect(await balanceOf(members[1]!)).toEqual({ balance: 200, held: 200, available: 0 });

    const again = await sweepExpiredLots(ledger.runtime, 'acme', ledger.clock.nowIso());
    expect(again.points).toBe(0);

    // Once the hold has lapsed, the next run expires what it protected.
    ledger.clock.set('2027-12-31T17:00:00.000Z');
    await new Projector(ledger.runtime.pool, ledger.runtime.store).runOnce();
    const after = await sweepExpiredLots(ledger.runtime, 'acme', ledger.clock.nowIso());
    expect(after.points).toBe(200);
    expect(await balanceOf(members[1]!)).toEqual({ balance: 0, held: 0, available: 0 });
  });
});
