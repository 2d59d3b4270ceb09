import type { RowDataPacket } from 'mysql2/promise';
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../test/helpers/database.ts';
import { measureAuditFloor } from './audit-floor.ts';
import { buildDecidedHistory, DECIDED_HISTORY_TENANT } from './decided-history.ts';

/**
 * bench:audit prints the floor as the machine's raw limit beside the audit, so the floor must read what the
 * audit reads, all of it: every event in position order and in stream order, every ledger entry, over pages
 * smaller than the log (the keyset paging is what could lose rows).
 */
describe("bench:audit's floor", () => {
  const database = useTestDatabase();

  it('reads every event both ways and every ledger entry, and prices the per-event work', async () => {
    const { pool } = database.current;
    const { written } = await buildDecidedHistory(pool, 12_000);
    const count = async (table: string) => {
      const [rows] = await pool.query<RowDataPacket[]>(
        `SELECT COUNT(*) AS n FROM ${table} WHERE tenant_id = ?`,
        [DECIDED_HISTORY_TENANT],
      );
      return Number(rows[0]!['n']);
    };
    const floor = await measureAuditFloor(pool, DECIDED_HISTORY_TENANT);
    expect(floor.events).toBe(await count('events'));
    expect(floor.events).toBeGreaterThanOrEqual(written);
    expect(floor.eventsByStream).toBe(floor.events);
    expect(floor.ledgerEntries).toBe(await count('ledger_entries'));
    expect(floor.ledgerEntries).toBeGreaterThan(5_000);
    expect(floor.readNodeSeconds).toBeGreaterThan(0);
    for (const micros of [floor.foldMicros, floor.streamHashMicros, floor.partitionHashMicros])
      expect(micros).toBeGreaterThan(0);
    expect(floor.cpuSecondsPerMillion).toBeGreaterThan(0);
    expect(Number.isFinite(floor.maxEventsPerSecond)).toBe(true);
  });
});
