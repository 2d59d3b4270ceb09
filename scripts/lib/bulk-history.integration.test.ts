import type { RowDataPacket } from 'mysql2/promise';
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../test/helpers/database.ts';
import { runAudit } from '../../src/audit/audit.ts';
import { TENANT_STREAM_ID } from '../../src/commands/streams.ts';
import { SqlEventStore } from '../../src/eventstore/sql/sql-event-store.ts';
import { Projector } from '../../src/projections/runtime.ts';
import { bulkHistory } from './bulk-history.ts';

/**
 * bench:export measures the ledger on what this generator writes, so it must write what the ledger would:
 * chains and heads that audit clean against the projected read models, and, as a live ledger's commit
 * order does, every event before the period below every event of the period in its partition (the
 * carried export's benchmark depends on it).
 */
describe('the bulk history of bench:export', () => {
  const database = useTestDatabase();
  const periodStart = '2025-12-31T16:00:00.000Z';

  it('audits clean and lays the events before the period below the period in every partition', async () => {
    const { pool } = database.current;
    const store = new SqlEventStore(pool);
    const { events } = await bulkHistory(pool, store, {
      tenantId: 'bulk',
      members: 400,
      seed: 3,
      stores: 20,
      periodStart,
      periodEnd: '2026-01-31T16:00:00.000Z',
    });
    const [counted] = await pool.query<RowDataPacket[]>(
      "SELECT COUNT(*) AS n FROM events WHERE tenant_id = 'bulk' AND stream_id <> ?",
      [TENANT_STREAM_ID],
    );
    expect(Number(counted[0]!['n'])).toBe(events);

    const [order] = await pool.query<RowDataPacket[]>(
      `SELECT partition_no,
         MAX(CASE WHEN recorded_at < ? THEN position END) AS last_before,
         MIN(CASE WHEN recorded_at >= ? THEN position END) AS first_in
       FROM events WHERE tenant_id = 'bulk' AND stream_id LIKE 'member-%' GROUP BY partition_no`,
      ['2025-12-31 16:00:00.000', '2025-12-31 16:00:00.000'],
    );
    expect(order.length).toBeGreaterThan(8);
    for (const row of order) {
      expect(row['first_in'], `partition ${row['partition_no']}`).not.toBeNull();
      expect(Number(row['last_before'])).toBeLessThan(Number(row['first_in']));
    }

    await new Projector(pool, store, { owner: 'bulk-test', onError: (e) => console.error(e) }).runOnce();
    const report = await runAudit(pool, store, { tenantId: 'bulk' });
    expect(report.tenants[0]!.discrepancies).toEqual([]);
    expect(report.tenants[0]!.members).toBe(400);
  });
});
