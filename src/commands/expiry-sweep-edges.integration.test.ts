import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { purchase, registerMember, tenantFingerprint, uniqueId } from '../../test/helpers/api.ts';
import { runCli } from '../../test/helpers/cli.ts';
import { useTestDatabase } from '../../test/helpers/database.ts';
import { get, openTestLedger, post, type TestLedger } from '../../test/helpers/ledger.ts';
import { msToIso } from '../domain/time.ts';
import { Projector } from '../projections/runtime.ts';
import { sweepExpiredLots } from './expiry-sweep.ts';

/**
 * Edges of `ledger expire --as-of ISO [--tenant T]` (CONTRACT.md: "expires lots due by then; running it
 * twice changes nothing"; a lot earned in year Y expires at the first instant of Y+2 in the tenant's zone).
 */

const database = useTestDatabase();
let ledger: TestLedger;
const store = 's1';
const keys = new Map<string, { pos: string; support: string }>();

beforeAll(async () => {
  ledger = await openTestLedger(database.current, { clockStart: '2024-06-01T00:00:00.000Z' });
  for (const [tenantId, timeZone] of [
    ['east', 'Pacific/Kiritimati'],
    ['west', 'America/New_York'],
    ['other', 'Asia/Shanghai'],
    ['holds', 'Asia/Shanghai'],
  ] as const) {
    await ledger.createTenant(tenantId, { timeZone });
    keys.set(tenantId, {
      pos: await ledger.key(tenantId, 'pos', [store]),
      support: await ledger.key(tenantId, 'support'),
    });
  }
});
afterAll(async () => ledger.close());

function keysOf(tenantId: string): { pos: string; support: string } {
  const found = keys.get(tenantId);
  if (found === undefined) throw new Error(`no keys for ${tenantId}`);
  return found;
}

async function memberWithPurchase(tenantId: string, at: string, amountFen: number) {
  ledger.clock.set(at);
  const memberId = await registerMember(ledger, keysOf(tenantId).pos, store, randomUUID());
  const bought = await purchase(ledger, keysOf(tenantId).pos, memberId, store, amountFen);
  const lot = bought.json().lot as { expiresAt: string };
  return { memberId, expiresAt: lot.expiresAt };
}

async function pointsOf(tenantId: string, memberId: string) {
  const view = await get(ledger.app, keysOf(tenantId).support, `/v1/members/${memberId}`);
  expect(view.statusCode, view.body).toBe(200);
  return view.json().points as { balance: number; held: number; available: number };
}

/** What the events record as of the ledger's time (GET .../balance?asOf=), before any due lot is expired by the next command. */
async function recordedBalanceOf(tenantId: string, memberId: string): Promise<number> {
  const asOf = ledger.clock.nowIso();
  const response = await get(
    ledger.app,
    keysOf(tenantId).support,
    `/v1/members/${memberId}/balance?asOf=${encodeURIComponent(asOf)}`,
  );
  expect(response.statusCode, response.body).toBe(200);
  return response.json().balance as number;
}

const project = () => new Projector(ledger.runtime.pool, ledger.runtime.store).runOnce();

describe('expiry in the tenant time zone', () => {
  // 23:59 on 31 December 2024 local time in each zone: still year 2024, so due at local 2026-01-01 00:00.
  const cases = [
    { tenantId: 'east', lastMinuteOf2024: '2024-12-31T09:59:00.000Z', dueAt: '2025-12-31T10:00:00.000Z' },
    { tenantId: 'west', lastMinuteOf2024: '2025-01-01T04:59:00.000Z', dueAt: '2026-01-01T05:00:00.000Z' },
  ];

  it('dates the lot by the local year and expires it at the first local instant of year + 2, not before', async () => {
    const members: { tenantId: string; memberId: string; dueAt: string }[] = [];
    for (const { tenantId, lastMinuteOf2024, dueAt } of cases) {
      const { memberId, expiresAt } = await memberWithPurchase(tenantId, lastMinuteOf2024, 12_300);
      expect(expiresAt, tenantId).toBe(dueAt);
      members.push({ tenantId, memberId, dueAt });
    }
    ledger.clock.set('2026-02-01T00:00:00.000Z');
    await project();
    for (const { tenantId, memberId, dueAt } of members) {
      const early = await sweepExpiredLots(ledger.runtime, tenantId, msToIso(Date.parse(dueAt) - 1));
      expect(early.points, tenantId).toBe(0);
      expect(await recordedBalanceOf(tenantId, memberId), tenantId).toBe(123);
      // The lot is past due by the ledger's clock: the till is shown none of it, swept or not.
      expect(await pointsOf(tenantId, memberId)).toEqual({ balance: 0, held: 0, available: 0 });
      const due = await sweepExpiredLots(ledger.runtime, tenantId, dueAt);
      expect(due, tenantId).toMatchObject({ membersExpired: 1, lots: 1, points: 123 });
      expect(await recordedBalanceOf(tenantId, memberId), tenantId).toBe(0);
      expect(await pointsOf(tenantId, memberId)).toEqual({ balance: 0, held: 0, available: 0 });
    }
  });

  it('keeps a lot earned in the first minute of local year 2025 until local 2027', async () => {
    // 00:00:30 on 1 January 2025 in New York is still 2024 in UTC and in Shanghai.
    const { memberId, expiresAt } = await memberWithPurchase('west', '2025-01-01T05:00:30.000Z', 4_500);
    expect(expiresAt).toBe('2027-01-01T05:00:00.000Z');
    ledger.clock.set('2026-02-01T00:00:00.000Z');
    await project();
    expect((await sweepExpiredLots(ledger.runtime, 'west', '2026-01-31T00:00:00.000Z')).points).toBe(0);
    expect((await pointsOf('west', memberId)).balance).toBe(45);
  });
});

describe('expire runs and tenants', () => {
  it('expires only the named tenant, and a later run with an earlier as-of changes nothing', async () => {
    const mine = await memberWithPurchase('other', '2024-07-01T02:00:00.000Z', 7_700);
    const theirs = await memberWithPurchase('east', '2024-07-01T02:00:00.000Z', 8_800);
    ledger.clock.set('2026-03-01T00:00:00.000Z');
    await project();
    const eastBefore = await tenantFingerprint(database.current.pool, 'east');

    const first = await sweepExpiredLots(ledger.runtime, 'other', '2026-02-28T00:00:00.000Z');
    expect(first).toMatchObject({ tenantId: 'other', points: 77 });
    expect((await pointsOf('other', mine.memberId)).balance).toBe(0);
    expect(await tenantFingerprint(database.current.pool, 'east')).toBe(eastBefore);
    expect(await recordedBalanceOf('east', theirs.memberId)).toBe(88);

    await project();
    const otherAfter = await tenantFingerprint(database.current.pool, 'other');
    const earlier = await sweepExpiredLots(ledger.runtime, 'other', '2026-01-10T00:00:00.000Z');
    expect(earlier.points).toBe(0);
    expect(await tenantFingerprint(database.current.pool, 'other')).toBe(otherAfter);
  });

  it('`ledger expire` without --tenant sweeps every tenant, and a second run changes nothing', async () => {
    const a = await memberWithPurchase('other', '2024-08-01T02:00:00.000Z', 1_100);
    const b = await memberWithPurchase('west', '2024-08-01T02:00:00.000Z', 2_200);
    ledger.clock.set('2026-03-01T00:00:00.000Z');
    await project();
    const env = { LEDGER_DATABASE_URL: database.current.url, LEDGER_CLOCK_START: '2026-03-01T00:00:00.000Z' };
    const run = await runCli(['expire', '--as-of', '2026-02-01T00:00:00+08:00'], env);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^other: expired 11 points/m);
    expect(run.stdout).toMatch(/^west: expired 22 points/m);
    expect((await pointsOf('other', a.memberId)).balance).toBe(0);
    expect((await pointsOf('west', b.memberId)).balance).toBe(0);

    await project();
    const before = await Promise.all(
      ['east', 'west', 'other'].map((t) => tenantFingerprint(database.current.pool, t)),
    );
    const again = await runCli(['expire', '--as-of', '2026-02-01T00:00:00+08:00'], env);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).not.toMatch(/expired [1-9]/);
    expect(
      await Promise.all(['east', 'west', 'other'].map((t) => tenantFingerprint(database.current.pool, t))),
    ).toEqual(before);
  });
});

describe('expire while a hold counts on due points', () => {
  it('ends with the same balance whether the hold is captured before or after the sweep', async () => {
    const a = randomUUID();
    const b = randomUUID();
    ledger.clock.set('2024-07-01T02:00:00.000Z');
    for (const m of [a, b]) {
      await registerMember(ledger, keysOf('holds').pos, store, m);
      await purchase(ledger, keysOf('holds').pos, m, store, 6_000);
    } // lot due 2025-12-31T16:00Z, 60 points
    ledger.clock.set('2025-07-01T02:00:00.000Z');
    for (const m of [a, b]) await purchase(ledger, keysOf('holds').pos, m, store, 4_000); // lot due 2026-12-31T16:00Z, 40 points
    // The holds are placed half an hour before the first lot is due (2025-12-31T16:00Z) and outlive it.
    ledger.clock.set('2025-12-31T15:30:00.000Z');
    const holds = new Map<string, string>();
    for (const m of [a, b]) {
      const h = await post(ledger.app, keysOf('holds').pos, `/v1/members/${m}/holds`, {
        orderId: uniqueId('o'),
        storeId: store,
        points: 50,
        ttlSeconds: 3600,
      });
      expect(h.statusCode, h.body).toBe(201);
      holds.set(m, h.json().holdId as string);
    }
    const capture = async (m: string) => {
      const c = await post(
        ledger.app,
        keysOf('holds').pos,
        `/v1/members/${m}/holds/${holds.get(m)}/capture`,
        {},
      );
      expect(c.statusCode, c.body).toBe(200);
    };
    // Member b: after the lot is due, the till captures before the nightly sweep runs; the capture
    // expires the due points beyond the hold's first.
    ledger.clock.set('2025-12-31T16:01:00.000Z');
    await capture(b);
    await project();
    // Member a: the sweep runs first (the hold is live), then the till captures.
    ledger.clock.advanceSeconds(60);
    const sweep = await sweepExpiredLots(ledger.runtime, 'holds', '2026-01-01T00:00:00+08:00');
    await capture(a);
    // Contract: captures consume lots soonest-expiring first, so the hold's 50 come from the due lot:
    // 10 due points expire and the 40 points not due until 2027 stay.
    expect(await pointsOf('holds', b)).toEqual({ balance: 40, held: 0, available: 40 });
    expect(await pointsOf('holds', a)).toEqual({ balance: 40, held: 0, available: 40 });
    // Only a's 10: b's were expired by its capture.
    expect(sweep.points).toBe(10);
  });
});
