/**
 * Reads of the read models for finance and audit (tenant account totals, per-store days). Member views and
 * ledger pages are served from the command side (src/queries/members.ts), never from here, so a till
 * reads its own writes. Every query names the tenant.
 */
import type { RowDataPacket } from 'mysql2/promise';
import { sqlInt, type Pool } from '../db/pool.ts';
import { LIVE_TABLES as T } from './tables.ts';

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
