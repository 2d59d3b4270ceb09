import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../test/helpers/cli.ts';
import { expectProblem, offendingPaths, purchase, registerMember, uniqueId } from '../../test/helpers/api.ts';
import { useTestDatabase } from '../../test/helpers/database.ts';
import { get, openTestLedger, post, type TestLedger } from '../../test/helpers/ledger.ts';
import { addSecondsIso, msToIso } from '../domain/time.ts';

/**
 * Edges of GET /v1/members/{id}/balance?asOf= (CONTRACT.md: "computed from the events"): events recorded at
 * exactly asOf, holds that lapse, are captured or released around asOf, asOf shapes the reads.integration
 * tests do not send, and agreement with the running balances `ledger replay` prints for the same instants.
 */

const database = useTestDatabase();
let ledger: TestLedger;
let pos: string;
let auditor: string;
const store = 'store-1';
const START = '2026-04-01T02:00:00.000Z';

beforeAll(async () => {
  ledger = await openTestLedger(database.current, { clockStart: START });
  await ledger.createTenant('acme');
  pos = await ledger.key('acme', 'pos', [store]);
  auditor = await ledger.key('acme', 'auditor');
});
afterAll(async () => ledger.close());

const balanceAt = (memberId: string, asOf: string) =>
  get(ledger.app, auditor, `/v1/members/${memberId}/balance?asOf=${encodeURIComponent(asOf)}`);

async function ok(
  response: Promise<{ statusCode: number; body: string; json: () => unknown }>,
  status: number,
) {
  const answered = await response;
  expect(answered.statusCode, answered.body).toBe(status);
  return answered.json() as Record<string, unknown>;
}

const buy = (memberId: string, amountFen: number) => purchase(ledger, pos, memberId, store, amountFen);

const placeHold = (memberId: string, holdId: string, points: number, ttlSeconds: number) =>
  ok(
    post(ledger.app, pos, `/v1/members/${memberId}/holds`, {
      holdId,
      orderId: uniqueId('o'),
      storeId: store,
      points,
      ttlSeconds,
    }),
    201,
  );

describe('balance?asOf at the edges of time', () => {
  const memberId = randomUUID();
  let registeredAt = '';
  let purchasedAt = '';

  beforeAll(async () => {
    ledger.clock.set(START);
    registeredAt = ledger.clock.nowIso();
    await registerMember(ledger, pos, store, memberId);
    ledger.clock.advanceSeconds(60);
    purchasedAt = ledger.clock.nowIso();
    await buy(memberId, 30_000);
    ledger.clock.advanceSeconds(60);
  });

  it('counts an event recorded at exactly asOf, where the ledger page with to=asOf leaves it out', async () => {
    expect(await ok(balanceAt(memberId, purchasedAt), 200)).toEqual({
      asOf: purchasedAt,
      balance: 300,
      held: 0,
    });
    const justBefore = msToIso(Date.parse(purchasedAt) - 1);
    expect(await ok(balanceAt(memberId, justBefore), 200)).toMatchObject({ balance: 0 });
    // The ledger's window is half-open: `to` at the purchase instant leaves the purchase out, `to` a
    // millisecond later takes it, and its balanceAfter is the as-of balance at the purchase instant.
    const upTo = await ok(
      get(ledger.app, auditor, `/v1/members/${memberId}/ledger?to=${encodeURIComponent(purchasedAt)}`),
      200,
    );
    expect(upTo['entries']).toEqual([]);
    const through = await ok(
      get(
        ledger.app,
        auditor,
        `/v1/members/${memberId}/ledger?to=${encodeURIComponent(msToIso(Date.parse(purchasedAt) + 1))}`,
      ),
      200,
    );
    expect((through['entries'] as { balanceAfter: number }[]).map((e) => e.balanceAfter)).toEqual([300]);
  });

  it('answers 404 a millisecond before registration and 200 at the registration instant', async () => {
    expectProblem(await balanceAt(memberId, msToIso(Date.parse(registeredAt) - 1)), 404, 'not-found');
    expect(await ok(balanceAt(memberId, registeredAt), 200)).toEqual({
      asOf: registeredAt,
      balance: 0,
      held: 0,
    });
  });

  it('takes asOf = now, refuses now + 1 ms, and refuses instants without an offset', async () => {
    const now = ledger.clock.nowIso();
    expect(await ok(balanceAt(memberId, now), 200)).toEqual({ asOf: now, balance: 300, held: 0 });
    expect(offendingPaths(await balanceAt(memberId, msToIso(Date.parse(now) + 1)))).toEqual([
      'querystring.asOf',
    ]);
    for (const asOf of [
      now.slice(0, 19),
      now.slice(0, 10),
      `${now.slice(0, 19)}+0800`,
      `${now.slice(0, 10)} ${now.slice(11)}`,
      String(Date.parse(now)),
    ]) {
      expect(offendingPaths(await balanceAt(memberId, asOf)), asOf).toEqual(['querystring.asOf']);
    }
  });
});

describe('held as of an instant', () => {
  const memberId = randomUUID();
  const lapsing = randomUUID();
  const captured = randomUUID();
  const released = randomUUID();
  let lapsingPlacedAt = '';
  let lapsingExpiresAt = '';
  let capturedPlacedAt = '';
  let releasedPlacedAt = '';
  let capturedAt = '';
  let releasedAt = '';

  beforeAll(async () => {
    ledger.clock.set('2026-05-01T02:00:00.000Z');
    await registerMember(ledger, pos, store, memberId);
    await buy(memberId, 100_000);
    ledger.clock.advanceSeconds(60);
    lapsingPlacedAt = ledger.clock.nowIso();
    const hold = await placeHold(memberId, lapsing, 100, 120);
    lapsingExpiresAt = String(hold['expiresAt']);
    expect(lapsingExpiresAt).toBe(addSecondsIso(lapsingPlacedAt, 120));
    // Past the lapse, with no event in between: the next command records the lapsed hold's release.
    ledger.clock.set(addSecondsIso(lapsingExpiresAt, 300));
    capturedPlacedAt = ledger.clock.nowIso();
    await placeHold(memberId, captured, 200, 600);
    ledger.clock.advanceSeconds(10);
    releasedPlacedAt = ledger.clock.nowIso();
    await placeHold(memberId, released, 300, 600);
    ledger.clock.advanceSeconds(60);
    capturedAt = ledger.clock.nowIso();
    await ok(
      post(ledger.app, pos, `/v1/members/${memberId}/holds/${captured}/capture`, { points: 150 }),
      200,
    );
    ledger.clock.advanceSeconds(10);
    releasedAt = ledger.clock.nowIso();
    await ok(post(ledger.app, pos, `/v1/members/${memberId}/holds/${released}/release`, {}), 200);
    ledger.clock.advanceSeconds(60);
  });

  it('counts a hold until the millisecond before its expiresAt and not at it, before any release is recorded', async () => {
    expect(await ok(balanceAt(memberId, lapsingPlacedAt), 200)).toMatchObject({ balance: 1_000, held: 100 });
    expect(await ok(balanceAt(memberId, msToIso(Date.parse(lapsingExpiresAt) - 1)), 200)).toMatchObject({
      held: 100,
    });
    expect(await ok(balanceAt(memberId, lapsingExpiresAt), 200)).toMatchObject({ balance: 1_000, held: 0 });
    // After the lapse but before the next command recorded the release.
    expect(await ok(balanceAt(memberId, addSecondsIso(lapsingExpiresAt, 200)), 200)).toMatchObject({
      held: 0,
    });
  });

  it('still counts, at an instant before it, a hold captured or released later', async () => {
    expect(await ok(balanceAt(memberId, capturedPlacedAt), 200)).toEqual({
      asOf: capturedPlacedAt,
      balance: 1_000,
      held: 200,
    });
    expect(await ok(balanceAt(memberId, releasedPlacedAt), 200)).toMatchObject({ balance: 1_000, held: 500 });
    expect(await ok(balanceAt(memberId, msToIso(Date.parse(capturedAt) - 1)), 200)).toMatchObject({
      balance: 1_000,
      held: 500,
    });
    // The capture of 150 ends its hold of 200; the other hold still counts until its release.
    expect(await ok(balanceAt(memberId, capturedAt), 200)).toMatchObject({ balance: 850, held: 300 });
    expect(await ok(balanceAt(memberId, releasedAt), 200)).toMatchObject({ balance: 850, held: 0 });
  });
});

describe('balance?asOf agrees with `ledger replay` at every recorded instant', () => {
  const memberId = randomUUID();

  beforeAll(async () => {
    ledger.clock.set('2026-06-01T02:00:00.000Z');
    await registerMember(ledger, pos, store, memberId);
    ledger.clock.advanceSeconds(30);
    await buy(memberId, 80_000);
    ledger.clock.advanceSeconds(30);
    const hold = randomUUID();
    await placeHold(memberId, hold, 200, 60);
    // The hold lapses; the redemption then records its release and itself at one instant.
    ledger.clock.advanceSeconds(120);
    await ok(
      post(ledger.app, pos, `/v1/members/${memberId}/redemptions`, {
        orderId: uniqueId('o'),
        storeId: store,
        points: 50,
      }),
      201,
    );
    ledger.clock.advanceSeconds(30);
    await placeHold(memberId, randomUUID(), 100, 600);
    ledger.clock.advanceSeconds(30);
    await buy(memberId, 10_000);
    ledger.clock.advanceSeconds(30);
  });

  it('answers, for each instant replay prints, the balance and held of the last line at that instant', async () => {
    const run = await runCli(['replay', '--tenant', 'acme', '--member', memberId], {
      LEDGER_DATABASE_URL: database.current.url,
    });
    expect(run.code, run.stderr).toBe(0);
    const lines = run.stdout
      .split('\n')
      .map((line) => /^v(\d+) (\S+) \S+: .* \| balance (-?\d+) held (\d+) available (-?\d+) \|/.exec(line))
      .filter((match) => match !== null);
    expect(lines.length).toBeGreaterThanOrEqual(6);
    const lastAt = new Map<string, { balance: number; held: number }>();
    for (const [, , at, balance, held] of lines) {
      lastAt.set(at!, { balance: Number(balance), held: Number(held) });
    }
    for (const [at, expected] of lastAt) {
      expect(await ok(balanceAt(memberId, at), 200), at).toEqual({ asOf: at, ...expected });
    }
  });
});
