import type { RowDataPacket } from 'mysql2/promise';
import { Registry, Gauge } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { generateHistory, simulateMember, appendMember } from '../../scripts/generate-history.ts';
import { useTestDatabase } from '../../test/helpers/database.ts';
import { memberStreamId } from '../commands/streams.ts';
import {
  decideMember,
  evolveMember,
  initialMemberState,
  type MemberCommand,
  type MemberEvent,
  type MemberState,
} from '../domain/member/index.ts';
import { defaultProgramme } from '../domain/programme.ts';
import { SqlEventStore } from '../eventstore/sql/sql-event-store.ts';
import { derivedId } from '../ids.ts';
import { readTenantTotals } from './read.ts';
import { readModelContent, replayModel } from './replay-model.ts';
import { Projector } from './runtime.ts';
import { projectionStatus, updateProjectionLagGauge } from './status.ts';
import { memberTags, setTagRules, type TagRule } from './tags.ts';

const database = useTestDatabase();
const store = () => new SqlEventStore(database.current.pool);
const quiet = { onError: (error: unknown) => console.error(error) };

const RULES: TagRule[] = [
  { category: 'diabetes', minPurchases: 2, windowDays: 90, tagPattern: 'chronic:{category}' },
  { category: 'hypertension', minPurchases: 2, windowDays: 90, tagPattern: 'chronic:{category}' },
  { category: '*', minPurchases: 4, windowDays: 120, tagPattern: 'regular:{category}' },
];

/** A member driven through the decider at explicit times, appended event by event decision. */
class Member {
  state: MemberState = initialMemberState();
  version = 0;
  constructor(
    readonly tenantId: string,
    readonly memberId: string,
  ) {}

  async run(now: string, command: MemberCommand): Promise<MemberEvent[]> {
    const decision = decideMember(command, this.state, {
      now,
      tenant: { tenantId: this.tenantId, timeZone: 'Asia/Shanghai', programme: defaultProgramme() },
    });
    if (!decision.ok) throw new Error(`${command.type}: ${decision.error.detail}`);
    if (decision.events.length === 0) return [];
    const streamId = memberStreamId(this.memberId);
    await store().append({
      tenantId: this.tenantId,
      streamId,
      expectedVersion: this.version === 0 ? 'no-stream' : this.version,
      events: decision.events.map((event, index) => ({
        eventId: derivedId(this.tenantId, streamId, String(this.version + index + 1)),
        type: event.type,
        data: event.data,
        metadata: { tenantId: this.tenantId, recordedAt: now },
      })),
    });
    for (const event of decision.events) this.state = evolveMember(this.state, event);
    this.version += decision.events.length;
    return decision.events;
  }
}

describe('projector: read models equal a fresh replay', () => {
  it('projects a varied decider-made history exactly (balances, lots, holds, ledger, totals, store days, tags)', async () => {
    const tenantId = 'replay';
    const pool = database.current.pool;
    await setTagRules(pool, tenantId, RULES);
    const written = await generateHistory(store(), {
      tenantId,
      seed: 7,
      members: 60,
      eventsPerMember: 40,
      stores: 12,
    });
    expect(written).toBeGreaterThan(1500);

    const projector = new Projector(pool, store(), { owner: 'replay-1', batchEvents: 97, ...quiet });
    const result = await projector.runOnce();
    expect(result.events).toBe(written + 1); // + TenantCreated on the tenant stream

    const expected = await replayModel(store(), tenantId, { rules: RULES });
    const actual = await readModelContent(pool, tenantId);
    expect(actual).toEqual(expected);

    // The history really is varied: every kind of movement, debt and tags occur.
    const kinds = new Set(Object.values(expected.ledger).map((entry) => entry.split(' ')[0]));
    expect([...kinds].sort()).toEqual(['adjusted', 'earned', 'expired', 'redeemed', 'restored', 'reversed']);
    expect(Object.keys(expected.tags).length).toBeGreaterThan(0);
    expect(Object.keys(expected.holds).length + Object.keys(expected.lots).length).toBeGreaterThan(0);
    const totals = await readTenantTotals(pool, tenantId);
    expect(Object.values(totals).reduce((sum, points) => sum + points, 0)).toBe(0);

    // A second run finds nothing to do and changes nothing.
    expect((await projector.runOnce()).events).toBe(0);
    expect(await readModelContent(pool, tenantId)).toEqual(expected);
  });

  it('keeps the account, ledger entries and real-time tags of a member', async () => {
    const tenantId = 'views';
    const pool = database.current.pool;
    await setTagRules(pool, tenantId, RULES);
    const member = new Member(tenantId, 'm-view');
    const projector = new Projector(pool, store(), { owner: 'views-1', ...quiet });
    const line = (category: string, amountFen: number) => ({
      sku: `sku-${category}`,
      category,
      quantity: 1,
      amountFen,
    });
    await member.run('2026-01-05T02:00:00.000Z', {
      type: 'RegisterMember',
      data: { memberId: 'm-view', phone: '13812345678', storeId: 's1', channel: 'store' },
    });
    await member.run('2026-01-05T03:00:00.000Z', {
      type: 'RecordPurchase',
      data: { orderId: 'o1', storeId: 's1', lines: [line('diabetes', 50_000)], lotId: 'lot-1' },
    });
    await projector.runOnce();
    expect(await memberTags(pool, tenantId, 'm-view', '2026-01-06T00:00:00.000Z')).toEqual([]);

    await member.run('2026-02-01T03:00:00.000Z', {
      type: 'RecordPurchase',
      data: {
        orderId: 'o2',
        storeId: 's2',
        lines: [line('diabetes', 30_000), line('otc', 1_000)],
        lotId: 'lot-2',
      },
    });
    await member.run('2026-02-01T03:05:00.000Z', {
      type: 'PlaceHold',
      data: { holdId: 'h1', orderId: 'o3', storeId: 's2', points: 300 },
    });
    await projector.runOnce();
    // Bought twice within 90 days: tagged until 90 days after the first of the two.
    expect(await memberTags(pool, tenantId, 'm-view', '2026-02-02T00:00:00.000Z')).toEqual([
      'chronic:diabetes',
    ]);
    expect(await memberTags(pool, tenantId, 'm-view', '2026-04-05T03:00:00.000Z')).toEqual([]);

    // The account row as the projector left it; the hold is in member_holds until an event ends it.
    const [accounts] = await pool.query<RowDataPacket[]>(
      'SELECT phone_masked, tier, balance, held, version FROM member_accounts WHERE tenant_id = ? AND member_id = ?',
      [tenantId, 'm-view'],
    );
    expect(accounts[0]).toMatchObject({
      phone_masked: '+86138****5678',
      tier: 'standard',
      balance: 810,
      held: 300,
      version: 4,
    });

    await member.run('2026-02-01T03:06:00.000Z', {
      type: 'CaptureHold',
      data: { holdId: 'h1', points: 200 },
    });
    await member.run('2026-02-03T03:00:00.000Z', {
      type: 'RefundPurchase',
      data: { refundId: 'r1', orderId: 'o2', storeId: 's1', amountFen: 31_000, lotId: 'lot-r1' },
    });
    await projector.runOnce();
    const [entries] = await pool.query<RowDataPacket[]>(
      'SELECT kind, points, balance_after, store_id FROM ledger_entries WHERE tenant_id = ? AND member_id = ? ORDER BY stream_version, movement_no',
      [tenantId, 'm-view'],
    );
    expect(entries.map((e) => [e['kind'], e['points'], e['balance_after'], e['store_id']])).toEqual([
      ['earned', 500, 500, 's1'],
      ['earned', 310, 810, 's2'],
      ['redeemed', -200, 610, 's2'],
      ['reversed', -310, 300, 's1'],
    ]);
    expect(await readModelContent(pool, tenantId)).toEqual(
      await replayModel(store(), tenantId, { rules: RULES }),
    );
  });

  it('re-derives existing tags after a rule change, without replaying events', async () => {
    const tenantId = 'rules';
    const pool = database.current.pool;
    await generateHistory(store(), { tenantId, seed: 11, members: 30, eventsPerMember: 30, stores: 5 });
    const projector = new Projector(pool, store(), { owner: 'rules-1', ...quiet });
    await projector.runOnce();
    expect((await readModelContent(pool, tenantId)).tags).toEqual({});

    await setTagRules(pool, tenantId, RULES);
    await projector.runOnce();
    const withRules = await readModelContent(pool, tenantId);
    expect(Object.keys(withRules.tags).length).toBeGreaterThan(0);
    expect(withRules).toEqual(await replayModel(store(), tenantId, { rules: RULES }));

    const fewer = [RULES[0]!];
    await setTagRules(pool, tenantId, fewer);
    await projector.runOnce();
    expect(await readModelContent(pool, tenantId)).toEqual(
      await replayModel(store(), tenantId, { rules: fewer }),
    );
  });

  it('reports lag per partition and sets the Prometheus gauge', async () => {
    const tenantId = 'lag';
    const pool = database.current.pool;
    const member = simulateMember({ tenantId, seed: 3, eventsPerMember: 30, stores: 3 }, 0);
    await appendMember(store(), tenantId, member);
    const before = (await projectionStatus(pool, store())).partitions.filter((p) => p.tenantId === tenantId);
    expect(before.reduce((sum, p) => sum + p.lag, 0)).toBe(member.events.length);

    const registry = new Registry();
    const gauge = new Gauge({
      name: 'ledger_projection_lag_events',
      help: 'lag',
      labelNames: ['tenant', 'partition'] as const,
      registers: [registry],
    });
    await updateProjectionLagGauge(gauge, pool, store());
    const text = await registry.metrics();
    expect(text).toMatch(
      new RegExp(
        `ledger_projection_lag_events\\{tenant="${tenantId}",partition="\\d+"\\} ${member.events.length}`,
      ),
    );

    await new Projector(pool, store(), { owner: 'lag-1', ...quiet }).runOnce();
    const after = (await projectionStatus(pool, store())).partitions.filter((p) => p.tenantId === tenantId);
    expect(after.every((p) => p.lag === 0)).toBe(true);
    const [rows] = await pool.query<RowDataPacket[]>(
      'SELECT COUNT(*) AS n FROM projection_leases WHERE owner <> ?',
      [''],
    );
    expect(Number(rows[0]!['n'])).toBe(0); // runOnce gives its leases back
  });
});
