import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../test/helpers/database.ts';
import { get, openTestLedger, post, type TestLedger } from '../../test/helpers/ledger.ts';
import {
  expectProblem,
  offendingPaths,
  registerMember,
  uniqueId,
  uniquePhone,
} from '../../test/helpers/api.ts';
import { memberStreamId } from '../commands/streams.ts';

const database = useTestDatabase();
let ledger: TestLedger;
let pos: string;
let support: string;
let auditor: string;
const store = 'store-1';

interface Entry {
  entryId: string;
  at: string;
  kind: string;
  points: number;
  balanceAfter: number;
  orderId?: string;
  storeId?: string;
  reason?: string;
}

beforeAll(async () => {
  ledger = await openTestLedger(database.current, { clockStart: '2026-03-01T02:00:00.000Z' });
  await ledger.createTenant('acme');
  pos = await ledger.key('acme', 'pos', [store]);
  support = await ledger.key('acme', 'support');
  auditor = await ledger.key('acme', 'auditor');
});
afterAll(async () => ledger.close());

function expectOk(response: { statusCode: number; body: string }, status: number): void {
  expect(response.statusCode, response.body).toBe(status);
}

describe('GET /v1/members/{memberId}/ledger', () => {
  const memberId = randomUUID();
  /** The instant before each movement, in order. */
  const times: string[] = [];
  let all: Entry[] = [];

  beforeAll(async () => {
    await registerMember(ledger, pos, store, memberId);
    const step = async (status: number, send: () => ReturnType<typeof post>) => {
      ledger.clock.advanceSeconds(60);
      times.push(ledger.clock.nowIso());
      expectOk(await send(), status);
    };
    for (let i = 1; i <= 6; i++) {
      await step(201, () =>
        post(ledger.app, pos, `/v1/members/${memberId}/purchases`, {
          orderId: `ledger-order-${i}`,
          storeId: store,
          lines: [{ sku: 'a', category: 'otc', quantity: 1, amountFen: i * 1_000 }],
        }),
      );
    }
    // A hold moves no points: no entry.
    ledger.clock.advanceSeconds(60);
    expectOk(
      await post(ledger.app, pos, `/v1/members/${memberId}/holds`, {
        orderId: 'ledger-hold',
        storeId: store,
        points: 5,
      }),
      201,
    );
    await step(201, () =>
      post(ledger.app, pos, `/v1/members/${memberId}/redemptions`, {
        orderId: 'ledger-order-6',
        storeId: store,
        points: 20,
      }),
    );
    // Refund half of order 6 (6000 fen, 60 points, 20 redeemed): reverses 30, restores 10 -> two entries.
    await step(201, () =>
      post(ledger.app, pos, `/v1/members/${memberId}/refunds`, {
        refundId: 'ledger-refund',
        orderId: 'ledger-order-6',
        storeId: store,
        amountFen: 3_000,
      }),
    );
    await step(201, () =>
      post(ledger.app, support, `/v1/members/${memberId}/adjustments`, {
        adjustmentId: 'ledger-adj',
        points: 7,
        reason: 'goodwill',
      }),
    );
    const page = await get(ledger.app, auditor, `/v1/members/${memberId}/ledger?limit=500`);
    expectOk(page, 200);
    all = page.json().entries;
    expect(page.json().nextCursor).toBeNull();
  });

  it('lists every movement oldest first with its kind, points, running balance and references', () => {
    expect(all.map((e) => [e.kind, e.points, e.balanceAfter])).toEqual([
      ['earned', 10, 10],
      ['earned', 20, 30],
      ['earned', 30, 60],
      ['earned', 40, 100],
      ['earned', 50, 150],
      ['earned', 60, 210],
      ['redeemed', -20, 190],
      ['reversed', -30, 160],
      ['restored', 10, 170],
      ['adjusted', 7, 177],
    ]);
    expect(all[0]).toMatchObject({ orderId: 'ledger-order-1', storeId: store, at: times[0] });
    expect(all[7]).toMatchObject({ orderId: 'ledger-order-6', storeId: store });
    expect(all[9]).toMatchObject({ reason: 'goodwill' });
    expect(all[9]!.orderId).toBeUndefined();
    expect(new Set(all.map((e) => e.entryId)).size).toBe(all.length);
  });

  it('answers pos, support and auditor alike, with the default page of 50', async () => {
    for (const key of [pos, support, auditor]) {
      const response = await get(ledger.app, key, `/v1/members/${memberId}/ledger`);
      expect(response.statusCode).toBe(200);
      expect(response.json()).toEqual({ entries: all, nextCursor: null });
    }
  });

  it('pages with opaque cursors until nextCursor is null, losing and repeating nothing', async () => {
    for (const limit of [1, 2, 3, 4, 9]) {
      const seen: Entry[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const query: string = `limit=${limit}${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`;
        const response = await get(ledger.app, pos, `/v1/members/${memberId}/ledger?${query}`);
        expect(response.statusCode, response.body).toBe(200);
        const body = response.json() as { entries: Entry[]; nextCursor: string | null };
        // A refund's reversal and restore stay on one page, so a page of 1 may hold 2.
        expect(body.entries.length).toBeLessThanOrEqual(Math.max(limit, 2));
        expect(body.entries.length, `limit ${limit}, page ${pages}`).toBeGreaterThan(0);
        if (body.nextCursor !== null) {
          expect(body.nextCursor).toMatch(/^[A-Za-z0-9_-]+$/);
          expect(body.nextCursor).not.toMatch(/^\d+$/);
        }
        seen.push(...body.entries);
        cursor = body.nextCursor;
        pages += 1;
        expect(pages).toBeLessThan(20);
      } while (cursor !== null);
      expect(seen, `limit ${limit}`).toEqual(all);
    }
  });

  it('answers nextCursor null when a page ends exactly at the last entry', async () => {
    const response = await get(ledger.app, pos, `/v1/members/${memberId}/ledger?limit=${all.length}`);
    expect(response.json()).toEqual({ entries: all, nextCursor: null });
    const firstNine = await get(ledger.app, pos, `/v1/members/${memberId}/ledger?limit=9`);
    expect(firstNine.json().entries).toEqual(all.slice(0, 9));
    const last = await get(
      ledger.app,
      pos,
      `/v1/members/${memberId}/ledger?limit=9&cursor=${firstNine.json().nextCursor}`,
    );
    expect(last.json()).toEqual({ entries: all.slice(9), nextCursor: null });
  });

  it('keeps entries recorded in [from, to)', async () => {
    const from = times[1]!;
    const to = times[4]!;
    const response = await get(ledger.app, pos, `/v1/members/${memberId}/ledger?from=${from}&to=${to}`);
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ entries: all.slice(1, 4), nextCursor: null });
    // Offsets are accepted and mean the same instant.
    const shanghai = new Date(Date.parse(from) + 8 * 3_600_000).toISOString().replace('Z', '+08:00');
    const sameFrom = await get(
      ledger.app,
      pos,
      `/v1/members/${memberId}/ledger?from=${encodeURIComponent(shanghai)}&to=${to}`,
    );
    expect(sameFrom.json().entries).toEqual(all.slice(1, 4));
    // Paging inside a window.
    const first = await get(ledger.app, pos, `/v1/members/${memberId}/ledger?from=${from}&to=${to}&limit=2`);
    expect(first.json().entries).toEqual(all.slice(1, 3));
    const second = await get(
      ledger.app,
      pos,
      `/v1/members/${memberId}/ledger?from=${from}&to=${to}&limit=2&cursor=${first.json().nextCursor}`,
    );
    expect(second.json()).toEqual({ entries: all.slice(3, 4), nextCursor: null });
    // An empty window.
    const empty = await get(
      ledger.app,
      pos,
      `/v1/members/${memberId}/ledger?from=2020-01-01T00:00:00Z&to=2020-02-01T00:00:00Z`,
    );
    expect(empty.json()).toEqual({ entries: [], nextCursor: null });
  });

  it('refuses a cursor it did not issue, and limits outside 1-500', async () => {
    for (const cursor of [
      'abc',
      'djE6YWJj',
      Buffer.from('v2:3').toString('base64url'),
      '!!!',
      'x'.repeat(65),
    ]) {
      const response = await get(
        ledger.app,
        pos,
        `/v1/members/${memberId}/ledger?cursor=${encodeURIComponent(cursor)}`,
      );
      expect(offendingPaths(response), cursor).toEqual(['querystring.cursor']);
    }
    for (const limit of ['0', '501', '-1', '2.5', 'ten', '', '0x10', '1e2', '%205', '+5']) {
      const response = await get(ledger.app, pos, `/v1/members/${memberId}/ledger?limit=${limit}`);
      expect(offendingPaths(response), limit).toEqual(['querystring.limit']);
    }
    expect((await get(ledger.app, pos, `/v1/members/${memberId}/ledger?limit=500`)).statusCode).toBe(200);
    expect(
      offendingPaths(await get(ledger.app, pos, `/v1/members/${memberId}/ledger?from=yesterday`)),
    ).toEqual(['querystring.from']);
    expect(offendingPaths(await get(ledger.app, pos, `/v1/members/${memberId}/ledger?page=2`))).toEqual([
      'querystring.page',
    ]);
  });

  it('answers 404 for an unknown member', async () => {
    expectProblem(await get(ledger.app, pos, `/v1/members/${randomUUID()}/ledger`), 404, 'not-found');
  });
});

describe('GET /v1/members/{memberId}/balance?asOf=', () => {
  const memberId = randomUUID();
  let registeredAt = '';
  let afterPurchase = '';
  let duringHold = '';
  let afterRedemption = '';

  beforeAll(async () => {
    ledger.clock.advanceSeconds(3_600);
    registeredAt = ledger.clock.nowIso();
    await registerMember(ledger, pos, store, memberId);
    ledger.clock.advanceSeconds(60);
    afterPurchase = ledger.clock.nowIso();
    expectOk(
      await post(ledger.app, pos, `/v1/members/${memberId}/purchases`, {
        orderId: uniqueId('o'),
        storeId: store,
        lines: [{ sku: 'a', category: 'otc', quantity: 1, amountFen: 50_000 }],
      }),
      201,
    );
    ledger.clock.advanceSeconds(60);
    expectOk(
      await post(ledger.app, pos, `/v1/members/${memberId}/holds`, {
        orderId: uniqueId('o'),
        storeId: store,
        points: 100,
        ttlSeconds: 600,
      }),
      201,
    );
    ledger.clock.advanceSeconds(60);
    duringHold = ledger.clock.nowIso();
    ledger.clock.advanceSeconds(60);
    afterRedemption = ledger.clock.nowIso();
    expectOk(
      await post(ledger.app, pos, `/v1/members/${memberId}/redemptions`, {
        orderId: uniqueId('o'),
        storeId: store,
        points: 50,
      }),
      201,
    );
    ledger.clock.advanceSeconds(1_200);
  });

  it('answers the balance and held points as of each instant of the history, for support and auditor', async () => {
    const at = (asOf: string) => `/v1/members/${memberId}/balance?asOf=${encodeURIComponent(asOf)}`;
    for (const key of [support, auditor]) {
      expect((await get(ledger.app, key, at(registeredAt))).json()).toEqual({
        asOf: registeredAt,
        balance: 0,
        held: 0,
      });
      expect((await get(ledger.app, key, at(afterPurchase))).json()).toEqual({
        asOf: afterPurchase,
        balance: 500,
        held: 0,
      });
      expect((await get(ledger.app, key, at(duringHold))).json()).toEqual({
        asOf: duringHold,
        balance: 500,
        held: 100,
      });
      expect((await get(ledger.app, key, at(afterRedemption))).json()).toEqual({
        asOf: afterRedemption,
        balance: 450,
        held: 100,
      });
      // The hold (600 s) has expired by now without any event.
      const now = await get(ledger.app, key, `/v1/members/${memberId}/balance`);
      expect(now.json()).toEqual({ asOf: ledger.clock.nowIso(), balance: 450, held: 0 });
    }
    // Any offset; answered in UTC.
    const offset = new Date(Date.parse(afterPurchase) + 8 * 3_600_000).toISOString().replace('Z', '+08:00');
    expect((await get(ledger.app, auditor, at(offset))).json()).toEqual({
      asOf: afterPurchase,
      balance: 500,
      held: 0,
    });
  });

  it('is computed from the events, not from the read model or the command-side snapshot', async () => {
    const pool = database.current.pool;
    // A read-model row and a snapshot that both disagree with the events.
    await pool.query(
      `INSERT INTO member_accounts (tenant_id, member_id, partition_no, phone_masked, phone_sha256, tier, registered_store_id,
         channel, balance, held, earned_points, redeemed_points, expired_points, adjusted_points, reversed_points,
         restored_points, version, last_event_hash, registered_at, updated_at)
       VALUES ('acme', ?, 0, 'x', REPEAT('0', 64), 'gold', 's', 'store', 999999, 0, 0, 0, 0, 0, 0, 0, 1, REPEAT('0', 64),
         '2026-01-01 00:00:00', '2026-01-01 00:00:00')`,
      [memberId],
    );
    const [rows] = await pool.query<import('mysql2/promise').RowDataPacket[]>(
      'SELECT snapshot FROM streams WHERE tenant_id = ? AND stream_id = ?',
      ['acme', memberStreamId(memberId)],
    );
    const snapshot = JSON.parse(String(rows[0]?.['snapshot']));
    snapshot.balance = 123_456;
    await pool.query('UPDATE streams SET snapshot = ? WHERE tenant_id = ? AND stream_id = ?', [
      JSON.stringify(snapshot),
      'acme',
      memberStreamId(memberId),
    ]);
    const balance = await get(ledger.app, auditor, `/v1/members/${memberId}/balance`);
    expect(balance.json()).toMatchObject({ balance: 450, held: 0 });
  });

  it('refuses an asOf in the future or malformed, and answers 404 before the member existed or for an unknown one', async () => {
    const future = new Date(ledger.clock.nowMs() + 60_000).toISOString();
    expect(
      offendingPaths(await get(ledger.app, auditor, `/v1/members/${memberId}/balance?asOf=${future}`)),
    ).toEqual(['querystring.asOf']);
    expect(
      offendingPaths(await get(ledger.app, auditor, `/v1/members/${memberId}/balance?asOf=2026-13-01`)),
    ).toEqual(['querystring.asOf']);
    expectProblem(
      await get(ledger.app, auditor, `/v1/members/${memberId}/balance?asOf=2026-01-01T00:00:00Z`),
      404,
      'not-found',
    );
    expectProblem(await get(ledger.app, auditor, `/v1/members/${randomUUID()}/balance`), 404, 'not-found');
  });

  it('is not for pos keys', async () => {
    expectProblem(await get(ledger.app, pos, `/v1/members/${memberId}/balance`), 403, 'forbidden');
  });
});

describe('read-your-writes', () => {
  it('reflects each successful command in the very next GET of the member view', async () => {
    const memberId = randomUUID();
    const phone = uniquePhone();
    const HOLD_1 = randomUUID();
    const HOLD_2 = randomUUID();
    const view = async () => {
      const response = await get(ledger.app, pos, `/v1/members/${memberId}`);
      expect(response.statusCode).toBe(200);
      return response.json();
    };
    const headVersion = async () =>
      (await ledger.runtime.store.streamHead('acme', memberStreamId(memberId)))?.version;

    expectOk(
      await post(ledger.app, pos, '/v1/members', { memberId, phone, storeId: store, channel: 'store' }),
      201,
    );
    let last = await view();
    expect(last).toMatchObject({ version: 1, points: { balance: 0, held: 0, available: 0 } });

    const steps: { key: string; url: string; body: unknown; status: number }[] = [
      {
        key: pos,
        url: 'purchases',
        status: 201,
        body: {
          orderId: 'ryw-1',
          storeId: store,
          lines: [{ sku: 'a', category: 'otc', quantity: 1, amountFen: 250_000 }],
        },
      },
      {
        key: pos,
        url: 'holds',
        status: 201,
        body: { holdId: HOLD_1, orderId: 'ryw-2', storeId: store, points: 500 },
      },
      { key: pos, url: `holds/${HOLD_1}/capture`, status: 200, body: { points: 200 } },
      {
        key: pos,
        url: 'holds',
        status: 201,
        body: { holdId: HOLD_2, orderId: 'ryw-3', storeId: store, points: 100 },
      },
      { key: pos, url: `holds/${HOLD_2}/release`, status: 200, body: {} },
      { key: pos, url: 'redemptions', status: 201, body: { orderId: 'ryw-4', storeId: store, points: 300 } },
      {
        key: pos,
        url: 'refunds',
        status: 201,
        body: { refundId: 'ryw-r1', orderId: 'ryw-1', storeId: store, amountFen: 50_000 },
      },
      {
        key: support,
        url: 'adjustments',
        status: 201,
        body: { adjustmentId: 'ryw-a1', points: -100, reason: 'fix' },
      },
      {
        key: pos,
        url: 'purchases',
        status: 201,
        body: {
          orderId: 'ryw-5',
          storeId: store,
          lines: [{ sku: 'b', category: 'otc', quantity: 3, amountFen: 10_000 }],
        },
      },
    ];
    for (const step of steps) {
      const response = await post(ledger.app, step.key, `/v1/members/${memberId}/${step.url}`, step.body);
      expectOk(response, step.status);
      const next = await view();
      expect(next.version, step.url).toBeGreaterThan(last.version);
      expect(next.version).toBe(await headVersion());
      const answered = response.json();
      if ('balance' in answered) expect(next.points.balance, step.url).toBe(answered.balance);
      if ('available' in answered) expect(next.points.available, step.url).toBe(answered.available);
      expect(next.points.available).toBe(next.points.balance - next.points.held);
      last = next;
    }
    // 2500 earned (standard), silver from then on; 200 captured, 300 redeemed; refund of 50000 of 250000
    // reverses 500; -100 adjusted; 10000 fen at silver (1200 permille) earns 120.
    expect(last.tier).toBe('silver');
    expect(last.points).toEqual({ balance: 2500 - 200 - 300 - 500 - 100 + 120, held: 0, available: 1520 });
    const byPhone = await get(ledger.app, pos, `/v1/members?phone=${phone}`);
    expect(byPhone.json()).toEqual(last);
    const ledgerPage = await get(ledger.app, pos, `/v1/members/${memberId}/ledger`);
    expect(ledgerPage.json().entries.at(-1).balanceAfter).toBe(last.points.balance);
  });
});
