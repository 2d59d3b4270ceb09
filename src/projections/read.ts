/**
 * Reads of the read models in the shapes of CONTRACT.md (member view, ledger page) and for finance and
 * audit (tenant account totals, per-store days). Every query names the tenant. Each read is one
 * statement where it can be, so it sees one committed state of the projector.
 */
import type { RowDataPacket } from 'mysql2/promise';
import { isoToSqlTime, sqlInt, sqlTimeToIso, type Pool } from '../db/pool.ts';
import { phoneSha256 } from './fold.ts';
import { LIVE_TABLES as T } from './tables.ts';
import { memberTags } from './tags.ts';

/** Expiry groups shown in a member view. */
export const MEMBER_VIEW_EXPIRING_MAX = 24;
export const LEDGER_PAGE_ENTRIES_MAX = 500;
export const LEDGER_PAGE_ENTRIES_DEFAULT = 100;

export interface MemberView {
  memberId: string;
  tenantId: string;
  phone: string;
  tier: string;
  points: { balance: number; held: number; available: number };
  expiring: { points: number; expiresAt: string }[];
  tags: string[];
  version: number;
}

/** The contract's member view as of `now` (holds and tags count while they have not expired), or null. */
export async function readMemberView(
  pool: Pool,
  tenantId: string,
  memberId: string,
  now: string,
): Promise<MemberView | null> {
  const nowSql = isoToSqlTime(now);
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT a.phone_masked, a.tier, a.balance, a.version,
       (SELECT COALESCE(SUM(h.points), 0) FROM ${T.member_holds} h
        WHERE h.tenant_id = a.tenant_id AND h.member_id = a.member_id AND h.expires_at > ?) AS held
     FROM ${T.member_accounts} a WHERE a.tenant_id = ? AND a.member_id = ?`,
    [nowSql, tenantId, memberId],
  );
  const account = rows[0];
  if (account === undefined) return null;
  const [lots] = await pool.query<RowDataPacket[]>(
    `SELECT expires_at, SUM(remaining) AS points FROM ${T.member_lots}
     WHERE tenant_id = ? AND member_id = ? GROUP BY expires_at ORDER BY expires_at LIMIT ?`,
    [tenantId, memberId, MEMBER_VIEW_EXPIRING_MAX],
  );
  const balance = sqlInt(account['balance']);
  const held = sqlInt(account['held']);
  return {
    memberId,
    tenantId,
    phone: String(account['phone_masked']),
    tier: String(account['tier']),
    points: { balance, held, available: balance - held },
    expiring: lots.map((lot) => ({
      points: sqlInt(lot['points']),
      expiresAt: sqlTimeToIso(String(lot['expires_at'])),
    })),
    tags: await memberTags(pool, tenantId, memberId, now),
    version: sqlInt(account['version']),
  };
}

/** The member id registered with a normalised phone (the read model keeps only its sha256). */
export async function findMemberIdByPhone(
  pool: Pool,
  tenantId: string,
  normalizedPhone: string,
): Promise<string | null> {
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT member_id FROM ${T.member_accounts} WHERE tenant_id = ? AND phone_sha256 = ? LIMIT 1`,
    [tenantId, phoneSha256(normalizedPhone)],
  );
  return rows[0] === undefined ? null : String(rows[0]['member_id']);
}

export interface LedgerEntry {
  entryId: string;
  at: string;
  kind: string;
  points: number;
  balanceAfter: number;
  orderId?: string;
  storeId?: string;
  reason?: string;
}

export interface LedgerPage {
  entries: LedgerEntry[];
  /** Opaque: pass back as `cursor` for the next page; null at the end. */
  nextCursor: string | null;
}

/** A member's ledger in stream order; from/to filter the recording time [from, to). */
export async function readLedgerPage(
  pool: Pool,
  tenantId: string,
  memberId: string,
  options: { from?: string; to?: string; limit?: number; cursor?: string | null } = {},
): Promise<LedgerPage> {
  const limit = Math.max(1, Math.min(options.limit ?? LEDGER_PAGE_ENTRIES_DEFAULT, LEDGER_PAGE_ENTRIES_MAX));
  const [afterVersion, afterMovement] = decodeCursor(options.cursor ?? null);
  const conditions = [
    'tenant_id = ?',
    'member_id = ?',
    '(stream_version > ? OR (stream_version = ? AND movement_no > ?))',
  ];
  const params: unknown[] = [tenantId, memberId, afterVersion, afterVersion, afterMovement];
  if (options.from !== undefined) {
    conditions.push('at >= ?');
    params.push(isoToSqlTime(options.from));
  }
  if (options.to !== undefined) {
    conditions.push('at < ?');
    params.push(isoToSqlTime(options.to));
  }
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT stream_version, movement_no, entry_id, at, kind, points, balance_after, order_id, store_id, reason
     FROM ${T.ledger_entries} WHERE ${conditions.join(' AND ')} ORDER BY stream_version, movement_no LIMIT ?`,
    [...params, limit + 1],
  );
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  return {
    entries: page.map((row) => ({
      entryId: String(row['entry_id']),
      at: sqlTimeToIso(String(row['at'])),
      kind: String(row['kind']),
      points: sqlInt(row['points']),
      balanceAfter: sqlInt(row['balance_after']),
      ...(row['order_id'] === null ? {} : { orderId: String(row['order_id']) }),
      ...(row['store_id'] === null ? {} : { storeId: String(row['store_id']) }),
      ...(row['reason'] === null ? {} : { reason: String(row['reason']) }),
    })),
    nextCursor:
      rows.length > limit && last !== undefined
        ? `${sqlInt(last['stream_version'])}.${sqlInt(last['movement_no'])}`
        : null,
  };
}

function decodeCursor(cursor: string | null): [number, number] {
  if (cursor === null || cursor === '') return [0, -1];
  const match = /^(\d{1,10})\.(\d{1,3})$/.exec(cursor);
  if (match === null) throw new RangeError('bad ledger cursor');
  return [Number(match[1]), Number(match[2])];
}

/** Sum of postings per account over the tenant's partitions; they add up to zero (invariant 3). */
export async function readTenantTotals(pool: Pool, tenantId: string): Promise<Record<string, number>> {
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT account, SUM(points) AS points FROM ${T.tenant_totals} WHERE tenant_id = ? GROUP BY account ORDER BY account`,
    [tenantId],
  );
  return Object.fromEntries(rows.map((row) => [String(row['account']), sqlInt(row['points'])]));
}

export interface StoreTotals {
  storeId: string;
  earned: number;
  redeemed: number;
  reversed: number;
  restored: number;
}

/** Per-store signed movements over local days [fromDay, toDay) in the tenant's zone. */
export async function readStoreTotals(
  pool: Pool,
  tenantId: string,
  fromDay: string,
  toDay: string,
): Promise<StoreTotals[]> {
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT store_id, SUM(earned_points) AS earned, SUM(redeemed_points) AS redeemed, SUM(reversed_points) AS reversed,
       SUM(restored_points) AS restored
     FROM ${T.store_daily_totals} WHERE tenant_id = ? AND day >= ? AND day < ? GROUP BY store_id ORDER BY store_id`,
    [tenantId, fromDay, toDay],
  );
  return rows.map((row) => ({
    storeId: String(row['store_id']),
    earned: sqlInt(row['earned']),
    redeemed: sqlInt(row['redeemed']),
    reversed: sqlInt(row['reversed']),
    restored: sqlInt(row['restored']),
  }));
}
