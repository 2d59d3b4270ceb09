import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../test/helpers/database.ts';
import { get, openTestLedger, post, type TestLedger } from '../../test/helpers/ledger.ts';
import {
  expectProblem,
  offendingPaths,
  purchase,
  registerMember,
  tenantFingerprint,
  uniqueId,
} from '../../test/helpers/api.ts';
import { HOLD_TTL_SECONDS_DEFAULT, HOLD_TTL_SECONDS_MAX } from '../domain/limits.ts';

const database = useTestDatabase();
let ledger: TestLedger;
let pos: string;
let support: string;
let admin: string;
const store = 'store-1';

beforeAll(async () => {
  ledger = await openTestLedger(database.current);
  await ledger.createTenant('acme');
  pos = await ledger.key('acme', 'pos', [store]);
  support = await ledger.key('acme', 'support');
  admin = await ledger.key('acme', 'admin');
});
afterAll(async () => ledger.close());

/** A registered member holding `points` (earned by one purchase of points x 100 fen). */
async function memberWith(points: number): Promise<string> {
  const memberId = await registerMember(ledger, pos, store);
  if (points > 0) await purchase(ledger, pos, memberId, store, points * 100);
  return memberId;
}

async function pointsOf(memberId: string): Promise<{ balance: number; held: number; available: number }> {
  const view = await get(ledger.app, pos, `/v1/members/${memberId}`);
  expect(view.statusCode).toBe(200);
  return view.json().points;
}

function url(memberId: string, rest: string): string {
  return `/v1/members/${memberId}/${rest}`;
}

describe('POST /v1/members/{memberId}/purchases', () => {
  it('answers 201 with the points earned, balances and the lot (insurance-paid parts earn nothing)', async () => {
    const memberId = await memberWith(0);
    const response = await post(ledger.app, pos, url(memberId, 'purchases'), {
      orderId: 'p-1',
      storeId: store,
      occurredAt: '2026-03-01T09:55:00+08:00',
      lines: [
        { sku: 'vitamin-c', category: 'otc', quantity: 2, amountFen: 12_850 },
        { sku: 'insulin', category: 'rx', quantity: 1, amountFen: 10_000, insuranceFen: 6_000 },
      ],
    });
    expect(response.statusCode).toBe(201);
    const body = response.json();
    // eligible 12850 + 4000 = 16850 fen -> floor(16850 x 1 x 1000 / 100000) = 168.
    expect(body).toMatchObject({ pointsEarned: 168, balance: 168, available: 168 });
    expect(body.lot).toMatchObject({ points: 168, expiresAt: '2027-12-31T16:00:00.000Z' });
    expect(typeof body.lot.lotId).toBe('string');
  });

  it('answers lot null for a purchase that earns nothing', async () => {
    const memberId = await memberWith(0);
    const response = await post(ledger.app, pos, url(memberId, 'purchases'), {
      orderId: uniqueId('o'),
      storeId: store,
      lines: [{ sku: 'a', category: 'rx', quantity: 1, amountFen: 5_000, insuranceFen: 5_000 }],
    });
    expect(response.statusCode).toBe(201);
    expect(response.json()).toEqual({ pointsEarned: 0, balance: 0, available: 0, lot: null });
  });

  it('answers 409 order-already-recorded for an order recorded before under another Idempotency-Key', async () => {
    const memberId = await memberWith(0);
    await purchase(ledger, pos, memberId, store, 10_000, 'dup-order');
    const before = await tenantFingerprint(database.current.pool, 'acme');
    const again = await post(ledger.app, pos, url(memberId, 'purchases'), {
      orderId: 'dup-order',
      storeId: store,
      lines: [{ sku: 'b', category: 'otc', quantity: 1, amountFen: 99 }],
    });
    expectProblem(again, 409, 'order-already-recorded');
    expect(await tenantFingerprint(database.current.pool, 'acme')).toBe(before);
    // Order ids are unique in the tenant, not per member.
    const other = await memberWith(0);
    const elsewhere = await post(ledger.app, pos, url(other, 'purchases'), {
      orderId: 'dup-order',
      storeId: store,
      lines: [{ sku: 'b', category: 'otc', quantity: 1, amountFen: 99 }],
    });
    expectProblem(elsewhere, 409, 'order-already-recorded');
  });

  it('answers 400 validation-failed naming each offending line field', async () => {
    const memberId = await memberWith(0);
    const response = await post(ledger.app, pos, url(memberId, 'purchases'), {
      orderId: 'has space',
      storeId: store,
      lines: [
        { sku: 'a', category: 'otc', quantity: 0, amountFen: 100 },
        { sku: 'b', category: 'otc', quantity: 1, amountFen: 10.5 },
        { sku: 'c', category: 'otc', quantity: 1, amountFen: 100, insuranceFen: 101 },
        { sku: 'd', category: 'otc', quantity: 1, amountFen: 1_000_000_001 },
      ],
    });
    expect(offendingPaths(response)).toEqual([
      'body.lines.0.quantity',
      'body.lines.1.amountFen',
      'body.lines.2.insuranceFen',
      'body.lines.3.amountFen',
      'body.orderId',
    ]);
    expect(
      offendingPaths(
        await post(ledger.app, pos, url(memberId, 'purchases'), { orderId: 'x', storeId: store, lines: [] }),
      ),
    ).toEqual(['body.lines']);
  });

  it('names only the field that is wrong: a negative amountFen is not also an insuranceFen error', async () => {
    const memberId = await memberWith(0);
    const response = await post(ledger.app, pos, url(memberId, 'purchases'), {
      orderId: uniqueId('o'),
      storeId: store,
      lines: [{ sku: 'a', category: 'otc', quantity: 1, amountFen: -1 }],
    });
    expect(offendingPaths(response)).toEqual(['body.lines.0.amountFen']);
  });

  it('refuses a misspelt line field instead of earning points on the insured part', async () => {
    const memberId = await memberWith(0);
    const response = await post(ledger.app, pos, url(memberId, 'purchases'), {
      orderId: uniqueId('o'),
      storeId: store,
      lines: [{ sku: 'a', category: 'rx', quantity: 1, amountFen: 10_000, insurance_fen: 10_000 }],
    });
    expect(offendingPaths(response)).toEqual(['body.lines.0.insurance_fen']);
    expect((await pointsOf(memberId)).balance).toBe(0);
  });

  it('refuses an occurredAt more than 5 minutes ahead of the ledger clock, and a malformed one', async () => {
    const memberId = await memberWith(0);
    const line = [{ sku: 'a', category: 'otc', quantity: 1, amountFen: 100 }];
    const ahead = new Date(ledger.clock.nowMs() + 301_000).toISOString();
    const future = await post(ledger.app, pos, url(memberId, 'purchases'), {
      orderId: uniqueId('o'),
      storeId: store,
      occurredAt: ahead,
      lines: line,
    });
    expectProblem(future, 400, 'validation-failed');
    expect(JSON.stringify(future.json().errors)).toContain('occurredAt');
    const malformed = await post(ledger.app, pos, url(memberId, 'purchases'), {
      orderId: uniqueId('o'),
      storeId: store,
      occurredAt: 'yesterday',
      lines: line,
    });
    expect(offendingPaths(malformed)).toEqual(['body.occurredAt']);
  });

  it('answers 404 not-found for an unknown member', async () => {
    const response = await post(ledger.app, pos, url(randomUUID(), 'purchases'), {
      orderId: uniqueId('o'),
      storeId: store,
      lines: [{ sku: 'a', category: 'otc', quantity: 1, amountFen: 100 }],
    });
    expectProblem(response, 404, 'not-found');
  });
});

describe('POST /v1/members/{memberId}/holds', () => {
  it('holds points for 900 seconds by default and reduces available at once', async () => {
    const memberId = await memberWith(1_000);
    const holdId = randomUUID();
    const response = await post(ledger.app, pos, url(memberId, 'holds'), {
      holdId,
      orderId: uniqueId('o'),
      storeId: store,
      points: 400,
    });
    expect(response.statusCode).toBe(201);
    const expiresAt = new Date(ledger.clock.nowMs() + HOLD_TTL_SECONDS_DEFAULT * 1000).toISOString();
    expect(HOLD_TTL_SECONDS_DEFAULT).toBe(900);
    expect(response.json()).toEqual({ holdId, points: 400, expiresAt, available: 600 });
    expect(await pointsOf(memberId)).toEqual({ balance: 1_000, held: 400, available: 600 });
  });

  it('takes a ttlSeconds up to 3600 and refuses more, zero or a fraction', async () => {
    const memberId = await memberWith(1_000);
    expect(HOLD_TTL_SECONDS_MAX).toBe(3600);
    const longest = await post(ledger.app, pos, url(memberId, 'holds'), {
      orderId: uniqueId('o'),
      storeId: store,
      points: 1,
      ttlSeconds: 3600,
    });
    expect(longest.statusCode).toBe(201);
    expect(longest.json().expiresAt).toBe(new Date(ledger.clock.nowMs() + 3_600_000).toISOString());
    for (const ttlSeconds of [3601, 0, -5, 1.5, '60']) {
      const refused = await post(ledger.app, pos, url(memberId, 'holds'), {
        orderId: uniqueId('o'),
        storeId: store,
        points: 1,
        ttlSeconds,
      });
      expect(offendingPaths(refused), String(ttlSeconds)).toEqual(['body.ttlSeconds']);
    }
  });

  it('answers 422 insufficient-points for more than available, counting other holds', async () => {
    const memberId = await memberWith(500);
    expectProblem(
      await post(ledger.app, pos, url(memberId, 'holds'), {
        orderId: uniqueId('o'),
        storeId: store,
        points: 501,
      }),
      422,
      'insufficient-points',
    );
    expect(
      (
        await post(ledger.app, pos, url(memberId, 'holds'), {
          orderId: uniqueId('o'),
          storeId: store,
          points: 300,
        })
      ).statusCode,
    ).toBe(201);
    const before = await tenantFingerprint(database.current.pool, 'acme');
    expectProblem(
      await post(ledger.app, pos, url(memberId, 'holds'), {
        orderId: uniqueId('o'),
        storeId: store,
        points: 201,
      }),
      422,
      'insufficient-points',
    );
    expect(await tenantFingerprint(database.current.pool, 'acme')).toBe(before);
    expect(
      (
        await post(ledger.app, pos, url(memberId, 'holds'), {
          orderId: uniqueId('o'),
          storeId: store,
          points: 200,
        })
      ).statusCode,
    ).toBe(201);
  });

  it('answers 409 hold-already-exists for a holdId placed before', async () => {
    const memberId = await memberWith(100);
    const holdId = randomUUID();
    expect(
      (
        await post(ledger.app, pos, url(memberId, 'holds'), {
          holdId,
          orderId: uniqueId('o'),
          storeId: store,
          points: 10,
        })
      ).statusCode,
    ).toBe(201);
    const again = await post(ledger.app, pos, url(memberId, 'holds'), {
      holdId,
      orderId: uniqueId('o'),
      storeId: store,
      points: 10,
    });
    expect(again.statusCode).toBe(409);
    expect(again.json().code).toBe('hold-already-exists');
  });

  it('refuses points that are not a positive integer', async () => {
    const memberId = await memberWith(100);
    for (const points of [0, -1, 2.5, '10', null]) {
      const refused = await post(ledger.app, pos, url(memberId, 'holds'), {
        orderId: uniqueId('o'),
        storeId: store,
        points,
      });
      expect(offendingPaths(refused), String(points)).toEqual(['body.points']);
    }
  });
});

describe('POST /v1/members/{memberId}/holds/{holdId}/capture and /release', () => {
  async function hold(memberId: string, points: number, ttlSeconds?: number): Promise<string> {
    const response = await post(ledger.app, pos, url(memberId, 'holds'), {
      orderId: uniqueId('o'),
      storeId: store,
      points,
      ...(ttlSeconds === undefined ? {} : { ttlSeconds }),
    });
    expect(response.statusCode).toBe(201);
    return response.json().holdId;
  }

  it('captures part of a hold; the rest is available again', async () => {
    const memberId = await memberWith(1_000);
    const holdId = await hold(memberId, 400);
    const capture = await post(ledger.app, pos, url(memberId, `holds/${holdId}/capture`), { points: 150 });
    expect(capture.statusCode).toBe(200);
    expect(capture.json()).toEqual({ pointsRedeemed: 150, balance: 850, available: 850 });
    expect(await pointsOf(memberId)).toEqual({ balance: 850, held: 0, available: 850 });
  });

  it('captures all held points by default', async () => {
    const memberId = await memberWith(1_000);
    const holdId = await hold(memberId, 400);
    const capture = await post(ledger.app, pos, url(memberId, `holds/${holdId}/capture`), {});
    expect(capture.statusCode).toBe(200);
    expect(capture.json()).toEqual({ pointsRedeemed: 400, balance: 600, available: 600 });
  });

  it('refuses to capture more than held', async () => {
    const memberId = await memberWith(1_000);
    const holdId = await hold(memberId, 100);
    const refused = await post(ledger.app, pos, url(memberId, `holds/${holdId}/capture`), { points: 101 });
    expect(offendingPaths(refused).join()).toMatch(/points/);
    expect(await pointsOf(memberId)).toEqual({ balance: 1_000, held: 100, available: 900 });
  });

  it('releases a hold: 200 with available', async () => {
    const memberId = await memberWith(1_000);
    const holdId = await hold(memberId, 300);
    const release = await post(ledger.app, pos, url(memberId, `holds/${holdId}/release`), {});
    expect(release.statusCode).toBe(200);
    expect(release.json()).toEqual({ available: 1_000 });
  });

  it('answers 409 hold-not-active for a captured hold', async () => {
    const memberId = await memberWith(1_000);
    const holdId = await hold(memberId, 300);
    expect(
      (await post(ledger.app, pos, url(memberId, `holds/${holdId}/capture`), { points: 100 })).statusCode,
    ).toBe(200);
    const before = await tenantFingerprint(database.current.pool, 'acme');
    expectProblem(
      await post(ledger.app, pos, url(memberId, `holds/${holdId}/capture`), {}),
      409,
      'hold-not-active',
    );
    expectProblem(
      await post(ledger.app, pos, url(memberId, `holds/${holdId}/release`), {}),
      409,
      'hold-not-active',
    );
    expect(await tenantFingerprint(database.current.pool, 'acme')).toBe(before);
  });

  it('answers 409 hold-not-active for a released hold', async () => {
    const memberId = await memberWith(1_000);
    const holdId = await hold(memberId, 300);
    expect((await post(ledger.app, pos, url(memberId, `holds/${holdId}/release`), {})).statusCode).toBe(200);
    expectProblem(
      await post(ledger.app, pos, url(memberId, `holds/${holdId}/capture`), {}),
      409,
      'hold-not-active',
    );
    expectProblem(
      await post(ledger.app, pos, url(memberId, `holds/${holdId}/release`), {}),
      409,
      'hold-not-active',
    );
  });

  it('answers 409 hold-not-active for an unknown hold', async () => {
    const memberId = await memberWith(1_000);
    expectProblem(
      await post(ledger.app, pos, url(memberId, `holds/${randomUUID()}/capture`), {}),
      409,
      'hold-not-active',
    );
    expectProblem(
      await post(ledger.app, pos, url(memberId, `holds/no-such-hold/release`), {}),
      409,
      'hold-not-active',
    );
  });

  it('expires a hold without a call: its points are available at once and it can no longer be captured', async () => {
    const memberId = await memberWith(1_000);
    const holdId = await hold(memberId, 400, 60);
    expect(await pointsOf(memberId)).toEqual({ balance: 1_000, held: 400, available: 600 });
    ledger.clock.advanceSeconds(59);
    expect(await pointsOf(memberId)).toEqual({ balance: 1_000, held: 400, available: 600 });
    ledger.clock.advanceSeconds(1);
    expect(await pointsOf(memberId)).toEqual({ balance: 1_000, held: 0, available: 1_000 });
    const before = await tenantFingerprint(database.current.pool, 'acme');
    expectProblem(
      await post(ledger.app, pos, url(memberId, `holds/${holdId}/capture`), {}),
      409,
      'hold-not-active',
    );
    expectProblem(
      await post(ledger.app, pos, url(memberId, `holds/${holdId}/release`), {}),
      409,
      'hold-not-active',
    );
    expect(await tenantFingerprint(database.current.pool, 'acme')).toBe(before);
    // All 1,000 points can be spent the moment the hold expired.
    const redeem = await post(ledger.app, pos, url(memberId, 'redemptions'), {
      orderId: uniqueId('o'),
      storeId: store,
      points: 1_000,
    });
    expect(redeem.statusCode).toBe(201);
    expect(redeem.json()).toEqual({ pointsRedeemed: 1_000, balance: 0, available: 0 });
  });

  it('refuses a capture body with unknown fields or bad points', async () => {
    const memberId = await memberWith(100);
    const holdId = await hold(memberId, 50);
    expect(
      offendingPaths(await post(ledger.app, pos, url(memberId, `holds/${holdId}/capture`), { points: 0 })),
    ).toEqual(['body.points']);
    expect(
      offendingPaths(await post(ledger.app, pos, url(memberId, `holds/${holdId}/capture`), { all: true })),
    ).toEqual(['body.all']);
    expect(
      offendingPaths(await post(ledger.app, pos, url(memberId, `holds/${holdId}/release`), { points: 1 })),
    ).toEqual(['body.points']);
  });
});

describe('POST /v1/members/{memberId}/redemptions', () => {
  it('redeems points: 201 with balances', async () => {
    const memberId = await memberWith(500);
    const response = await post(ledger.app, pos, url(memberId, 'redemptions'), {
      orderId: uniqueId('o'),
      storeId: store,
      points: 120,
    });
    expect(response.statusCode).toBe(201);
    expect(response.json()).toEqual({ pointsRedeemed: 120, balance: 380, available: 380 });
  });

  it('answers 422 insufficient-points past available (held points are not available)', async () => {
    const memberId = await memberWith(500);
    expect(
      (
        await post(ledger.app, pos, url(memberId, 'holds'), {
          orderId: uniqueId('o'),
          storeId: store,
          points: 200,
        })
      ).statusCode,
    ).toBe(201);
    const before = await tenantFingerprint(database.current.pool, 'acme');
    expectProblem(
      await post(ledger.app, pos, url(memberId, 'redemptions'), {
        orderId: uniqueId('o'),
        storeId: store,
        points: 301,
      }),
      422,
      'insufficient-points',
    );
    expect(await tenantFingerprint(database.current.pool, 'acme')).toBe(before);
    expect(
      (
        await post(ledger.app, pos, url(memberId, 'redemptions'), {
          orderId: uniqueId('o'),
          storeId: store,
          points: 300,
        })
      ).statusCode,
    ).toBe(201);
    expect(await pointsOf(memberId)).toEqual({ balance: 200, held: 200, available: 0 });
  });
});

describe('POST /v1/members/{memberId}/refunds', () => {
  it('reverses earned and restores redeemed points in proportion, and refuses refunds past the order total', async () => {
    const memberId = await memberWith(0);
    // T = 100000 fen, P = 1000 points.
    await purchase(ledger, pos, memberId, store, 100_000, 'refund-order');
    // R = 300 points redeemed against the order.
    expect(
      (
        await post(ledger.app, pos, url(memberId, 'redemptions'), {
          orderId: 'refund-order',
          storeId: store,
          points: 300,
        })
      ).statusCode,
    ).toBe(201);

    const first = await post(ledger.app, pos, url(memberId, 'refunds'), {
      refundId: 'r-1',
      orderId: 'refund-order',
      storeId: store,
      amountFen: 25_000,
    });
    expect(first.statusCode).toBe(201);
    // floor(1000 x 25000 / 100000) = 250 reversed; floor(300 x 25000 / 100000) = 75 restored.
    expect(first.json()).toEqual({ pointsReversed: 250, pointsRestored: 75, balance: 525, available: 525 });

    const before = await tenantFingerprint(database.current.pool, 'acme');
    const tooMuch = await post(ledger.app, pos, url(memberId, 'refunds'), {
      refundId: 'r-2',
      orderId: 'refund-order',
      storeId: store,
      amountFen: 75_001,
    });
    expectProblem(tooMuch, 422, 'refund-exceeds-order');
    expect(await tenantFingerprint(database.current.pool, 'acme')).toBe(before);

    const rest = await post(ledger.app, pos, url(memberId, 'refunds'), {
      refundId: 'r-3',
      orderId: 'refund-order',
      storeId: store,
      amountFen: 75_000,
    });
    expect(rest.statusCode).toBe(201);
    expect(rest.json()).toEqual({ pointsReversed: 750, pointsRestored: 225, balance: 0, available: 0 });

    expectProblem(
      await post(ledger.app, pos, url(memberId, 'refunds'), {
        refundId: 'r-4',
        orderId: 'refund-order',
        storeId: store,
        amountFen: 1,
      }),
      422,
      'refund-exceeds-order',
    );
  });

  it('answers 404 not-found for an order the member never bought', async () => {
    const memberId = await memberWith(100);
    const response = await post(ledger.app, pos, url(memberId, 'refunds'), {
      refundId: uniqueId('r'),
      orderId: 'never-bought',
      storeId: store,
      amountFen: 100,
    });
    const problem = expectProblem(response, 404, 'not-found');
    expect(problem['detail']).toContain('never-bought');
  });

  it('answers 409 refund-already-recorded for a refundId used before', async () => {
    const memberId = await memberWith(0);
    await purchase(ledger, pos, memberId, store, 10_000, 'refund-twice');
    const body = { refundId: 'r-twice', orderId: 'refund-twice', storeId: store, amountFen: 1_000 };
    expect((await post(ledger.app, pos, url(memberId, 'refunds'), body)).statusCode).toBe(201);
    const again = await post(ledger.app, pos, url(memberId, 'refunds'), body);
    expect(again.statusCode).toBe(409);
    expect(again.json().code).toBe('refund-already-recorded');
  });

  it('refuses a zero or fractional amount', async () => {
    const memberId = await memberWith(0);
    for (const amountFen of [0, -1, 0.5]) {
      const refused = await post(ledger.app, pos, url(memberId, 'refunds'), {
        refundId: uniqueId('r'),
        orderId: 'x',
        storeId: store,
        amountFen,
      });
      expect(offendingPaths(refused)).toEqual(['body.amountFen']);
    }
  });
});

describe('POST /v1/members/{memberId}/adjustments', () => {
  it('credits and debits points for support and admin keys: 201 with balances', async () => {
    const memberId = await memberWith(100);
    const credit = await post(ledger.app, support, url(memberId, 'adjustments'), {
      adjustmentId: uniqueId('adj'),
      points: 50,
      reason: 'goodwill after a pricing error',
      ticket: 'SUP-1',
    });
    expect(credit.statusCode).toBe(201);
    expect(credit.json()).toEqual({ balance: 150, available: 150 });
    const debit = await post(ledger.app, admin, url(memberId, 'adjustments'), {
      adjustmentId: uniqueId('adj'),
      points: -30,
      reason: 'duplicate credit',
    });
    expect(debit.statusCode).toBe(201);
    expect(debit.json()).toEqual({ balance: 120, available: 120 });
  });

  it('answers 422 insufficient-points for a debit past available', async () => {
    const memberId = await memberWith(100);
    expect(
      (
        await post(ledger.app, pos, url(memberId, 'holds'), {
          orderId: uniqueId('o'),
          storeId: store,
          points: 60,
        })
      ).statusCode,
    ).toBe(201);
    const before = await tenantFingerprint(database.current.pool, 'acme');
    const refused = await post(ledger.app, support, url(memberId, 'adjustments'), {
      adjustmentId: uniqueId('adj'),
      points: -41,
      reason: 'correction',
    });
    expectProblem(refused, 422, 'insufficient-points');
    expect(await tenantFingerprint(database.current.pool, 'acme')).toBe(before);
    const allowed = await post(ledger.app, support, url(memberId, 'adjustments'), {
      adjustmentId: uniqueId('adj'),
      points: -40,
      reason: 'correction',
    });
    expect(allowed.json()).toEqual({ balance: 60, available: 0 });
  });

  it('refuses zero points, a blank or over-long reason, and an over-long ticket', async () => {
    const memberId = await memberWith(100);
    const base = { adjustmentId: uniqueId('adj'), points: 5, reason: 'ok' };
    expect(
      offendingPaths(await post(ledger.app, support, url(memberId, 'adjustments'), { ...base, points: 0 })),
    ).toEqual(['body.points']);
    expect(
      offendingPaths(await post(ledger.app, support, url(memberId, 'adjustments'), { ...base, reason: '' })),
    ).toEqual(['body.reason']);
    expect(
      offendingPaths(
        await post(ledger.app, support, url(memberId, 'adjustments'), { ...base, reason: '  \t ' }),
      ),
    ).toEqual(['body.reason']);
    expect(
      offendingPaths(
        await post(ledger.app, support, url(memberId, 'adjustments'), { ...base, reason: 'r'.repeat(501) }),
      ),
    ).toEqual(['body.reason']);
    expect(
      offendingPaths(
        await post(ledger.app, support, url(memberId, 'adjustments'), { ...base, ticket: 't'.repeat(129) }),
      ),
    ).toEqual(['body.ticket']);
    expect(
      offendingPaths(await post(ledger.app, support, url(memberId, 'adjustments'), { points: 5 })),
    ).toEqual(['body.adjustmentId', 'body.reason']);
    const longest = await post(ledger.app, support, url(memberId, 'adjustments'), {
      ...base,
      reason: 'r'.repeat(500),
    });
    expect(longest.statusCode).toBe(201);
  });

  it('answers 409 adjustment-already-recorded for an adjustmentId used before', async () => {
    const memberId = await memberWith(100);
    const body = { adjustmentId: uniqueId('adj'), points: 5, reason: 'once' };
    expect((await post(ledger.app, support, url(memberId, 'adjustments'), body)).statusCode).toBe(201);
    const again = await post(ledger.app, support, url(memberId, 'adjustments'), body);
    expect(again.statusCode).toBe(409);
    expect(again.json().code).toBe('adjustment-already-recorded');
  });

  it('answers 404 not-found for an unknown member', async () => {
    expectProblem(
      await post(ledger.app, support, url(randomUUID(), 'adjustments'), {
        adjustmentId: uniqueId('adj'),
        points: 5,
        reason: 'x',
      }),
      404,
      'not-found',
    );
  });
});
