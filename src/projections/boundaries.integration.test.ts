import type { RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../test/helpers/database.ts';
import { runAudit } from '../audit/audit.ts';
import { openTestLedger, post, type TestLedger } from '../../test/helpers/ledger.ts';
import { memberStreamId } from '../commands/streams.ts';
import { LeaseLostError, type BatchInfo } from './batch.ts';
import { tryAcquireLease } from './leases.ts';
import { readModelContent, replayModel } from './replay-model.ts';
import { Projector } from './runtime.ts';
import { memberTags, setTagRules } from './tags.ts';

const database = useTestDatabase();
let ledger: TestLedger;
const quiet = { onError: (error: unknown) => console.error(error) };

beforeAll(async () => {
  ledger = await openTestLedger(database.current, { clockStart: '2026-03-01T02:00:00.000Z' });
});
afterAll(async () => ledger.close());

async function rows(sql: string, params: unknown[]): Promise<RowDataPacket[]> {
  return (await database.current.pool.query<RowDataPacket[]>(sql, params))[0];
}

/** A tenant with a pos key for store s1 and one registered member. */
async function tenantWithMember(tenantId: string, memberId: string, timeZone?: string): Promise<string> {
  await ledger.createTenant(tenantId, timeZone === undefined ? {} : { timeZone });
  const pos = await ledger.key(tenantId, 'pos', ['s1']);
  const registered = await post(ledger.app, pos, '/v1/members', {
    memberId,
    phone: '13900139000',
    storeId: 's1',
    channel: 'store',
  });
  expect(registered.statusCode).toBe(201);
  return pos;
}

async function purchaseAt(
  pos: string,
  memberId: string,
  at: string,
  orderId: string,
  category: string,
  amountFen: number,
): Promise<void> {
  ledger.clock.set(at);
  const response = await post(ledger.app, pos, `/v1/members/${memberId}/purchases`, {
    orderId,
    storeId: 's1',
    lines: [{ sku: `sku-${category}`, category, quantity: 1, amountFen }],
  });
  expect(response.statusCode, response.body).toBe(201);
}

describe('projections at their boundaries', () => {
  it('store daily totals follow the tenant-local day: 23:59:59.999 and 00:00 next day fall on different days', async () => {
    const shanghai = '2b1c9f0e-7a6d-4c5b-8e4f-3a2b1c0d9e8f';
    const posCn = await tenantWithMember('days-cn', shanghai, 'Asia/Shanghai');
    // 23:59:59.999 on 1 March in Shanghai (UTC+8), then midnight of 2 March.
    await purchaseAt(posCn, shanghai, '2026-03-01T15:59:59.999Z', 'cn-1', 'otc', 10_000);
    await purchaseAt(posCn, shanghai, '2026-03-01T16:00:00.000Z', 'cn-2', 'otc', 20_000);

    const newYork = '4d3c2b1a-0f9e-4d8c-9b7a-6f5e4d3c2b1a';
    const posUs = await tenantWithMember('days-us', newYork, 'America/New_York');
    // 23:59:59.999 EST on 7 March 2026, then midnight of 8 March: both in the UTC day of the DST change.
    await purchaseAt(posUs, newYork, '2026-03-08T04:59:59.999Z', 'us-1', 'otc', 30_000);
    await purchaseAt(posUs, newYork, '2026-03-08T05:00:00.000Z', 'us-2', 'otc', 40_000);
    // 23:59:59.999 EDT on 8 March (after the change), then midnight of 9 March.
    await purchaseAt(posUs, newYork, '2026-03-09T03:59:59.999Z', 'us-3', 'otc', 50_000);
    await purchaseAt(posUs, newYork, '2026-03-09T04:00:00.000Z', 'us-4', 'otc', 60_000);

    await new Projector(ledger.runtime.pool, ledger.runtime.store, { owner: 'days', ...quiet }).runOnce();
    const days = async (tenantId: string) =>
      (
        await rows(
          `SELECT DATE_FORMAT(day, '%Y-%m-%d') AS day, SUM(earned_points) AS earned, SUM(movements) AS movements
           FROM store_daily_totals WHERE tenant_id = ? AND store_id = 's1' GROUP BY day ORDER BY day`,
          [tenantId],
        )
      ).map((row) => [String(row['day']), Number(row['earned']), Number(row['movements'])]);
    expect(await days('days-cn')).toEqual([
      ['2026-03-01', 100, 1],
      ['2026-03-02', 200, 1],
    ]);
    expect(await days('days-us')).toEqual([
      ['2026-03-07', 300, 1],
      ['2026-03-08', 400 + 500, 2],
      ['2026-03-09', 600, 1],
    ]);
    expect(await readModelContent(ledger.runtime.pool, 'days-us')).toEqual(
      await replayModel(ledger.runtime.store, 'days-us', { timeZone: 'America/New_York' }),
    );
    // The audit draws the same day lines: both tenants clean, every day compared.
    for (const [tenantId, storeDays] of [
      ['days-cn', 2],
      ['days-us', 3],
    ] as const) {
      const report = await runAudit(ledger.runtime.pool, ledger.runtime.store, { tenantId });
      expect(report.tenants[0]!.discrepancies).toEqual([]);
      expect(report.tenants[0]!.storeDays).toBe(storeDays);
    }
  });

  it('chronic tag: two purchases within 90 days tag until 90 days after the first; exactly 90 days apart does not; a refund does not untag', async () => {
    const tenantId = 'tags-edge';
    const rules = [
      { category: 'diabetes', minPurchases: 2, windowDays: 90, tagPattern: 'chronic:{category}' },
    ];
    await setTagRules(ledger.runtime.pool, tenantId, rules);
    const close = '6f5e4d3c-2b1a-4f0e-8d9c-8b7a6f5e4d3c';
    const apart = '8b7a6f5e-4d3c-4b2a-9f0e-0d9c8b7a6f5e';
    const pos = await tenantWithMember(tenantId, close);
    ledger.clock.set('2026-03-01T02:00:00.000Z');
    expect(
      (
        await post(ledger.app, pos, '/v1/members', {
          memberId: apart,
          phone: '13700137000',
          storeId: 's1',
          channel: 'store',
        })
      ).statusCode,
    ).toBe(201);

    const first = '2026-03-02T02:00:00.000Z';
    const ninetyDaysLater = '2026-05-31T02:00:00.000Z';
    // One member buys again 1 ms inside the window, the other exactly at its end.
    await purchaseAt(pos, close, first, 'c-1', 'diabetes', 10_000);
    await purchaseAt(pos, close, '2026-05-31T01:59:59.999Z', 'c-2', 'diabetes', 10_000);
    await purchaseAt(pos, apart, first, 'a-1', 'diabetes', 10_000);
    await purchaseAt(pos, apart, ninetyDaysLater, 'a-2', 'diabetes', 10_000);

    const projector = new Projector(ledger.runtime.pool, ledger.runtime.store, {
      owner: 'tags-edge',
      ...quiet,
    });
    await projector.runOnce();
    const pool = ledger.runtime.pool;
    expect(await memberTags(pool, tenantId, close, '2026-05-31T01:59:59.999Z')).toEqual(['chronic:diabetes']);
    expect(await memberTags(pool, tenantId, close, ninetyDaysLater)).toEqual([]);
    expect(await memberTags(pool, tenantId, apart, ninetyDaysLater)).toEqual([]);
    expect(await memberTags(pool, tenantId, apart, '2026-06-01T00:00:00.000Z')).toEqual([]);

    // A third purchase 10 days later tags again (the two latest are within 90 days) until 90 days after
    // the second; refunding that order in full leaves the tag (refunds do not uncount purchases).
    await purchaseAt(pos, apart, '2026-06-10T02:00:00.000Z', 'a-3', 'diabetes', 10_000);
    ledger.clock.set('2026-06-11T02:00:00.000Z');
    const refund = await post(ledger.app, pos, `/v1/members/${apart}/refunds`, {
      refundId: 'r-a-3',
      orderId: 'a-3',
      storeId: 's1',
      amountFen: 10_000,
    });
    expect(refund.statusCode, refund.body).toBe(201);
    await projector.runOnce();
    expect(await memberTags(pool, tenantId, apart, '2026-06-12T00:00:00.000Z')).toEqual(['chronic:diabetes']);
    expect(await memberTags(pool, tenantId, apart, '2026-08-29T01:59:59.999Z')).toEqual(['chronic:diabetes']);
    expect(await memberTags(pool, tenantId, apart, '2026-08-29T02:00:00.000Z')).toEqual([]);
    expect(await readModelContent(pool, tenantId)).toEqual(
      await replayModel(ledger.runtime.store, tenantId, { rules }),
    );
    // The audit derives the same categories and tags from the events.
    const report = await runAudit(pool, ledger.runtime.store, { tenantId });
    expect(report.tenants[0]!.discrepancies).toEqual([]);
  });

  it('a projector whose lease is taken over mid-batch cannot commit: its rows roll back, the new owner applies them once', async () => {
    const tenantId = 'fenced';
    const memberId = 'a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d';
    const pos = await tenantWithMember(tenantId, memberId);
    await purchaseAt(pos, memberId, '2026-03-03T02:00:00.000Z', 'f-1', 'otc', 12_300);
    const pool = ledger.runtime.pool;
    const [stream] = await rows(
      'SELECT DISTINCT partition_no FROM events WHERE tenant_id = ? AND stream_id = ?',
      [tenantId, memberStreamId(memberId)],
    );
    const partition = Number(stream!['partition_no']);

    let takenOver = false;
    const deposed = new Projector(pool, ledger.runtime.store, {
      owner: 'deposed',
      ...quiet,
      hooks: {
        // The batch has written its rows and is about to advance the fenced checkpoint: the lease expires
        // (a long pause) and another projector takes it.
        beforeStatement: async (step: string, info: BatchInfo) => {
          if (
            takenOver ||
            step !== 'checkpoint' ||
            info.tenantId !== tenantId ||
            info.partition !== partition
          )
            return;
          takenOver = true;
          await pool.query(
            `UPDATE projection_leases SET expires_at = '1970-01-01 00:00:01.000' WHERE tenant_id = ? AND partition_no = ?`,
            [tenantId, partition],
          );
          expect(await tryAcquireLease(pool, tenantId, partition, 'usurper', 15)).not.toBeNull();
        },
      },
    });
    await expect(deposed.runOnce()).rejects.toBeInstanceOf(LeaseLostError);
    expect(takenOver).toBe(true);

    // Nothing of the deposed batch is visible: no account, no ledger entry, checkpoint unmoved.
    expect(await rows('SELECT * FROM member_accounts WHERE tenant_id = ?', [tenantId])).toEqual([]);
    expect(await rows('SELECT * FROM ledger_entries WHERE tenant_id = ?', [tenantId])).toEqual([]);
    const [checkpoint] = await rows(
      'SELECT position FROM projection_checkpoints WHERE tenant_id = ? AND partition_no = ?',
      [tenantId, partition],
    );
    expect(Number(checkpoint!['position'])).toBe(0);
    // The deposed owner cannot take the lease back while the usurper holds it.
    expect(await tryAcquireLease(pool, tenantId, partition, 'deposed', 15)).toBeNull();

    await new Projector(pool, ledger.runtime.store, { owner: 'usurper', ...quiet }).runOnce();
    const entries = await rows(
      'SELECT kind, points, balance_after FROM ledger_entries WHERE tenant_id = ? AND member_id = ?',
      [tenantId, memberId],
    );
    expect(entries.map((e) => [e['kind'], Number(e['points']), Number(e['balance_after'])])).toEqual([
      ['earned', 123, 123],
    ]);
    expect(await readModelContent(pool, tenantId)).toEqual(await replayModel(ledger.runtime.store, tenantId));
  });
});
