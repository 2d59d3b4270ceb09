/**
 * An independent fold of a tenant's events into the read models' content, and the same content read
 * from the tables, in one comparable shape: what invariant 5 says must be equal. It shares nothing with
 * the projector's batch code: member state comes from the domain's evolveMember, tags from each
 * category's full purchase history. Used by the projection tests and available to `ledger audit`
 * (its cost is a full read of the tenant's log and of its read models: for audits and tests, not hot paths).
 */
import type { RowDataPacket } from 'mysql2/promise';
import { memberIdOfStream } from '../commands/streams.ts';
import { sqlInt, sqlTimeToIso, type Pool } from '../db/pool.ts';
import {
  evolveMember,
  initialMemberState,
  movementsOf,
  postingsFor,
  STORE_MOVEMENT_KINDS,
  type MemberEvent,
  type MemberState,
} from '../domain/member/index.ts';
import { addDaysIso, localDate } from '../domain/time.ts';
import type { EventStore, RecordedEvent } from '../eventstore/port.ts';
import { LIVE_TABLES, type TableNames } from './tables.ts';
import { TAG_CATEGORY_ANY, tagName, type TagRule } from './tags.ts';

export interface ModelAccount {
  balance: number;
  held: number;
  tier: string;
  version: number;
  lastEventHash: string;
  lifetime: Record<string, number>;
}

export interface ReadModelContent {
  /** Up to this position per partition. */
  positions: Record<number, number>;
  accounts: Record<string, ModelAccount>;
  /** 'member/lot' -> 'remaining/points/expiresAt' */
  lots: Record<string, string>;
  /** 'member/hold' -> points */
  holds: Record<string, number>;
  /** 'member/version/movement' -> 'kind points balanceAfter entryId store order' */
  ledger: Record<string, string>;
  /** account -> points */
  totals: Record<string, number>;
  /** 'day/store' -> 'earned redeemed reversed restored' */
  storeDays: Record<string, string>;
  /** 'member/tag' -> expiresAt */
  tags: Record<string, string>;
}

const KINDS = ['earned', 'redeemed', 'expired', 'adjusted', 'reversed', 'restored'];

async function readWholeLog(
  store: EventStore,
  tenantId: string,
  upTo?: Record<number, number>,
): Promise<RecordedEvent[]> {
  const all: RecordedEvent[] = [];
  for (let partition = 0; partition < store.partitions; partition++) {
    let after = 0;
    const limit = upTo?.[partition] ?? Number.MAX_SAFE_INTEGER;
    for (;;) {
      const page = await store.readLog(tenantId, partition, after, 1000);
      for (const event of page) if (event.position <= limit) all.push(event);
      if (page.length < 1000 || page[page.length - 1]!.position >= limit) break;
      after = page[page.length - 1]!.position;
    }
  }
  return all;
}

/** The read models as a fresh replay of the log (up to `upTo` per partition, default everything) says they must be. */
export async function replayModel(
  store: EventStore,
  tenantId: string,
  options: { rules?: readonly TagRule[]; timeZone?: string; upTo?: Record<number, number> } = {},
): Promise<ReadModelContent> {
  const zone = options.timeZone ?? 'Asia/Shanghai';
  const events = await readWholeLog(store, tenantId, options.upTo);
  const byStream = new Map<string, RecordedEvent[]>();
  const positions: Record<number, number> = {};
  for (const event of events) {
    positions[event.partition] = Math.max(positions[event.partition] ?? 0, event.position);
    const list = byStream.get(event.streamId) ?? [];
    list.push(event);
    byStream.set(event.streamId, list);
  }
  const content: ReadModelContent = {
    positions,
    accounts: {},
    lots: {},
    holds: {},
    ledger: {},
    totals: {},
    storeDays: {},
    tags: {},
  };
  const add = (record: Record<string, number>, key: string, points: number) =>
    (record[key] = (record[key] ?? 0) + points);
  const storeDays: Record<string, number[]> = {};
  for (const [streamId, recorded] of byStream) {
    const memberId = memberIdOfStream(streamId);
    if (memberId === null) continue;
    recorded.sort((a, b) => a.streamVersion - b.streamVersion);
    let state: MemberState = initialMemberState();
    const lifetime: Record<string, number> = Object.fromEntries(KINDS.map((kind) => [kind, 0]));
    const purchases = new Map<string, string[]>();
    for (const entry of recorded) {
      const event = { type: entry.type, data: entry.data } as MemberEvent;
      state = evolveMember(state, event);
      movementsOf(event).forEach((movement, index) => {
        add(lifetime, movement.kind, movement.points);
        content.ledger[`${memberId}/${entry.streamVersion}/${index}`] = [
          movement.kind,
          movement.points,
          movement.balanceAfter,
          movement.suffix === '' ? entry.eventId : `${entry.eventId}:${movement.suffix}`,
          movement.storeId ?? '-',
          movement.orderId ?? '-',
        ].join(' ');
        if (
          movement.storeId !== undefined &&
          (STORE_MOVEMENT_KINDS as readonly string[]).includes(movement.kind)
        ) {
          const key = `${localDate(event.data.at, zone)}/${movement.storeId}`;
          const sums = (storeDays[key] ??= [0, 0, 0, 0]);
          sums[(STORE_MOVEMENT_KINDS as readonly string[]).indexOf(movement.kind)]! += movement.points;
        }
      });
      for (const posting of postingsFor(event)) add(content.totals, posting.account, posting.points);
      if (event.type === 'PurchaseRecorded') {
        for (const category of new Set(event.data.categories)) {
          const list = purchases.get(category) ?? [];
          list.push(event.data.at);
          purchases.set(category, list);
        }
      }
    }
    if (!state.registered) continue;
    const last = recorded[recorded.length - 1]!;
    content.accounts[memberId] = {
      balance: state.balance,
      held: state.holds.reduce((sum, hold) => sum + hold.points, 0),
      tier: state.tier,
      version: last.streamVersion,
      lastEventHash: last.streamHash,
      lifetime,
    };
    for (const lot of state.lots)
      content.lots[`${memberId}/${lot.lotId}`] = `${lot.remaining}/${lot.points}/${lot.expiresAt}`;
    for (const hold of state.holds) content.holds[`${memberId}/${hold.holdId}`] = hold.points;
    // Tags from the full history: at the latest purchase of the category, at least min purchases in the
    // window before it; the tag lasts until the min-th latest purchase leaves the window.
    for (const rule of options.rules ?? []) {
      for (const [category, times] of purchases) {
        if (rule.category !== TAG_CATEGORY_ANY && rule.category !== category) continue;
        const sorted = [...times].sort().reverse();
        const latest = sorted[0]!;
        const inWindow = sorted.filter((at) => addDaysIso(at, rule.windowDays) > latest);
        if (inWindow.length < rule.minPurchases) continue;
        const expiresAt = addDaysIso(sorted[rule.minPurchases - 1]!, rule.windowDays);
        const key = `${memberId}/${tagName(rule.tagPattern, category)}`;
        if (content.tags[key] === undefined || expiresAt > content.tags[key]) content.tags[key] = expiresAt;
      }
    }
  }
  for (const [key, sums] of Object.entries(storeDays)) content.storeDays[key] = sums.join(' ');
  for (const account of Object.keys(content.totals))
    if (content.totals[account] === 0) delete content.totals[account];
  return content;
}

/** The same content, read from the tables (live by default). */
export async function readModelContent(
  pool: Pool,
  tenantId: string,
  tables: TableNames = LIVE_TABLES,
): Promise<ReadModelContent> {
  const query = async (sql: string) => (await pool.query<RowDataPacket[]>(sql, [tenantId]))[0];
  const content: ReadModelContent = {
    positions: {},
    accounts: {},
    lots: {},
    holds: {},
    ledger: {},
    totals: {},
    storeDays: {},
    tags: {},
  };
  for (const row of await query(
    `SELECT partition_no, position FROM ${tables.projection_checkpoints} WHERE tenant_id = ?`,
  )) {
    if (sqlInt(row['position']) > 0) content.positions[sqlInt(row['partition_no'])] = sqlInt(row['position']);
  }
  for (const row of await query(`SELECT * FROM ${tables.member_accounts} WHERE tenant_id = ?`)) {
    content.accounts[String(row['member_id'])] = {
      balance: sqlInt(row['balance']),
      held: sqlInt(row['held']),
      tier: String(row['tier']),
      version: sqlInt(row['version']),
      lastEventHash: String(row['last_event_hash']),
      lifetime: Object.fromEntries(KINDS.map((kind) => [kind, sqlInt(row[`${kind}_points`])])),
    };
  }
  for (const row of await query(`SELECT * FROM ${tables.member_lots} WHERE tenant_id = ?`)) {
    content.lots[`${String(row['member_id'])}/${String(row['lot_id'])}`] =
      `${sqlInt(row['remaining'])}/${sqlInt(row['points'])}/${sqlTimeToIso(String(row['expires_at']))}`;
  }
  for (const row of await query(`SELECT * FROM ${tables.member_holds} WHERE tenant_id = ?`)) {
    content.holds[`${String(row['member_id'])}/${String(row['hold_id'])}`] = sqlInt(row['points']);
  }
  for (const row of await query(`SELECT * FROM ${tables.ledger_entries} WHERE tenant_id = ?`)) {
    content.ledger[
      `${String(row['member_id'])}/${sqlInt(row['stream_version'])}/${sqlInt(row['movement_no'])}`
    ] = [
      String(row['kind']),
      sqlInt(row['points']),
      sqlInt(row['balance_after']),
      String(row['entry_id']),
      row['store_id'] === null ? '-' : String(row['store_id']),
      row['order_id'] === null ? '-' : String(row['order_id']),
    ].join(' ');
  }
  for (const row of await query(
    `SELECT account, SUM(points) AS points FROM ${tables.tenant_totals} WHERE tenant_id = ? GROUP BY account`,
  )) {
    if (sqlInt(row['points']) !== 0) content.totals[String(row['account'])] = sqlInt(row['points']);
  }
  for (const row of await query(
    `SELECT day, store_id, SUM(earned_points) AS e, SUM(redeemed_points) AS r, SUM(reversed_points) AS v, SUM(restored_points) AS s
     FROM ${tables.store_daily_totals} WHERE tenant_id = ? GROUP BY day, store_id`,
  )) {
    content.storeDays[`${String(row['day'])}/${String(row['store_id'])}`] = [
      row['e'],
      row['r'],
      row['v'],
      row['s'],
    ]
      .map(sqlInt)
      .join(' ');
  }
  for (const row of await query(
    `SELECT member_id, tag, expires_at FROM ${tables.member_tags} WHERE tenant_id = ?`,
  )) {
    content.tags[`${String(row['member_id'])}/${String(row['tag'])}`] = sqlTimeToIso(
      String(row['expires_at']),
    );
  }
  return content;
}
