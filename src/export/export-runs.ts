import type { RowDataPacket } from 'mysql2/promise';
import { isoToSqlTime, sqlInt, type Pool } from '../db/pool.ts';
import type { PartitionHead } from '../eventstore/port.ts';

/** A recorded export (migration 004): what the next period and `ledger audit` check against. */
export interface ExportRun {
  tenantId: string;
  runId: string;
  from: string;
  to: string;
  fromAt: string;
  toAt: string;
  timeZone: string;
  exportedAt: string;
  heads: PartitionHead[];
  members: number;
  openingPoints: number;
  closingPoints: number;
  closingDigest: string;
  liabilityFen: number;
  manifestSha256: string;
}

export async function recordExportRun(pool: Pool, run: ExportRun): Promise<void> {
  await pool.query(
    `INSERT INTO export_runs (tenant_id, run_id, from_date, to_date, from_at, to_at, time_zone, exported_at, heads, members,
       opening_points, closing_points, closing_digest, liability_fen, manifest_sha256)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    [
      run.tenantId,
      run.runId,
      run.from,
      run.to,
      isoToSqlTime(run.fromAt),
      isoToSqlTime(run.toAt),
      run.timeZone,
      isoToSqlTime(run.exportedAt),
      JSON.stringify(run.heads),
      run.members,
      run.openingPoints,
      run.closingPoints,
      run.closingDigest,
      run.liabilityFen,
      run.manifestSha256,
    ],
  );
}

/** The latest export of the period that ends where this one starts (its closing is this opening). */
export async function previousPeriodExport(
  pool: Pool,
  tenantId: string,
  from: string,
): Promise<{ runId: string; from: string; closingPoints: number; closingDigest: string } | null> {
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT run_id, from_date, closing_points, closing_digest FROM export_runs WHERE tenant_id = ? AND to_date = ?
     ORDER BY exported_at DESC, run_id DESC LIMIT 1`,
    [tenantId, from],
  );
  const row = rows[0];
  if (row === undefined) return null;
  return {
    runId: String(row['run_id']),
    from: String(row['from_date']),
    closingPoints: sqlInt(row['closing_points']),
    closingDigest: String(row['closing_digest']),
  };
}
