/**
 * npm run bench:append — event store append throughput against the raw commit rate of the same server,
 * measured in the same run at the same concurrency (BENCHMARKS.md).
 */
import { newId } from '../src/ids.ts';
import { SqlEventStore } from '../src/eventstore/sql/sql-event-store.ts';
import type { NewEvent } from '../src/eventstore/port.ts';
import {
  fmt,
  machineLine,
  rawMultiRowInsertRate,
  rawSingleRowInsertRate,
  scratchDatabase,
  timedLoops,
} from './lib/bench.ts';

const CONNECTIONS = 32;
const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 10);
const BATCH_EVENTS = 100;

const sampleData = {
  orderId: 'order-000000001',
  storeId: 'store-0042',
  totalFen: 12_800,
  eligibleFen: 12_800,
  points: 128,
  lot: { lotId: '8b1d6c0e-5c7e-4b0e-8d7a-0f7c3c1e9a11', points: 128, expiresAt: '2027-12-31T16:00:00.000Z' },
  balanceAfter: 1_024,
};

function events(tenantId: string, count: number): NewEvent[] {
  const recordedAt = new Date().toISOString();
  return Array.from({ length: count }, () => ({
    eventId: newId(),
    type: 'PurchaseRecorded',
    data: sampleData,
    metadata: { tenantId, recordedAt, commandId: newId() },
  }));
}

async function main(): Promise<void> {
  const db = await scratchDatabase('pl_bench_append', CONNECTIONS + 4);
  try {
    // What the group committer gathered: appends per transaction and transaction time, per phase.
    let transactions = { count: 0, requests: 0, seconds: 0, oneRoundTrip: 0 };
    const store = new SqlEventStore(db.pool, {
      observeTransaction: ({ requests, seconds, oneRoundTrip }) => {
        transactions.count += 1;
        transactions.requests += requests;
        transactions.seconds += seconds;
        if (oneRoundTrip) transactions.oneRoundTrip += 1;
      },
    });
    const phase = async <T>(run: () => Promise<T>): Promise<{ result: T; batch: string }> => {
      transactions = { count: 0, requests: 0, seconds: 0, oneRoundTrip: 0 };
      const result = await run();
      const { count, requests, seconds, oneRoundTrip } = transactions;
      return {
        result,
        batch:
          `${fmt(requests / count, 1)} appends a transaction, ${fmt((seconds / count) * 1000, 2)} ms each, ` +
          `${fmt((100 * oneRoundTrip) / count)}% in one round trip`,
      };
    };
    const tenantId = 'bench';
    // Each worker appends to its own streams, so the figure measures the store, not contention on one member.
    const versions = new Map<string, number>();
    const append = async (worker: number, iteration: number, count: number) => {
      const streamId = `member-${worker}-${iteration % 50}`;
      const version = versions.get(streamId) ?? 0;
      await store.append({
        tenantId,
        streamId,
        expectedVersion: version === 0 ? 'no-stream' : version,
        events: events(tenantId, count),
        command: { commandId: newId(), requestHash: 'b'.repeat(64) },
      });
      versions.set(streamId, version + count);
    };
    await append(999, 0, 1); // creates the tenant's partition rows

    const raw = await rawSingleRowInsertRate(db.pool, CONNECTIONS, SECONDS);
    const { result: single, batch: singleBatch } = await phase(() =>
      timedLoops(CONNECTIONS, SECONDS, (w, i) => append(w, i, 1)),
    );
    const rawMulti = await rawMultiRowInsertRate(db.pool, CONNECTIONS, SECONDS, BATCH_EVENTS);
    const { result: batch, batch: multiBatch } = await phase(() =>
      timedLoops(CONNECTIONS, SECONDS, (w, i) => append(w, i, BATCH_EVENTS)),
    );

    const lines = [
      `machine: ${machineLine()}`,
      `concurrency: ${CONNECTIONS} connections, ${SECONDS} s per measurement`,
      `raw durable single-row INSERT commits: ${fmt(raw.perSecond)}/s (p50 ${fmt(raw.latencyMs.p50, 2)} ms, p99 ${fmt(raw.latencyMs.p99, 2)} ms)`,
      `1-event appends:                      ${fmt(single.perSecond)}/s (p50 ${fmt(single.latencyMs.p50, 2)} ms, p99 ${fmt(single.latencyMs.p99, 2)} ms)`,
      `  group commit:                       ${singleBatch}`,
      `ratio appends / raw commits:          ${fmt(single.perSecond / raw.perSecond, 2)} (target >= 0.6)`,
      `raw 100-row INSERTs:                  ${fmt(rawMulti.rowsPerSecond)} rows/s`,
      `100-event appends:                    ${fmt(batch.perSecond * BATCH_EVENTS)} events/s (p50 ${fmt(batch.latencyMs.p50, 2)} ms, p99 ${fmt(batch.latencyMs.p99, 2)} ms)`,
      `  group commit:                       ${multiBatch}`,
      `ratio events / raw rows:              ${fmt((batch.perSecond * BATCH_EVENTS) / rawMulti.rowsPerSecond, 2)}`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    await db.drop();
  }
}

await main();
