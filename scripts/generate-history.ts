/**
 * A deterministic history generator: members, stores, purchases (with categories, insurance, late
 * uploads), holds captured or released, redemptions, partial and full refunds (including refunds that
 * push a member into debt), adjustments, tier changes and expiry runs, over three simulated years.
 *
 * Realism over speed: every event comes from the domain decider (decideMember / evolveMember), so the
 * history obeys every rule the live ledger does. Events are written straight through SqlEventStore, a
 * member's events in appends of up to APPEND_CHUNK_EVENTS (100) at a time (data.at carries the simulated
 * time; the append's metadata.recordedAt is the first event's). Same seed, same options -> the same events,
 * whatever the concurrency (each member has its own PRNG seeded from (seed, member index)).
 *
 *   npx tsx scripts/generate-history.ts [--events 1000000] [--members 20000] [--seed 42] [--tenant bench]
 */
import { pathToFileURL } from 'node:url';
import { memberStreamId, TENANT_STREAM_ID } from '../src/commands/streams.ts';
import { openPool } from '../src/db/pool.ts';
import { migrate } from '../src/db/migrate.ts';
import { defaultProgramme } from '../src/domain/programme.ts';
import { decideMember, evolveMember, initialMemberState } from '../src/domain/member/decider.ts';
import type {
  MemberCommand,
  MemberContext,
  MemberEvent,
  MemberState,
  TenantContext,
} from '../src/domain/member/index.ts';
import { decideTenant, initialTenantState } from '../src/domain/tenant/index.ts';
import { addDaysIso, addSecondsIso, isoToMs, msToIso } from '../src/domain/time.ts';
import type { EventStore, NewEvent } from '../src/eventstore/port.ts';
import { SqlEventStore } from '../src/eventstore/sql/sql-event-store.ts';
import { derivedId } from '../src/ids.ts';

export const APPEND_CHUNK_EVENTS = 100;
const SIM_START = '2023-01-02T01:00:00.000Z';
const SIM_DAYS = 3 * 365;
export const CATEGORIES = [
  'otc',
  'rx',
  'diabetes',
  'hypertension',
  'vitamins',
  'baby',
  'beauty',
  'devices',
  'tcm',
  'personal-care',
];

/** mulberry32: small, fast, good enough for test data, and the same on every machine. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface HistoryOptions {
  tenantId: string;
  seed: number;
  members: number;
  /** Mean events per member (the actual count varies per member). */
  eventsPerMember: number;
  stores: number;
  /** Members generated and appended at once. */
  concurrency?: number;
  /** Member index to start from (to add members to an existing tenant). */
  firstMember?: number;
  onMember?: (events: number) => void;
  /** Registers the tenant stream first (TenantCreated, Asia/Shanghai). Default true. */
  createTenant?: boolean;
}

export interface GeneratedMember {
  memberId: string;
  events: MemberEvent[];
}

function tenantContext(tenantId: string): TenantContext {
  return { tenantId, timeZone: 'Asia/Shanghai', programme: defaultProgramme() };
}

/**
 * One member's whole history, decided command by command at increasing simulated times. Commands the
 * decider rejects (insufficient points, refund exceeding the order...) are simply skipped, as a till would.
 */
export function simulateMember(
  options: Pick<HistoryOptions, 'tenantId' | 'seed' | 'eventsPerMember' | 'stores'>,
  index: number,
): GeneratedMember {
  const random = prng((options.seed * 1_000_003 + index * 7919) >>> 0);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const int = (min: number, max: number) => min + Math.floor(random() * (max - min + 1));
  const memberId = derivedId('sim-member', String(options.seed), String(index));
  const tenant = tenantContext(options.tenantId);
  const homeStore = `store-${int(1, options.stores)}`;
  const favourite = [pick(CATEGORIES), pick(CATEGORIES)];
  const events: MemberEvent[] = [];
  let state: MemberState = initialMemberState();
  let now = addSecondsIso(SIM_START, int(0, 200 * 86_400));
  let ids = 0;
  const id = (kind: string) => `${kind}-${index}-${(ids += 1)}`;
  const run = (command: MemberCommand, at: string = now): boolean => {
    const ctx: MemberContext = { now: at, tenant, actor: 'sim' };
    const decision = decideMember(command, state, ctx);
    if (!decision.ok) return false;
    for (const event of decision.events) {
      state = evolveMember(state, event);
      events.push(event);
    }
    return true;
  };
  const available = () =>
    state.registered
      ? state.balance - state.holds.filter((h) => h.expiresAt > now).reduce((s, h) => s + h.points, 0)
      : 0;
  const purchases: { orderId: string; totalFen: number; refundedFen: number; at: string }[] = [];

  run({
    type: 'RegisterMember',
    data: {
      memberId,
      phone: `+86139${String(index).padStart(8, '0')}`,
      storeId: homeStore,
      channel: pick(['store', 'wechat', 'app', 'o2o', 'b2c'] as const),
    },
  });
  const target = Math.max(2, Math.round(options.eventsPerMember * (0.5 + random())));
  const endMs = isoToMs(addDaysIso(SIM_START, SIM_DAYS));
  let lastExpiryRun = now;
  for (let step = 0; events.length < target && step < target * 4; step++) {
    // Purchases every few days to weeks; a few members are heavy buyers.
    const gapSeconds = int(3_600, Math.round((SIM_DAYS * 86_400 * 2) / target));
    const nextMs = isoToMs(now) + gapSeconds * 1000;
    if (nextMs >= endMs) break;
    now = msToIso(nextMs);
    const store = random() < 0.8 ? homeStore : `store-${int(1, options.stores)}`;
    if (isoToMs(now) - isoToMs(lastExpiryRun) > 60 * 86_400 * 1000) {
      lastExpiryRun = now;
      run({ type: 'ExpireLots', data: { asOf: now } });
    }
    const roll = random();
    if (roll < 0.55) {
      const orderId = id('o');
      const lines = Array.from({ length: int(1, 4) }, () => {
        const category = random() < 0.6 ? pick(favourite) : pick(CATEGORIES);
        const amountFen = int(500, 60_000);
        return {
          sku: `sku-${category}-${int(1, 50)}`,
          category,
          quantity: int(1, 3),
          amountFen,
          ...(category === 'rx' && random() < 0.5 ? { insuranceFen: Math.floor(amountFen * random()) } : {}),
        };
      });
      // A checkout may redeem points first: hold at the till, then capture or release, then the purchase.
      const spend = available();
      if (spend > 200 && random() < 0.25) {
        const holdId = id('h');
        if (run({ type: 'PlaceHold', data: { holdId, orderId, storeId: store, points: int(100, spend) } })) {
          const later = addSecondsIso(now, int(30, 600));
          if (random() < 0.75) run({ type: 'CaptureHold', data: { holdId } }, later);
          else if (random() < 0.6) run({ type: 'ReleaseHold', data: { holdId } }, later);
          // else: the hold simply expires, and a later command releases it.
          now = addSecondsIso(later, 30);
        }
      } else if (spend > 100 && random() < 0.1) {
        run({ type: 'RedeemPoints', data: { orderId, storeId: store, points: int(50, spend) } });
        now = addSecondsIso(now, 30);
      }
      if (run({ type: 'RecordPurchase', data: { orderId, storeId: store, lines, lotId: id('lot') } })) {
        purchases.push({
          orderId,
          totalFen: lines.reduce((s, l) => s + l.amountFen, 0),
          refundedFen: 0,
          at: now,
        });
      }
    } else if (roll < 0.65 && purchases.length > 0) {
      const order = purchases[purchases.length - 1 - Math.min(purchases.length - 1, int(0, 3))]!;
      const left = order.totalFen - order.refundedFen;
      if (left > 0) {
        const amountFen = random() < 0.5 ? left : int(1, left);
        // The refund may happen at another store.
        if (
          run({
            type: 'RefundPurchase',
            data: { refundId: id('r'), orderId: order.orderId, storeId: store, amountFen, lotId: id('lot') },
          })
        ) {
          order.refundedFen += amountFen;
        }
      }
    } else if (roll < 0.72 && available() > 50) {
      run({ type: 'RedeemPoints', data: { orderId: id('o'), storeId: store, points: int(10, available()) } });
    } else if (roll < 0.75) {
      const credit = random() < 0.7;
      const points = credit ? int(10, 500) : -int(1, Math.max(1, Math.min(500, available())));
      run({
        type: 'AdjustPoints',
        data: {
          adjustmentId: id('a'),
          points,
          reason: credit ? 'goodwill' : 'correction',
          actor: 'support-1',
          lotId: id('lot'),
        },
      });
    } else if (roll < 0.76) {
      run({ type: 'UpdateProfile', data: { name: `Member ${index} ${ids}` } });
    } else {
      // A quiet stretch: nothing happens.
    }
  }
  return { memberId, events };
}

function toNewEvents(
  tenantId: string,
  streamId: string,
  firstVersion: number,
  events: readonly MemberEvent[],
): NewEvent[] {
  const recordedAt = events[0]!.data.at;
  return events.map((event, index) => ({
    eventId: derivedId(tenantId, streamId, String(firstVersion + index)),
    type: event.type,
    data: event.data,
    metadata: { tenantId, recordedAt, actor: 'generator' },
  }));
}

/** Appends one member's events in chunks of APPEND_CHUNK_EVENTS. */
export async function appendMember(
  store: EventStore,
  tenantId: string,
  member: GeneratedMember,
): Promise<void> {
  const streamId = memberStreamId(member.memberId);
  for (let offset = 0; offset < member.events.length; offset += APPEND_CHUNK_EVENTS) {
    const chunk = member.events.slice(offset, offset + APPEND_CHUNK_EVENTS);
    await store.append({
      tenantId,
      streamId,
      expectedVersion: offset === 0 ? 'no-stream' : offset,
      events: toNewEvents(tenantId, streamId, offset + 1, chunk),
    });
  }
}

export async function createTenantStream(store: EventStore, tenantId: string): Promise<void> {
  const at = '2023-01-01T00:00:00.000Z';
  const decision = decideTenant(
    { type: 'CreateTenant', data: { tenantId, timeZone: 'Asia/Shanghai' } },
    initialTenantState(),
    { now: at },
  );
  if (!decision.ok) throw new Error(`tenant: ${decision.error.detail}`);
  await store.append({
    tenantId,
    streamId: TENANT_STREAM_ID,
    expectedVersion: 'no-stream',
    events: decision.events.map((event, index) => ({
      eventId: derivedId(tenantId, TENANT_STREAM_ID, String(index + 1)),
      type: event.type,
      data: event.data,
      metadata: { tenantId, recordedAt: at },
    })),
  });
}

/** Generates and appends members [firstMember, firstMember + members); returns the events written. */
export async function generateHistory(store: EventStore, options: HistoryOptions): Promise<number> {
  if (options.createTenant !== false) await createTenantStream(store, options.tenantId);
  const first = options.firstMember ?? 0;
  let next = first;
  let written = 0;
  const worker = async () => {
    while (next < first + options.members) {
      const member = simulateMember(options, next++);
      await appendMember(store, options.tenantId, member);
      written += member.events.length;
      options.onMember?.(member.events.length);
    }
  };
  await Promise.all(Array.from({ length: options.concurrency ?? 8 }, worker));
  return written;
}

function argument(name: string, fallback: string): string {
  const index = process.argv.indexOf(`--${name}`);
  return index === -1 ? fallback : (process.argv[index + 1] ?? fallback);
}

async function main(): Promise<void> {
  const url = process.env['LEDGER_DATABASE_URL'] ?? 'mysql://root@127.0.0.1:3306/points_ledger_bench';
  const events = Number(argument('events', '1000000'));
  const members = Number(argument('members', String(Math.ceil(events / 50))));
  const pool = await openPool(url, 20);
  await migrate(pool);
  const store = new SqlEventStore(pool);
  const started = Date.now();
  const written = await generateHistory(store, {
    tenantId: argument('tenant', 'bench'),
    seed: Number(argument('seed', '42')),
    members,
    eventsPerMember: events / members,
    stores: 6000,
  });
  console.log(
    `generated ${written} events for ${members} members in ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
  await pool.end();
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
