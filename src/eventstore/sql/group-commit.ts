import { ER_DUP_ENTRY, ER_LOCK_DEADLOCK, ER_LOCK_WAIT_TIMEOUT, sqlErrno, type Pool } from '../../db/pool.ts';
import { EventStoreBusyError, type AppendRequest, type AppendResult } from '../port.ts';
import { partitionOf } from '../partition.ts';
import { appendBatch, type PartitionedRequest } from './append-transaction.ts';

/**
 * Group commit (DESIGN.md, "Batching"). The fsync and the server's CPU are the limits, so appends that
 * arrive while a transaction is in flight are gathered and written by the next transaction with a fixed
 * number of statements, whatever the batch size. Measured on the 2-core machine (32 writers): one queue
 * with up to two transactions in flight gave about twice the appends/s of one queue per log partition,
 * whose batches stayed small (BENCHMARKS.md). Two in flight, not one, so a slow transaction does not hold
 * up every till. The two never share a log partition: a request whose partition a transaction in flight
 * holds waits for it in the queue rather than inside a second transaction, where it would wait on the
 * partition's counter row and hold that transaction's other partitions with it. So a transaction that
 * stalls on one partition leaves the others writable, and the two commit side by side (100-event appends:
 * 51,100 and 54,100 events/s against 36,200 and 32,700 before, alternated; 1-event appends unchanged:
 * BENCHMARKS.md). Each
 * request keeps its own outcome: a version conflict fails only that request; a duplicate command id or
 * unique key fails the statement, so the batch is rolled back and its requests are retried one by one to
 * tell whose key it was.
 */
export const GROUP_REQUESTS_MAX = 128;
export const GROUP_EVENTS_MAX = 2_000;
/**
 * Appends that may wait for a transaction per store instance; the next one is turned away at once
 * (EventStoreBusyError, answered 503 with Retry-After). Without a bound, a database that stalls lets the
 * queue, and the memory holding every waiting request's events and snapshot, grow for as long as tills
 * keep sending; with it, a till hears "retry" in milliseconds. About two seconds of appends at the rate
 * measured on the 2-core machine (BENCHMARKS.md, bench:api).
 */
export const GROUP_QUEUE_REQUESTS_MAX = 10_000;
/** Transactions in flight per store instance. */
export const GROUP_TRANSACTIONS_IN_FLIGHT = 2;
/** Deadlocks and lock-wait timeouts roll a transaction back whole; retrying it is safe. */
const TRANSIENT_RETRIES_MAX = 5;

interface Pending extends PartitionedRequest {
  /** `tenant \0 partition`: the log partition the request appends to, as a key. */
  partitionKey: string;
  resolve(result: AppendResult): void;
  reject(error: unknown): void;
}

export interface GroupCommitOptions {
  /** Test hook: runs inside the transaction just before COMMIT, once per request in it. */
  beforeCommit?: (request: AppendRequest) => Promise<void>;
  /** GROUP_QUEUE_REQUESTS_MAX unless given (tests lower it). */
  queueRequestsMax?: number;
  /** Maps a duplicate-key failure of a single request to the typed error the caller acts on. */
  explainDuplicate(request: AppendRequest, error: unknown): Promise<Error>;
}

export class GroupCommitter {
  /** Waiting appends, oldest first. */
  private readonly queue: Pending[] = [];
  private inFlight = 0;
  /** The partitions (partitionKey) of the transactions in flight. */
  private readonly partitionsInFlight = new Set<string>();

  constructor(
    private readonly pool: Pool,
    private readonly partitions: number,
    private readonly options: GroupCommitOptions,
  ) {}

  append(request: AppendRequest): Promise<AppendResult> {
    const waitingMax = this.options.queueRequestsMax ?? GROUP_QUEUE_REQUESTS_MAX;
    if (this.queue.length >= waitingMax) return Promise.reject(new EventStoreBusyError(this.queue.length));
    return new Promise<AppendResult>((resolve, reject) => {
      const partition = partitionOf(request.streamId, this.partitions);
      const partitionKey = `${request.tenantId}\u0000${partition}`;
      this.queue.push({ request, partition, partitionKey, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.inFlight < GROUP_TRANSACTIONS_IN_FLIGHT && this.queue.length > 0) {
      const batch = takeBatch(this.queue, this.partitionsInFlight);
      // Every waiting request's partition is held: the transaction holding it pumps again when it ends.
      if (batch.length === 0) return;
      const partitionKeys = new Set(batch.map((pending) => pending.partitionKey));
      for (const key of partitionKeys) this.partitionsInFlight.add(key);
      this.inFlight += 1;
      void this.commit(batch).finally(() => {
        for (const key of partitionKeys) this.partitionsInFlight.delete(key);
        this.inFlight -= 1;
        this.pump();
      });
    }
  }

  private async commit(batch: Pending[]): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.commitOnce(batch);
        return;
      } catch (error) {
        const errno = sqlErrno(error);
        if ((errno === ER_LOCK_DEADLOCK || errno === ER_LOCK_WAIT_TIMEOUT) && attempt < TRANSIENT_RETRIES_MAX)
          continue;
        if (errno === ER_DUP_ENTRY) {
          if (batch.length === 1) {
            const only = batch[0]!;
            only.reject(await this.options.explainDuplicate(only.request, error));
          } else {
            // Whose key was it? Each request again on its own, in arrival order.
            for (const pending of batch) await this.commit([pending]);
          }
          return;
        }
        batch.forEach((pending) => pending.reject(error));
        return;
      }
    }
  }

  private async commitOnce(batch: Pending[]): Promise<void> {
    const connection = await this.pool.getConnection();
    try {
      const outcomes = await appendBatch(connection, batch, this.options.beforeCommit);
      outcomes.forEach((outcome, index) => {
        const pending = batch[index]!;
        if (outcome.ok) pending.resolve(outcome.result);
        else pending.reject(outcome.error);
      });
    } finally {
      connection.release();
    }
  }
}

/**
 * The oldest requests that fit, at most one per stream, command id and unique key (a second waits its
 * turn), and none in a partition a transaction in flight holds (`busy`).
 */
function takeBatch(queue: Pending[], busy: ReadonlySet<string>): Pending[] {
  const batch: Pending[] = [];
  const taken = new Set<string>();
  let events = 0;
  for (let i = 0; i < queue.length && batch.length < GROUP_REQUESTS_MAX;) {
    const pending = queue[i]!;
    const { request } = pending;
    if (busy.has(pending.partitionKey)) {
      i += 1;
      continue;
    }
    const claims = [
      `s\u0000${request.tenantId}\u0000${request.streamId}`,
      ...(request.command ? [`c\u0000${request.tenantId}\u0000${request.command.commandId}`] : []),
      ...(request.uniqueKeys ?? []).map((key) => `k\u0000${request.tenantId}\u0000${key}`),
    ];
    const fits = batch.length === 0 || events + request.events.length <= GROUP_EVENTS_MAX;
    if (!fits) break;
    if (claims.some((claim) => taken.has(claim))) {
      i += 1;
      continue;
    }
    claims.forEach((claim) => taken.add(claim));
    events += request.events.length;
    batch.push(pending);
    queue.splice(i, 1);
  }
  return batch;
}
