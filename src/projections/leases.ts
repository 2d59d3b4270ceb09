/**
 * Partition leases: at most one owner writes a partition's read-model rows at a time. A lease is a row
 * (tenant, partition, owner, fencing_token, expires_at) with expiry measured on the database's clock, so
 * processes with skewed clocks agree. Taking a lease always raises the fencing token; every batch's
 * checkpoint UPDATE names the token, so a deposed owner (paused, partitioned away, or a crashed process
 * whose transaction is still open) cannot commit: its UPDATE matches nothing and it rolls back.
 */
import type { ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { sqlInt, sqlTimeToIso, type Pool } from '../db/pool.ts';

export const LEASE_SECONDS_DEFAULT = 15;
export const LEASE_SECONDS_MAX = 300;
/** A released lease expires at this instant: free at once. */
const RELEASED_AT = '1970-01-01 00:00:01.000';

export interface Lease {
  tenantId: string;
  partition: number;
  token: number;
}

export function leaseKey(tenantId: string, partition: number): string {
  return `${tenantId}\u001f${partition}`;
}

/** Lease rows exist for every partition of a tenant before anyone competes for them. */
export async function ensureLeaseRows(pool: Pool, tenantId: string, partitions: number): Promise<void> {
  const rows = Array.from({ length: partitions }, (_, partition) => [
    tenantId,
    partition,
    '',
    0,
    RELEASED_AT,
  ]);
  await pool.query(
    `INSERT IGNORE INTO projection_leases (tenant_id, partition_no, owner, fencing_token, expires_at)
     VALUES ${rows.map(() => '(?, ?, ?, ?, ?)').join(', ')}`,
    rows.flat(),
  );
}

/**
 * Takes the lease if it is free, expired, or already this owner's (a restarted process with the same id):
 * the token goes up either way, fencing out whatever an earlier holder still has in flight.
 */
export async function tryAcquireLease(
  pool: Pool,
  tenantId: string,
  partition: number,
  owner: string,
  leaseSeconds: number,
): Promise<Lease | null> {
  const [result] = await pool.query<ResultSetHeader>(
    `UPDATE projection_leases
     SET owner = ?, fencing_token = fencing_token + 1, expires_at = DATE_ADD(UTC_TIMESTAMP(3), INTERVAL ? SECOND)
     WHERE tenant_id = ? AND partition_no = ? AND (owner = '' OR owner = ? OR expires_at < UTC_TIMESTAMP(3))`,
    [owner, leaseSeconds, tenantId, partition, owner],
  );
  if (result.affectedRows === 0) return null;
  const [rows] = await pool.query<RowDataPacket[]>(
    'SELECT fencing_token FROM projection_leases WHERE tenant_id = ? AND partition_no = ? AND owner = ?',
    [tenantId, partition, owner],
  );
  if (rows[0] === undefined) return null;
  return { tenantId, partition, token: sqlInt(rows[0]['fencing_token']) };
}

/** Takes every lease row there is, whoever holds it (a rebuild's hand-over). Returns what it holds now. */
export async function seizeAllLeases(pool: Pool, owner: string, leaseSeconds: number): Promise<Lease[]> {
  await pool.query(
    `UPDATE projection_leases
     SET owner = ?, fencing_token = fencing_token + 1, expires_at = DATE_ADD(UTC_TIMESTAMP(3), INTERVAL ? SECOND)
     WHERE owner <> ?`,
    [owner, leaseSeconds, owner],
  );
  return leasesOf(pool, owner);
}

/** Extends every lease this owner still holds; returns them (a lease missing from the answer was lost). */
export async function renewLeases(pool: Pool, owner: string, leaseSeconds: number): Promise<Lease[]> {
  await pool.query(
    'UPDATE projection_leases SET expires_at = DATE_ADD(UTC_TIMESTAMP(3), INTERVAL ? SECOND) WHERE owner = ?',
    [leaseSeconds, owner],
  );
  return leasesOf(pool, owner);
}

export async function leasesOf(pool: Pool, owner: string): Promise<Lease[]> {
  const [rows] = await pool.query<RowDataPacket[]>(
    'SELECT tenant_id, partition_no, fencing_token FROM projection_leases WHERE owner = ?',
    [owner],
  );
  return rows.map((row) => ({
    tenantId: String(row['tenant_id']),
    partition: sqlInt(row['partition_no']),
    token: sqlInt(row['fencing_token']),
  }));
}

export async function releaseLease(pool: Pool, lease: Lease, owner: string): Promise<void> {
  await pool.query(
    `UPDATE projection_leases SET owner = '', expires_at = ?
     WHERE tenant_id = ? AND partition_no = ? AND owner = ? AND fencing_token = ?`,
    [RELEASED_AT, lease.tenantId, lease.partition, owner, lease.token],
  );
}

export async function releaseAllLeases(pool: Pool, owner: string): Promise<void> {
  await pool.query(`UPDATE projection_leases SET owner = '', expires_at = ? WHERE owner = ?`, [
    RELEASED_AT,
    owner,
  ]);
}

export interface LeaseRow {
  tenantId: string;
  partition: number;
  owner: string;
  token: number;
  expiresAt: string;
  live: boolean;
}

export async function listLeases(pool: Pool): Promise<LeaseRow[]> {
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT tenant_id, partition_no, owner, fencing_token, expires_at, expires_at > UTC_TIMESTAMP(3) AS live
     FROM projection_leases ORDER BY tenant_id, partition_no`,
  );
  return rows.map((row) => ({
    tenantId: String(row['tenant_id']),
    partition: sqlInt(row['partition_no']),
    owner: String(row['owner']),
    token: sqlInt(row['fencing_token']),
    expiresAt: sqlTimeToIso(String(row['expires_at'])),
    live: sqlInt(row['live']) === 1 && String(row['owner']) !== '',
  }));
}

// ---- projector processes -----------------------------------------------------------------------

/** Heartbeat of a projector process; returns how many live processes there are (itself included). */
export async function heartbeat(pool: Pool, owner: string, leaseSeconds: number): Promise<number> {
  await pool.query(
    `INSERT INTO projector_instances (owner, started_at, expires_at)
     VALUES (?, UTC_TIMESTAMP(3), DATE_ADD(UTC_TIMESTAMP(3), INTERVAL ? SECOND))
     ON DUPLICATE KEY UPDATE expires_at = VALUES(expires_at)`,
    [owner, leaseSeconds],
  );
  // Rows of processes gone for an hour are noise: drop them (any process may).
  await pool.query(
    'DELETE FROM projector_instances WHERE expires_at < DATE_SUB(UTC_TIMESTAMP(3), INTERVAL 1 HOUR)',
  );
  const [rows] = await pool.query<RowDataPacket[]>(
    'SELECT COUNT(*) AS live FROM projector_instances WHERE expires_at > UTC_TIMESTAMP(3)',
  );
  return Math.max(1, sqlInt(rows[0]?.['live']));
}

export async function leaveInstances(pool: Pool, owner: string): Promise<void> {
  await pool.query('DELETE FROM projector_instances WHERE owner = ?', [owner]);
}
