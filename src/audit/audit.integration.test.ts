import type { RowDataPacket } from 'mysql2/promise';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { generateHistory } from '../../scripts/generate-history.ts';
import { useTestDatabase } from '../../test/helpers/database.ts';
import { audit as auditVerb } from '../cli/verbs/audit.ts';
import { replay as replayVerb } from '../cli/verbs/replay.ts';
import { memberIdOfStream } from '../commands/streams.ts';
import { loadConfig } from '../config.ts';
import { sqlInt } from '../db/pool.ts';
import {
  decideMember,
  evolveMember,
  initialMemberState,
  type MemberCommand,
  type MemberEvent,
  type MemberState,
} from '../domain/member/index.ts';
import { defaultProgramme } from '../domain/programme.ts';
import { partitionHash, streamHash } from '../eventstore/hash.ts';
import { SqlEventStore } from '../eventstore/sql/sql-event-store.ts';
import { ProjectionEngine, PROJECTION_BATCH_EVENTS_MAX } from '../projections/engine.ts';
import { LIVE_TABLES } from '../projections/tables.ts';
import { setTagRules } from '../projections/tags.ts';
import { runAudit } from './audit.ts';
import type { AuditReport, Discrepancy } from './report.ts';

const database = useTestDatabase();
const store = () => new SqlEventStore(database.current.pool);
const pool = () => database.current.pool;

let tenantCounter = 0;
/** A fresh tenant with a decider-made history, fully projected. */
async function projectedTenant(members = 24, eventsPerMember = 14): Promise<string> {
  tenantCounter += 1;
  const tenantId = `audit-${tenantCounter}`;
  await generateHistory(store(), {
    tenantId,
    seed: 100 + tenantCounter,
    members,
    eventsPerMember,
    stores: 6,
  });
  await projectTenant(tenantId);
  return tenantId;
}

/** Drains one tenant's partitions (a Projector's runOnce would also touch the tenants other tests tampered with). */
async function projectTenant(tenantId: string): Promise<void> {
  const engine = new ProjectionEngine(pool(), store(), LIVE_TABLES, {
    batchEvents: PROJECTION_BATCH_EVENTS_MAX,
  });
  await engine.ensureTenant(tenantId);
  for (let partition = 0; partition < store().partitions; partition++) {
    while ((await engine.drain(tenantId, partition, null, 100)).more);
  }
}

async function audit(tenantId: string): Promise<AuditReport> {
  // Small pages so the keyset paging of every cursor is exercised.
  return runAudit(pool(), store(), { tenantId, pageRows: 37, eventPageRows: 23, concurrency: 3 });
}

async function rows(sql: string, params: unknown[]): Promise<RowDataPacket[]> {
  return (await pool().query<RowDataPacket[]>(sql, params))[0];
}

/** A member stream with at least `minVersion` events: its id, last version and partition. */
async function aStream(
  tenantId: string,
  minVersion = 6,
): Promise<{ streamId: string; memberId: string; last: number; partition: number }> {
  const [row] = await rows(
    `SELECT stream_id, partition_no, MAX(stream_version) AS last FROM events WHERE tenant_id = ? AND stream_id LIKE 'member-%'
     GROUP BY stream_id, partition_no HAVING MAX(stream_version) >= ? ORDER BY stream_id LIMIT 1`,
    [tenantId, minVersion],
  );
  const streamId = String(row!['stream_id']);
  return {
    streamId,
    memberId: memberIdOfStream(streamId)!,
    last: sqlInt(row!['last']),
    partition: sqlInt(row!['partition_no']),
  };
}

function found(report: AuditReport): Discrepancy[] {
  return report.tenants.flatMap((t) => t.discrepancies);
}

describe('audit: a clean ledger', () => {
  it('verifies every chain and read model and reports no discrepancy; lag is reported, not failed', async () => {
    const tenantId = await projectedTenant(30, 20);
    const report = await audit(tenantId);
    expect(found(report)).toEqual([]);
    expect(report.clean).toBe(true);
    const [count] = await rows('SELECT COUNT(*) AS n FROM events WHERE tenant_id = ?', [tenantId]);
    expect(report.events).toBe(sqlInt(count!['n']));
    expect(report.members).toBe(30);
    expect(report.tenants[0]!.partitions.every((p) => p.lag === 0 && p.checkpoint === p.head)).toBe(true);
    expect(Object.values(report.tenants[0]!.postings).reduce((a, b) => a + b, 0)).toBe(0);

    // More events, not yet projected: still clean (read models are compared at their checkpoint), lag shown.
    await generateHistory(store(), {
      tenantId,
      seed: 999,
      members: 5,
      eventsPerMember: 10,
      stores: 6,
      firstMember: 1000,
      createTenant: false,
    });
    const behind = await audit(tenantId);
    expect(found(behind)).toEqual([]);
    expect(behind.totalLag).toBeGreaterThan(0);
  });
});

describe('audit: tampering with the event store is caught and located', () => {
  it('a modified event: names its stream and version', async () => {
    const tenantId = await projectedTenant();
    const target = await aStream(tenantId);
    const version = 3;
    await pool().query(
      `UPDATE events SET data = REPLACE(data, '"at":"', '"at":"1') WHERE tenant_id = ? AND stream_id = ? AND stream_version = ?`,
      [tenantId, target.streamId, version],
    );
    const report = await audit(tenantId);
    expect(report.clean).toBe(false);
    expect(found(report)).toContainEqual(
      expect.objectContaining({
        kind: 'chain',
        streamId: target.streamId,
        streamVersion: version,
        detail: expect.stringContaining('content-changed'),
      }),
    );
  });

  it('an event whose stored data is no longer JSON: reported at its version, the audit still runs', async () => {
    const tenantId = await projectedTenant();
    const target = await aStream(tenantId);
    await pool().query(
      `UPDATE events SET data = CONCAT(data, '}') WHERE tenant_id = ? AND stream_id = ? AND stream_version = 2`,
      [tenantId, target.streamId],
    );
    const discrepancies = found(await audit(tenantId));
    expect(discrepancies).toContainEqual(
      expect.objectContaining({ kind: 'chain', streamId: target.streamId, streamVersion: 2 }),
    );
    expect(discrepancies).toContainEqual(
      expect.objectContaining({
        kind: 'replay',
        streamId: target.streamId,
        streamVersion: 2,
        detail: expect.stringContaining('not JSON'),
      }),
    );
  });

  it('a deleted event: names the stream and the missing version', async () => {
    const tenantId = await projectedTenant();
    const target = await aStream(tenantId);
    await pool().query('DELETE FROM events WHERE tenant_id = ? AND stream_id = ? AND stream_version = 4', [
      tenantId,
      target.streamId,
    ]);
    const discrepancies = found(await audit(tenantId));
    expect(discrepancies).toContainEqual(
      expect.objectContaining({
        kind: 'chain',
        streamId: target.streamId,
        streamVersion: 5,
        detail: expect.stringContaining('expected version 4, found 5'),
      }),
    );
    // The partition chain shows the hole at its position too.
    expect(
      discrepancies.some(
        (d) =>
          d.kind === 'chain' && d.partition === target.partition && d.detail.includes('expected position'),
      ),
    ).toBe(true);
  });

  it('an inserted event, even with correctly recomputed hashes: names the stream and the forged version', async () => {
    const tenantId = await projectedTenant();
    const target = await aStream(tenantId);
    const [last] = await rows(
      'SELECT * FROM events WHERE tenant_id = ? AND stream_id = ? AND stream_version = ?',
      [tenantId, target.streamId, target.last],
    );
    const [tail] = await rows(
      'SELECT position, partition_hash FROM events WHERE tenant_id = ? AND partition_no = ? ORDER BY position DESC LIMIT 1',
      [tenantId, target.partition],
    );
    const version = target.last + 1;
    const position = sqlInt(tail!['position']) + 1;
    const eventId = '00000000-0000-4000-8000-000000000001';
    const data = JSON.stringify({ adjustmentId: 'forged', points: 5000 });
    const metadata = String(last!['metadata']);
    const forgedStreamHash = streamHash(String(last!['stream_hash']), {
      tenantId,
      streamId: target.streamId,
      streamVersion: version,
      eventId,
      type: 'PointsAdjusted',
      dataJson: data,
      metadataJson: metadata,
    });
    await pool().query(
      `INSERT INTO events (tenant_id, partition_no, position, stream_id, stream_version, event_id, event_type, data, metadata, recorded_at, stream_hash, partition_hash)
       VALUES (?, ?, ?, ?, ?, ?, 'PointsAdjusted', ?, ?, ?, ?, ?)`,
      [
        tenantId,
        target.partition,
        position,
        target.streamId,
        version,
        eventId,
        data,
        metadata,
        String(last!['recorded_at']),
        forgedStreamHash,
        partitionHash(String(tail!['partition_hash']), target.partition, position, forgedStreamHash),
      ],
    );
    const discrepancies = found(await audit(tenantId));
    expect(discrepancies).toContainEqual(
      expect.objectContaining({ kind: 'head', streamId: target.streamId, streamVersion: version }),
    );
    expect(discrepancies).toContainEqual(
      expect.objectContaining({ kind: 'head', partition: target.partition, position }),
    );
  });

  it('two events swapped in the log: names the streams and versions of both', async () => {
    const tenantId = await projectedTenant();
    const target = await aStream(tenantId);
    const [a, b] = await rows(
      'SELECT position, stream_id, stream_version FROM events WHERE tenant_id = ? AND partition_no = ? ORDER BY position LIMIT 2 OFFSET 10',
      [tenantId, target.partition],
    );
    const pa = sqlInt(a!['position']);
    const pb = sqlInt(b!['position']);
    await pool().query(
      `UPDATE events SET position = 999999 WHERE tenant_id = ? AND partition_no = ? AND position = ?;
       UPDATE events SET position = ? WHERE tenant_id = ? AND partition_no = ? AND position = ?;
       UPDATE events SET position = ? WHERE tenant_id = ? AND partition_no = ? AND position = 999999`,
      [tenantId, target.partition, pa, pa, tenantId, target.partition, pb, pb, tenantId, target.partition],
    );
    const discrepancies = found(await audit(tenantId));
    for (const moved of [a!, b!]) {
      expect(discrepancies).toContainEqual(
        expect.objectContaining({
          kind: 'chain',
          streamId: String(moved['stream_id']),
          streamVersion: sqlInt(moved['stream_version']),
          partition: target.partition,
        }),
      );
    }
  });

  it("a truncated tail: the stream's head names the version where the events now end", async () => {
    const tenantId = await projectedTenant();
    const target = await aStream(tenantId);
    await pool().query('DELETE FROM events WHERE tenant_id = ? AND stream_id = ? AND stream_version = ?', [
      tenantId,
      target.streamId,
      target.last,
    ]);
    const discrepancies = found(await audit(tenantId));
    expect(discrepancies).toContainEqual(
      expect.objectContaining({
        kind: 'head',
        streamId: target.streamId,
        streamVersion: target.last - 1,
        detail: expect.stringContaining(`recorded head is version ${target.last}`),
      }),
    );
  });

  it('a truncated tail with every head rewritten to match: the read models and checkpoints still give it away', async () => {
    const tenantId = await projectedTenant();
    // The last event of a partition, and its stream: cut it and rewrite streams and log_partitions.
    const [tail] = await rows(
      `SELECT partition_no, position, stream_id, stream_version FROM events WHERE tenant_id = ? AND stream_id LIKE 'member-%'
       AND stream_version > 1 ORDER BY position DESC LIMIT 1`,
      [tenantId],
    );
    const partition = sqlInt(tail!['partition_no']);
    const position = sqlInt(tail!['position']);
    const streamId = String(tail!['stream_id']);
    const version = sqlInt(tail!['stream_version']);
    const [head] = await rows(
      'SELECT next_position FROM log_partitions WHERE tenant_id = ? AND partition_no = ?',
      [tenantId, partition],
    );
    expect(sqlInt(head!['next_position']) - 1).toBe(position);
    const [previous] = await rows(
      'SELECT partition_hash FROM events WHERE tenant_id = ? AND partition_no = ? AND position = ?',
      [tenantId, partition, position - 1],
    );
    const [streamPrevious] = await rows(
      'SELECT stream_hash FROM events WHERE tenant_id = ? AND stream_id = ? AND stream_version = ?',
      [tenantId, streamId, version - 1],
    );
    await pool().query(
      `DELETE FROM events WHERE tenant_id = ? AND partition_no = ? AND position = ?;
       UPDATE log_partitions SET next_position = ?, last_hash = ? WHERE tenant_id = ? AND partition_no = ?;
       UPDATE streams SET version = ?, last_hash = ? WHERE tenant_id = ? AND stream_id = ?`,
      [
        tenantId,
        partition,
        position,
        position,
        String(previous!['partition_hash']),
        tenantId,
        partition,
        version - 1,
        String(streamPrevious!['stream_hash']),
        tenantId,
        streamId,
      ],
    );
    const discrepancies = found(await audit(tenantId));
    expect(discrepancies).toContainEqual(
      expect.objectContaining({ kind: 'checkpoint', partition, position }),
    );
    expect(discrepancies).toContainEqual(
      expect.objectContaining({
        kind: 'head',
        memberId: memberIdOfStream(streamId),
        table: 'member_accounts',
        field: 'version',
        expected: version - 1,
        actual: version,
      }),
    );
  });
});

describe('audit: rules checked while folding', () => {
  it('a redemption that spends held points (available below zero, not through a refund) is reported', async () => {
    tenantCounter += 1;
    const tenantId = `audit-${tenantCounter}`;
    const memberId = '0b0b0b0b-0000-4000-8000-000000000001';
    const tenant = { tenantId, timeZone: 'Asia/Shanghai', programme: defaultProgramme() };
    let state: MemberState = initialMemberState();
    const events: MemberEvent[] = [];
    const decide = (command: MemberCommand, now: string) => {
      const decision = decideMember(command, state, { now, tenant });
      if (!decision.ok) throw new Error(decision.error.detail);
      for (const event of decision.events) {
        state = evolveMember(state, event);
        events.push(event);
      }
    };
    decide(
      { type: 'RegisterMember', data: { memberId, phone: '13800000001', storeId: 's1', channel: 'store' } },
      '2026-01-05T01:00:00.000Z',
    );
    decide(
      {
        type: 'RecordPurchase',
        data: {
          orderId: 'o1',
          storeId: 's1',
          lines: [{ sku: 'a', category: 'otc', quantity: 1, amountFen: 50_000 }],
          lotId: 'lot-1',
        },
      },
      '2026-01-05T02:00:00.000Z',
    );
    decide(
      { type: 'PlaceHold', data: { holdId: 'h1', orderId: 'o2', storeId: 's1', points: 400 } },
      '2026-01-05T03:00:00.000Z',
    );
    // Forged past the decider (which would refuse it): the fold accepts it, as the balance covers it.
    const at = '2026-01-05T03:01:00.000Z';
    events.push({
      type: 'PointsRedeemed',
      data: {
        orderId: 'o3',
        storeId: 's1',
        points: 300,
        consumed: [{ lotId: 'lot-1', points: 300 }],
        balanceAfter: 200,
        at,
      },
    });
    const streamId = `member-${memberId}`;
    await store().append({
      tenantId,
      streamId,
      expectedVersion: 'no-stream',
      events: events.map((event, index) => ({
        eventId: `0b0b0b0b-0000-4000-8000-00000000001${index}`,
        type: event.type,
        data: event.data,
        metadata: { tenantId, recordedAt: at },
      })),
    });
    await projectTenant(tenantId);
    expect(found(await audit(tenantId))).toContainEqual(
      expect.objectContaining({ kind: 'available', memberId, streamVersion: 4, actual: -200 }),
    );
  });
});

describe('audit: read-model drift is caught field by field', () => {
  it('an edited balance, a deleted lot and an edited ledger entry each name the member and the field', async () => {
    const tenantId = await projectedTenant();
    const [lot] = await rows(
      'SELECT member_id, lot_id FROM member_lots WHERE tenant_id = ? ORDER BY member_id LIMIT 1',
      [tenantId],
    );
    const [entry] = await rows(
      'SELECT member_id, stream_version, movement_no FROM ledger_entries WHERE tenant_id = ? ORDER BY member_id DESC LIMIT 1',
      [tenantId],
    );
    const [account] = await rows(
      'SELECT member_id FROM member_accounts WHERE tenant_id = ? AND member_id <> ? AND member_id <> ? LIMIT 1',
      [tenantId, lot!['member_id'], entry!['member_id']],
    );
    await pool().query(
      'UPDATE member_accounts SET balance = balance + 7 WHERE tenant_id = ? AND member_id = ?',
      [tenantId, account!['member_id']],
    );
    await pool().query('DELETE FROM member_lots WHERE tenant_id = ? AND member_id = ? AND lot_id = ?', [
      tenantId,
      lot!['member_id'],
      lot!['lot_id'],
    ]);
    await pool().query(
      'UPDATE ledger_entries SET points = points + 1 WHERE tenant_id = ? AND member_id = ? AND stream_version = ? AND movement_no = ?',
      [tenantId, entry!['member_id'], entry!['stream_version'], entry!['movement_no']],
    );
    const discrepancies = found(await audit(tenantId));
    expect(discrepancies).toContainEqual(
      expect.objectContaining({
        kind: 'read-model',
        memberId: String(account!['member_id']),
        table: 'member_accounts',
        field: 'balance',
      }),
    );
    expect(discrepancies).toContainEqual(
      expect.objectContaining({
        kind: 'read-model',
        memberId: String(lot!['member_id']),
        table: 'member_lots',
        field: `lot ${String(lot!['lot_id'])}`,
      }),
    );
    expect(discrepancies).toContainEqual(
      expect.objectContaining({
        kind: 'read-model',
        memberId: String(entry!['member_id']),
        table: 'ledger_entries',
        field: `entry ${String(entry!['stream_version'])}/${String(entry!['movement_no'])} points`,
      }),
    );
  });
});

describe('audit: double entry, the postings of the events against tenant_totals', () => {
  /** Every partition's head and checkpoint. */
  async function partitionsOf(
    tenantId: string,
  ): Promise<{ partition: number; head: number; checkpoint: number }[]> {
    return (
      await rows(
        `SELECT p.partition_no, p.next_position - 1 AS head, COALESCE(c.position, 0) AS checkpoint
         FROM log_partitions p LEFT JOIN projection_checkpoints c ON c.tenant_id = p.tenant_id AND c.partition_no = p.partition_no
         WHERE p.tenant_id = ? ORDER BY p.partition_no`,
        [tenantId],
      )
    ).map((row) => ({
      partition: sqlInt(row['partition_no']),
      head: sqlInt(row['head']),
      checkpoint: sqlInt(row['checkpoint']),
    }));
  }

  it('an edited total, a deleted one and a forged account are each named with their partition', async () => {
    const tenantId = await projectedTenant();
    const [edited, deleted] = await rows(
      `SELECT partition_no, account FROM tenant_totals WHERE tenant_id = ? AND account IN ('member', 'issued')
       ORDER BY partition_no, account LIMIT 2 OFFSET 3`,
      [tenantId],
    );
    await pool().query(
      'UPDATE tenant_totals SET points = points + 5 WHERE tenant_id = ? AND partition_no = ? AND account = ?',
      [tenantId, edited!['partition_no'], edited!['account']],
    );
    await pool().query('DELETE FROM tenant_totals WHERE tenant_id = ? AND partition_no = ? AND account = ?', [
      tenantId,
      deleted!['partition_no'],
      deleted!['account'],
    ]);
    await pool().query(
      "INSERT INTO tenant_totals (tenant_id, partition_no, account, points, postings) VALUES (?, 2, 'forged', 9, 1)",
      [tenantId],
    );
    const discrepancies = found(await audit(tenantId)).filter((d) => d.table === 'tenant_totals');
    const named = (row: RowDataPacket, field: string) =>
      expect.objectContaining({
        kind: 'postings',
        partition: sqlInt(row['partition_no']),
        field: `${String(row['account'])} ${field}`,
      });
    expect(discrepancies).toContainEqual(named(edited!, 'points'));
    expect(discrepancies).toContainEqual(named(deleted!, 'points'));
    expect(discrepancies).toContainEqual(named(deleted!, 'postings'));
    expect(discrepancies).toContainEqual(
      expect.objectContaining({ partition: 2, field: 'forged points', expected: 0, actual: 9 }),
    );
    expect(discrepancies).toContainEqual(
      expect.objectContaining({ partition: 2, field: 'forged postings', expected: 0, actual: 1 }),
    );
    expect(discrepancies).toHaveLength(5);
  });

  it('gives the same result wherever the passes split the postings, with the projector behind and a total edited', async () => {
    const tenantId = await projectedTenant(20, 12);
    // Events the projector has not applied yet, in most partitions.
    await generateHistory(store(), {
      tenantId,
      seed: 77,
      members: 8,
      eventsPerMember: 8,
      stores: 6,
      firstMember: 500,
      createTenant: false,
    });
    const clean = await audit(tenantId);
    expect(found(clean)).toEqual([]);
    expect(clean.totalLag).toBeGreaterThan(0);
    const [total] = await rows(
      "SELECT partition_no FROM tenant_totals WHERE tenant_id = ? AND account = 'member' ORDER BY partition_no DESC LIMIT 1",
      [tenantId],
    );
    await pool().query(
      "UPDATE tenant_totals SET points = points - 3 WHERE tenant_id = ? AND partition_no = ? AND account = 'member'",
      [tenantId, total!['partition_no']],
    );
    const tampered = found(await audit(tenantId));
    expect(tampered).toEqual([
      expect.objectContaining({
        kind: 'postings',
        partition: sqlInt(total!['partition_no']),
        field: 'member points',
      }),
    ]);
    const partitions = await partitionsOf(tenantId);
    await fc.assert(
      fc.asyncProperty(
        // Per partition: anywhere from the log's start to beyond its head, below or above the checkpoint.
        fc.tuple(...partitions.map(({ head }) => fc.integer({ min: 0, max: head + 3 }))),
        async (split) => {
          const report = await runAudit(pool(), store(), {
            tenantId,
            pageRows: 37,
            eventPageRows: 23,
            checkpointsAtStart: new Map(split.map((position, partition) => [partition, position])),
          });
          expect(found(report)).toEqual(tampered);
          expect(report.tenants[0]!.postings).toEqual(clean.tenants[0]!.postings);
        },
      ),
      {
        numRuns: 8,
        examples: [
          [partitions.map(() => 0)],
          [partitions.map(({ head }) => head)],
          [partitions.map(({ checkpoint }) => checkpoint)],
        ],
      },
    );
  });
});

describe('audit: per-store daily totals are proven against the ledger entries', () => {
  it('an edited total, a missing row, a forged row and a row moved to another day are each named', async () => {
    const tenantId = await projectedTenant();
    const days = await rows(
      `SELECT DATE_FORMAT(day, '%Y-%m-%d') AS day, store_id, partition_no FROM store_daily_totals WHERE tenant_id = ?
       ORDER BY day, store_id, partition_no`,
      [tenantId],
    );
    expect(days.length).toBeGreaterThan(4);
    const clean = await audit(tenantId);
    expect(found(clean)).toEqual([]);
    // Every local day (Asia/Shanghai, UTC+8) with a ledger entry or a row is compared.
    const [localDays] = await rows(
      `SELECT COUNT(*) AS n FROM (SELECT DATE(DATE_ADD(at, INTERVAL 8 HOUR)) AS day FROM ledger_entries WHERE tenant_id = ?
       UNION SELECT day FROM store_daily_totals WHERE tenant_id = ?) d`,
      [tenantId, tenantId],
    );
    expect(clean.tenants[0]!.storeDays).toBe(sqlInt(localDays!['n']));

    const key = (row: RowDataPacket) => [tenantId, String(row['day']), row['store_id'], row['partition_no']];
    const [edited, deleted, moved] = [days[0]!, days[1]!, days[days.length - 1]!];
    await pool().query(
      'UPDATE store_daily_totals SET redeemed_points = redeemed_points - 3 WHERE tenant_id = ? AND day = ? AND store_id = ? AND partition_no = ?',
      key(edited),
    );
    await pool().query(
      'DELETE FROM store_daily_totals WHERE tenant_id = ? AND day = ? AND store_id = ? AND partition_no = ?',
      key(deleted),
    );
    // A day long before the history, and a day after it: neither has ledger entries.
    await pool().query(
      `INSERT INTO store_daily_totals (tenant_id, day, store_id, partition_no, earned_points, redeemed_points, reversed_points, restored_points, movements)
       VALUES (?, '2001-02-03', 'forged-store', 0, 500, 0, 0, 0, 1)`,
      [tenantId],
    );
    await pool().query(
      'UPDATE store_daily_totals SET day = DATE_ADD(day, INTERVAL 40 DAY) WHERE tenant_id = ? AND day = ? AND store_id = ? AND partition_no = ?',
      key(moved),
    );
    const movedTo = String(
      (await rows(`SELECT DATE_FORMAT(DATE_ADD(?, INTERVAL 40 DAY), '%Y-%m-%d') AS day`, [moved['day']]))[0]![
        'day'
      ],
    );
    const discrepancies = found(await audit(tenantId)).filter((d) => d.table === 'store_daily_totals');
    const place = (row: RowDataPacket) => ({
      kind: 'read-model',
      table: 'store_daily_totals',
      partition: sqlInt(row['partition_no']),
    });
    expect(discrepancies).toContainEqual(
      expect.objectContaining({
        ...place(edited),
        field: `${String(edited['day'])} store ${String(edited['store_id'])} redeemed_points`,
        actual: expect.any(Number),
      }),
    );
    expect(discrepancies).toContainEqual(
      expect.objectContaining({
        ...place(deleted),
        field: `${String(deleted['day'])} store ${String(deleted['store_id'])}`,
        actual: null,
        detail: 'no row for a store and day with ledger entries',
      }),
    );
    expect(discrepancies).toContainEqual(
      expect.objectContaining({
        kind: 'read-model',
        table: 'store_daily_totals',
        partition: 0,
        field: '2001-02-03 store forged-store',
        expected: null,
        detail: 'a row for a store and day without ledger entries',
      }),
    );
    expect(discrepancies).toContainEqual(
      expect.objectContaining({
        ...place(moved),
        field: `${String(moved['day'])} store ${String(moved['store_id'])}`,
        actual: null,
      }),
    );
    expect(discrepancies).toContainEqual(
      expect.objectContaining({
        ...place(moved),
        field: `${movedTo} store ${String(moved['store_id'])}`,
        expected: null,
      }),
    );
    expect(discrepancies).toHaveLength(5);
  });
});

describe('audit: purchase categories and tags are proven against the events', () => {
  it('an edited count, a deleted tag, a moved tag expiry and a forged tag are each named; a rule change not yet applied is not a discrepancy', async () => {
    const tenantId = await projectedTenant();
    await setTagRules(pool(), tenantId, [
      { category: '*', minPurchases: 2, windowDays: 90, tagPattern: 'buys:{category}' },
    ]);
    await projectTenant(tenantId);
    expect(found(await audit(tenantId))).toEqual([]);
    const [category] = await rows(
      'SELECT member_id, category FROM member_category_purchases WHERE tenant_id = ? ORDER BY member_id, category LIMIT 1',
      [tenantId],
    );
    const tagged = await rows(
      'SELECT member_id, tag FROM member_tags WHERE tenant_id = ? ORDER BY member_id, tag',
      [tenantId],
    );
    expect(tagged.length).toBeGreaterThan(2);
    const [deleted, moved] = [tagged[0]!, tagged[tagged.length - 1]!];

    await pool().query(
      'UPDATE member_category_purchases SET purchases = purchases + 1 WHERE tenant_id = ? AND member_id = ? AND category = ?',
      [tenantId, category!['member_id'], category!['category']],
    );
    await pool().query('DELETE FROM member_tags WHERE tenant_id = ? AND member_id = ? AND tag = ?', [
      tenantId,
      deleted['member_id'],
      deleted['tag'],
    ]);
    await pool().query(
      'UPDATE member_tags SET expires_at = DATE_ADD(expires_at, INTERVAL 30 DAY) WHERE tenant_id = ? AND member_id = ? AND tag = ?',
      [tenantId, moved['member_id'], moved['tag']],
    );
    await pool().query(
      `INSERT INTO member_tags (tenant_id, member_id, tag, expires_at, updated_at)
       VALUES (?, ?, 'chronic:forged', '2099-01-01 00:00:00.000', UTC_TIMESTAMP(3))`,
      [tenantId, category!['member_id']],
    );
    const discrepancies = found(await audit(tenantId));
    expect(discrepancies).toContainEqual(
      expect.objectContaining({
        kind: 'read-model',
        memberId: String(category!['member_id']),
        table: 'member_category_purchases',
        field: `category ${String(category!['category'])} purchases`,
      }),
    );
    expect(discrepancies).toContainEqual(
      expect.objectContaining({
        memberId: String(deleted['member_id']),
        table: 'member_tags',
        field: `tag ${String(deleted['tag'])}`,
        actual: null,
      }),
    );
    expect(discrepancies).toContainEqual(
      expect.objectContaining({
        memberId: String(moved['member_id']),
        table: 'member_tags',
        field: `tag ${String(moved['tag'])} expires_at`,
      }),
    );
    expect(discrepancies).toContainEqual(
      expect.objectContaining({
        memberId: String(category!['member_id']),
        table: 'member_tags',
        field: 'tag chronic:forged',
        expected: null,
      }),
    );
    expect(discrepancies).toHaveLength(4);

    // New rules the projector has not applied yet: the tags are the old rules' until it has, by design.
    await pool().query('DELETE FROM member_tags WHERE tenant_id = ? AND tag = ?', [
      tenantId,
      'chronic:forged',
    ]);
    await setTagRules(pool(), tenantId, [
      { category: 'otc', minPurchases: 1, windowDays: 30, tagPattern: 'otc-buyer' },
    ]);
    expect(found(await audit(tenantId)).filter((d) => d.table === 'member_tags')).toEqual([]);
  });
});

describe('audit in several processes', () => {
  it('finds, names and counts the same discrepancies as one process, and reports every event to progress', async () => {
    const tenantId = await projectedTenant(40, 14);
    const target = await aStream(tenantId);
    await pool().query(
      `UPDATE events SET data = REPLACE(data, '"at":"', '"at":"1') WHERE tenant_id = ? AND stream_id = ? AND stream_version = 2`,
      [tenantId, target.streamId],
    );
    await pool().query(
      'UPDATE member_accounts SET balance = balance + 3 WHERE tenant_id = ? AND member_id <> ? LIMIT 2',
      [tenantId, target.memberId],
    );
    const progress = { chain: 0, member: 0 };
    const options = { tenantId, pageRows: 37, eventPageRows: 23, concurrency: 2 };
    const several = await runAudit(pool(), store(), {
      ...options,
      processes: 3,
      databaseUrl: database.current.url,
      onProgress: (p) => {
        progress.chain = p.chainEvents;
        progress.member = p.memberEvents;
      },
    });
    const one = await runAudit(pool(), store(), { ...options, processes: 1 });
    expect(several.processes).toBe(3);
    expect(one.processes).toBe(1);
    const key = (d: Discrepancy) => JSON.stringify(d);
    expect(found(several).map(key).sort()).toEqual(found(one).map(key).sort());
    expect(several.discrepancyCount).toBe(one.discrepancyCount);
    expect(found(several)).toContainEqual(
      expect.objectContaining({ kind: 'chain', streamId: target.streamId, streamVersion: 2 }),
    );
    expect(found(several).filter((d) => d.table === 'member_accounts' && d.field === 'balance')).toHaveLength(
      2,
    );
    expect({
      ...several,
      startedAt: '',
      finishedAt: '',
      durationMs: 0,
      eventsPerSecond: 0,
      processes: 0,
    }).toEqual({
      ...one,
      startedAt: '',
      finishedAt: '',
      durationMs: 0,
      eventsPerSecond: 0,
      processes: 0,
      tenants: [{ ...one.tenants[0]!, discrepancies: several.tenants[0]!.discrepancies }],
    });
    // The tenant stream's event is verified by neither pass's units (auditOtherStreams reads it).
    expect(progress.chain).toBe(several.events);
    expect(progress.member).toBe(several.events - 1);
  });
});

describe('audit and replay verbs', () => {
  let output = '';
  beforeEach(() => {
    output = '';
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      output += String(chunk);
      return true;
    });
    vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  });
  afterEach(() => vi.restoreAllMocks());
  const config = () => ({ ...loadConfig({}), databaseUrl: database.current.url });

  it('exit 0 clean (summary and --json), 1 with discrepancies, 2 when it cannot run', async () => {
    const tenantId = await projectedTenant(10, 10);
    expect(await auditVerb.run(['--tenant', tenantId], config())).toBe(0);
    expect(output).toContain('audit CLEAN');
    output = '';
    expect(await auditVerb.run(['--tenant', tenantId, '--json'], config())).toBe(0);
    expect((JSON.parse(output) as AuditReport).clean).toBe(true);

    const target = await aStream(tenantId, 3);
    await pool().query('UPDATE member_accounts SET tier = ? WHERE tenant_id = ? AND member_id = ?', [
      'platinum',
      tenantId,
      target.memberId,
    ]);
    output = '';
    expect(await auditVerb.run(['--tenant', tenantId], config())).toBe(1);
    expect(output).toContain(`member ${target.memberId}`);
    expect(output).toContain('field tier');

    expect(await auditVerb.run(['--tenant', 'no-such-tenant'], config())).toBe(2);
  });

  it('replay prints one line per event with the running balance and lots, and verifies the chain', async () => {
    const tenantId = await projectedTenant(5, 12);
    const target = await aStream(tenantId, 4);
    expect(await replayVerb.run(['--tenant', tenantId, '--member', target.memberId], config())).toBe(0);
    const lines = output.trim().split('\n');
    expect(lines).toHaveLength(target.last + 1);
    expect(lines[0]).toMatch(/^v1 \S+ MemberRegistered: - \| balance 0 held 0 available 0 \| lots: none$/);
    expect(lines.at(-1)).toBe(`hash chain verified to version ${target.last}`);
    const [account] = await rows(
      'SELECT balance FROM member_accounts WHERE tenant_id = ? AND member_id = ?',
      [tenantId, target.memberId],
    );
    expect(lines.at(-2)).toContain(`balance ${sqlInt(account!['balance'])} `);
  });
});
