import type { RowDataPacket } from 'mysql2/promise';
import { afterAll, describe, expect, it } from 'vitest';
import { generateHistory } from '../../scripts/generate-history.ts';
import { useTestDatabase } from '../../test/helpers/database.ts';
import { memberIdOfStream } from '../commands/streams.ts';
import { sqlInt } from '../db/pool.ts';
import { EsdbEventStore } from '../eventstore/esdb/esdb-event-store.ts';
import {
  ClientEsdbLog,
  type EsdbAppendOutcome,
  type EsdbLog,
  type EsdbPosition,
} from '../eventstore/esdb/esdb-log.ts';
import type { EsdbNewEvent, EsdbStoredEvent } from '../eventstore/esdb/mapping.ts';
import { MemoryEsdbLog } from '../eventstore/esdb/memory-esdb-log.ts';
import { ProjectionEngine, PROJECTION_BATCH_EVENTS_MAX } from '../projections/engine.ts';
import { LIVE_TABLES } from '../projections/tables.ts';
import { AuditCannotRunError, runAudit } from './audit.ts';
import type { AuditReport, Discrepancy } from './report.ts';

/**
 * The audit over the EventStoreDB adapter, on MemoryEsdbLog (the in-memory double of the server's documented
 * behaviour), or on the server LEDGER_EVENT_STORE names (docs/eventstore-esdb.md says what was verified where), with the side tables and read models in a
 * fresh MariaDB database. Tampering is staged on the way out of the log: the audit only reads, so an event
 * changed or missing in what the server returns is what a changed or removed event would look like.
 */
const database = useTestDatabase();
const pool = () => database.current.pool;
/** As in esdb-event-store.integration.test.ts: a server when LEDGER_EVENT_STORE names one, else the double. */
const serverUrl = process.env['LEDGER_EVENT_STORE'];
const onServer = serverUrl !== undefined && /^(esdb|kurrentdb)(\+discover)?:\/\//.test(serverUrl);
const logs: EsdbLog[] = [];
afterAll(async () => {
  await Promise.all(logs.map((log) => log.close()));
});
function newLog(): EsdbLog {
  const log = onServer ? ClientEsdbLog.connect(serverUrl!) : new MemoryEsdbLog();
  logs.push(log);
  return log;
}

/** Passes everything through, except what a test changes in the events it returns. */
class TamperedLog implements EsdbLog {
  edit: ((event: EsdbStoredEvent) => EsdbStoredEvent | null) | null = null;

  constructor(private readonly inner: EsdbLog) {}

  append(
    streamName: string,
    events: readonly EsdbNewEvent[],
    expected: 'no_stream' | bigint,
  ): Promise<EsdbAppendOutcome> {
    return this.inner.append(streamName, events, expected);
  }

  async readForward(streamName: string, fromRevision: bigint, maxCount: number): Promise<EsdbStoredEvent[]> {
    return this.tampered(await this.inner.readForward(streamName, fromRevision, maxCount));
  }

  async readLast(streamName: string): Promise<EsdbStoredEvent | null> {
    const last = await this.inner.readLast(streamName);
    return last === null ? null : (this.tampered([last])[0] ?? null);
  }

  async readAllAfter(prefix: string, after: EsdbPosition, maxCount: number): Promise<EsdbStoredEvent[]> {
    return this.tampered(await this.inner.readAllAfter(prefix, after, maxCount));
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  private tampered(events: EsdbStoredEvent[]): EsdbStoredEvent[] {
    const edit = this.edit;
    if (edit === null) return events;
    return events.flatMap((event) => edit(event) ?? []);
  }
}

let tenantCounter = 0;
/** A tenant on its own EventStoreDB double, fully projected, then a few events more the projector has not seen. */
async function esdbTenant(): Promise<{ tenantId: string; store: EsdbEventStore; log: TamperedLog }> {
  tenantCounter += 1;
  // Unique per run: on a server the log outlives the test database.
  const tenantId = `esdb-audit-${Date.now().toString(36)}-${tenantCounter}`;
  const log = new TamperedLog(newLog());
  const store = new EsdbEventStore(log, pool());
  await generateHistory(store, {
    tenantId,
    seed: 40 + tenantCounter,
    members: 14,
    eventsPerMember: 12,
    stores: 4,
  });
  const engine = new ProjectionEngine(pool(), store, LIVE_TABLES, {
    batchEvents: PROJECTION_BATCH_EVENTS_MAX,
  });
  await engine.ensureTenant(tenantId);
  while ((await engine.drain(tenantId, 0, null, 100)).more);
  await generateHistory(store, {
    tenantId,
    seed: 7,
    members: 3,
    eventsPerMember: 6,
    stores: 4,
    firstMember: 100,
    createTenant: false,
  });
  return { tenantId, store, log };
}

async function audit(store: EsdbEventStore, tenantId: string): Promise<AuditReport> {
  return runAudit(pool(), store, { tenantId, pageRows: 17, eventPageRows: 13, concurrency: 3 });
}

function found(report: AuditReport): Discrepancy[] {
  return report.tenants.flatMap((t) => t.discrepancies);
}

/** A member stream's EventStoreDB name and its last revision, with at least `minVersion` events. */
async function aStream(tenantId: string, minVersion: number): Promise<{ streamId: string; version: number }> {
  const [rows] = await pool().query<RowDataPacket[]>(
    "SELECT stream_id, version FROM streams WHERE tenant_id = ? AND stream_id LIKE 'member-%' AND version >= ? ORDER BY stream_id LIMIT 1",
    [tenantId, minVersion],
  );
  return { streamId: String(rows[0]!['stream_id']), version: sqlInt(rows[0]!['version']) };
}

describe('audit over the EventStoreDB adapter (in-memory double)', () => {
  it('proves the streams, the read models and the postings; the projector behind is lag, not a discrepancy', async () => {
    const { tenantId, store } = await esdbTenant();
    const report = await audit(store, tenantId);
    expect(found(report)).toEqual([]);
    expect(report.clean).toBe(true);
    expect(report.processes).toBe(1);
    expect(report.members).toBe(17);
    const [partition] = report.tenants[0]!.partitions;
    expect(report.tenants[0]!.partitions).toHaveLength(1);
    expect(partition!.lag).toBeGreaterThan(0);
    const events = (await store.readLog(tenantId, 0, 0, 10_000)).length;
    expect(report.events).toBe(events);
    const postings = Object.values(report.tenants[0]!.postings);
    expect(postings.length).toBeGreaterThan(3);
    expect(postings.reduce((a, b) => a + b, 0)).toBe(0);

    // Wherever the passes split the postings, the same result.
    for (const split of [0, Math.floor(partition!.checkpoint / 2), partition!.head]) {
      const again = await runAudit(pool(), store, { tenantId, checkpointsAtStart: new Map([[0, split]]) });
      expect(found(again)).toEqual([]);
      expect(again.tenants[0]!.postings).toEqual(report.tenants[0]!.postings);
    }
  });

  it('an event changed in the store: names its stream and version', async () => {
    const { tenantId, store, log } = await esdbTenant();
    const { streamId } = await aStream(tenantId, 4);
    log.edit = (event) =>
      event.streamName.endsWith(`.${streamId}`) && event.revision === 2n
        ? { ...event, data: { ...(event.data as object), storeId: 'store-forged' } }
        : event;
    const discrepancies = found(await audit(store, tenantId));
    expect(discrepancies).toContainEqual(
      expect.objectContaining({
        kind: 'chain',
        streamId,
        memberId: memberIdOfStream(streamId),
        streamVersion: 3,
      }),
    );
  });

  it('a stream cut short in the store: the head in streams names the version where it now ends', async () => {
    const { tenantId, store, log } = await esdbTenant();
    const { streamId, version } = await aStream(tenantId, 4);
    log.edit = (event) =>
      event.streamName.endsWith(`.${streamId}`) && event.revision === BigInt(version - 1) ? null : event;
    const discrepancies = found(await audit(store, tenantId));
    expect(discrepancies).toContainEqual(expect.objectContaining({ kind: 'head', streamId }));
  });

  it('a stream that runs past its head in streams (an outcome not yet recorded) is clean when the head is on its chain', async () => {
    const { tenantId, store } = await esdbTenant();
    const { streamId, version } = await aStream(tenantId, 4);
    const [previous] = await store.readStream(tenantId, streamId, { fromVersion: version - 1, limit: 1 });
    // The SQL record as it was before the stream's last append (its step 4 not yet run).
    const rewind = (lastHash: string) =>
      pool().query('UPDATE streams SET version = ?, last_hash = ? WHERE tenant_id = ? AND stream_id = ?', [
        version - 1,
        lastHash,
        tenantId,
        streamId,
      ]);
    await rewind(previous!.streamHash);
    expect(found(await audit(store, tenantId))).toEqual([]);
    await rewind('f'.repeat(64));
    expect(found(await audit(store, tenantId))).toEqual([
      expect.objectContaining({
        kind: 'head',
        streamId,
        streamVersion: version - 1,
        actual: previous!.streamHash,
      }),
    ]);
  });

  it('an edited balance and an edited tenant total are named', async () => {
    const { tenantId, store } = await esdbTenant();
    const [[account]] = await pool().query<RowDataPacket[]>(
      'SELECT member_id FROM member_accounts WHERE tenant_id = ? ORDER BY member_id LIMIT 1',
      [tenantId],
    );
    const memberId = String(account!['member_id']);
    await pool().query(
      'UPDATE member_accounts SET balance = balance + 7 WHERE tenant_id = ? AND member_id = ?',
      [tenantId, memberId],
    );
    await pool().query(
      "UPDATE tenant_totals SET points = points + 1 WHERE tenant_id = ? AND partition_no = 0 AND account = 'issued'",
      [tenantId],
    );
    const discrepancies = found(await audit(store, tenantId));
    expect(discrepancies).toContainEqual(
      expect.objectContaining({ kind: 'read-model', memberId: memberId, field: 'balance' }),
    );
    expect(discrepancies).toContainEqual(
      expect.objectContaining({
        kind: 'postings',
        partition: 0,
        table: 'tenant_totals',
        field: 'issued points',
      }),
    );
    // The open lots no longer add up to the edited balance either.
    expect(discrepancies).toContainEqual(
      expect.objectContaining({
        memberId: memberId,
        table: 'member_lots',
        field: 'sum of remaining',
      }),
    );
    expect(discrepancies).toHaveLength(3);
  });

  it('runs in one process: asking for more cannot run', async () => {
    const { tenantId, store } = await esdbTenant();
    await expect(runAudit(pool(), store, { tenantId, processes: 2 })).rejects.toThrow(AuditCannotRunError);
  });
});
