import type { RowDataPacket } from 'mysql2/promise';
import { inTransaction, isoToSqlTime, sqlInt, type Pool } from '../db/pool.ts';
import type { PartitionHead } from '../eventstore/port.ts';
import { eventPassCarrySchema, type EventPassCarry } from './event-pass.ts';

/** A recorded export (migrations 004 and 005): what the next period and `ledger audit` check against. */
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
  /** What the independent pass hands the next period (event-pass.ts); null: the next reads the whole log. */
  carry: EventPassCarry | null;
}

/** The run and its carry, in one transaction. */
export async function recordExportRun(pool: Pool, run: ExportRun): Promise<void> {
  await inTransaction(pool, async (connection) => {
    await connection.query(
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
    if (run.carry !== null)
      await connection.query('INSERT INTO export_carries (tenant_id, run_id, carry) VALUES (?, ?, ?)', [
        run.tenantId,
        run.runId,
        JSON.stringify(run.carry),
      ]);
  });
}

/** The latest export of the period that ends where this one starts (its closing is this opening). */
export async function previousPeriodExport(
  pool: Pool,
  tenantId: string,
  from: string,
): Promise<PreviousExport | null> {
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT r.run_id, r.from_date, r.closing_points, r.closing_digest, c.carry
     FROM export_runs r LEFT JOIN export_carries c ON c.tenant_id = r.tenant_id AND c.run_id = r.run_id
     WHERE r.tenant_id = ? AND r.to_date = ? ORDER BY r.exported_at DESC, r.run_id DESC LIMIT 1`,
    [tenantId, from],
  );
  const row = rows[0];
  if (row === undefined) return null;
  return {
    runId: String(row['run_id']),
    from: String(row['from_date']),
    closingPoints: sqlInt(row['closing_points']),
    closingDigest: String(row['closing_digest']),
    carry: row['carry'] === null ? null : parseCarry(String(row['carry'])),
  };
}

export interface PreviousExport {
  runId: string;
  from: string;
  closingPoints: number;
  closingDigest: string;
  /** Its carry, or why it cannot be used (then the independent pass reads the log from its start). */
  carry: EventPassCarry | { unusable: string } | null;
}

/** A stored carry, or why it cannot be used. */
export function parseCarry(text: string): EventPassCarry | { unusable: string } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { unusable: 'its carry is not JSON' };
  }
  const parsed = eventPassCarrySchema.safeParse(json);
  return parsed.success
    ? parsed.data
    : { unusable: `its carry is malformed (${parsed.error.issues[0]?.message})` };
}
