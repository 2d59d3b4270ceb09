import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventCount, expectProblem, registerMember, uniqueId } from '../../test/helpers/api.ts';
import { useTestDatabase } from '../../test/helpers/database.ts';
import { newIdempotencyKey, openTestLedger, post, type TestLedger } from '../../test/helpers/ledger.ts';

/**
 * A command that cannot finish in time (here: another transaction holds the log partitions' rows) is
 * answered 503 with Retry-After at its deadline instead of leaving the till waiting. It runs on, commits
 * when the lock goes, and the retry under the same Idempotency-Key answers what was recorded, once.
 */

const DEADLINE_MS = 300;
const database = useTestDatabase();
let ledger: TestLedger;
let pos: string;
let memberId: string;
const store = 'store-1';

beforeAll(async () => {
  ledger = await openTestLedger(database.current, { commandDeadlineMs: DEADLINE_MS });
  await ledger.createTenant('acme');
  pos = await ledger.key('acme', 'pos', [store]);
  memberId = await registerMember(ledger, pos, store);
});
afterAll(async () => {
  await ledger.close();
});

/** Holds every log partition row of the tenant in an open transaction until `release` is called. */
async function holdTheLog(): Promise<{ release(): Promise<void> }> {
  const connection = await mysql.createConnection(database.current.url);
  await connection.query('START TRANSACTION');
  await connection.query("SELECT * FROM log_partitions WHERE tenant_id = 'acme' FOR UPDATE");
  return {
    async release() {
      await connection.query('COMMIT');
      await connection.end();
    },
  };
}

describe('a command past its deadline', () => {
  it('is answered 503 with Retry-After, commits when it can, and its retry replays the outcome once', async () => {
    const body = {
      orderId: uniqueId('o'),
      storeId: store,
      lines: [{ sku: 'a', category: 'otc', quantity: 1, amountFen: 12_300 }],
    };
    const key = newIdempotencyKey();
    const eventsBefore = await eventCount(database.current.pool, 'acme');
    const lock = await holdTheLog();
    let late;
    try {
      late = await post(ledger.app, pos, `/v1/members/${memberId}/purchases`, body, key);
      // Answered while the lock is still held: the command cannot have committed yet.
      expect(await eventCount(database.current.pool, 'acme')).toBe(eventsBefore);
    } finally {
      await lock.release();
    }
    expectProblem(late, 503, 'service-unavailable');
    expect(late.headers['retry-after']).toBe('1');
    expect(late.json().detail).toContain(`${DEADLINE_MS} ms`);

    await ledger.runtime.runner.drain();
    expect(await eventCount(database.current.pool, 'acme')).toBe(eventsBefore + 1);
    const retry = await post(ledger.app, pos, `/v1/members/${memberId}/purchases`, body, key);
    expect(retry.statusCode, retry.body).toBe(201);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(retry.json()).toMatchObject({ pointsEarned: 123, balance: 123 });
    expect(await eventCount(database.current.pool, 'acme')).toBe(eventsBefore + 1);

    const metrics = await ledger.app.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.body).toMatch(
      /ledger_command_outcomes_total\{route="[^"]*purchases",outcome="deadline"\} 1/,
    );
  });

  it('leaves commands that finish in time alone', async () => {
    const response = await post(ledger.app, pos, `/v1/members/${memberId}/redemptions`, {
      orderId: uniqueId('o'),
      storeId: store,
      points: 23,
    });
    expect(response.statusCode, response.body).toBe(201);
    expect(response.json()).toMatchObject({ pointsRedeemed: 23, balance: 100 });
  });
});
