import { ER_DUP_ENTRY, ER_LOCK_DEADLOCK, ER_LOCK_WAIT_TIMEOUT, sqlErrno, type Pool } from '../../db/pool.ts';
import { EventStoreBusyError, type AppendRequest, type AppendResult } from '../port.ts';
import { partitionOf } from '../partition.ts';
import { appendBatch, type PartitionedRequest } from './append-transaction.ts';
import { HeadCache } from './head-cache.ts';

/**
 * Group commit (DESIGN.md, "Batching"). The fsync, the round trips and the server's CPU per statement are
 * the limits, so appends are gathered and written by one transaction with a fixed number of statements,
 * whatever the batch size (append-transaction.ts). Each request keeps its own outcome: a version conflict
 * fails only that request; a duplicate command id or unique key fails the statement, so the batch is
 * rolled back and its requests are retried one by one to tell whose key it was.
 *
 * Lanes. The log partitions are dealt out to GROUP_LANES lanes (partition % lanes); each lane runs one
 * transaction at a time over the requests waiting for it. Two transactions in flight never share a
 * partition, by construction: a request waits in its lane's queue rather than inside a second transaction
 * on the partition's counter row, where it would hold that transaction's other partitions with it. A
 * transaction that stalls holds up its own lane's partitions and leaves the other lane writable.
 *
 * One gathering per turn of the event loop. A lane that comes free does not start its next transaction at
 * once but in the next `setImmediate`, after every request that arrived in this turn has joined its queue:
 * the callers answered by the transaction that just ended send their next appends in that same turn.
 * Starting at once took the first of them alone and left the rest a whole transaction behind: with 32
 * writers, batches of 9.3 on average (many of 1-3) instead of 12.7, and 20% more MariaDB CPU and 40% more
 * node CPU per append. Measured against the design before (two transactions in flight over any free
 * partitions, started at once), alternated: 10,162-10,332 appends/s against 8,447-8,891 (BENCHMARKS.md).
 *
 * One round trip. Each instance remembers the stream and partition heads its own commits left
 * (head-cache.ts). A batch whose every head it knows, each request expecting its stream's known version,
 * skips the locking round trip: its writes and COMMIT go in one. A lane runs one transaction at a time and
 * owns its partitions within the process, so the heads it knows are exact unless another process appended
 * (or the database was set back); then the transaction's guard on the partition heads, or a unique key of
 * the events, fails a statement before the COMMIT, nothing is written, the heads are forgotten, and the
 * batch goes again the locking way (append-transaction.ts). About a fifth more appends on the 2-core
 * benchmark (BENCHMARKS.md, bench:append).
 */
export const GROUP_REQUESTS_MAX = 128;
export const GROUP_EVENTS_MAX = 2_000;
/**
 * Appends that may wait for a transaction, per lane (so 10,000 per store instance); the next one for that
 * lane is turned away at once (EventStoreBusyError, answered 503 with Retry-After). Without a bound, a
 * database that stalls lets the queue, and the memory holding every waiting request's events and snapshot,
 * grow for as long as tills keep sending; with it, a till hears "retry" in milliseconds. Per lane, so a
 * transaction stalled in one lane (a silent database link holds it for up to 30 s) fills only that lane's
 * queue, and the other lane's partitions keep taking appends. About two seconds of appends at the rate
 * measured on the 2-core machine (BENCHMARKS.md, bench:api).
 */
export const GROUP_LANE_QUEUE_REQUESTS_MAX = 5_000;
/**
 * Lanes, so transactions in flight, per store instance. Two, not one, so a slow transaction does not hold
 * up every till and one lane's round trips overlap the other's; three gave smaller batches, more CPU per
 * append and no more appends on the 2-core machine (BENCHMARKS.md, bench:append).
 */
export const GROUP_LANES = 2;
/** Deadlocks and lock-wait timeouts roll a transaction back whole; retrying it is safe. */
const TRANSIENT_RETRIES_MAX = 5;

interface Pending extends PartitionedRequest {
  resolve(result: AppendResult): void;
  reject(error: unknown): void;
}

interface Lane {
  /** Waiting appends to the lane's partitions, oldest first. */
  queue: Pending[];
  /** A transaction of the lane is in flight. */
  busy: boolean;
}

export interface GroupCommitOptions {
  /** Test hook: runs inside the transaction just before COMMIT, once per request in it. */
  beforeCommit?: (request: AppendRequest) => Promise<void>;
  /** GROUP_LANE_QUEUE_REQUESTS_MAX unless given (tests lower it). */
  laneQueueRequestsMax?: number;
  /** Maps a duplicate-key failure of a single request to the typed error the caller acts on. */
  explainDuplicate(request: AppendRequest, error: unknown): Promise<Error>;
  /** Told of every transaction that ended without an error (committed, or rolled back on version conflicts). */
  observeTransaction?: AppendTransactionObserver;
}

/** What one append transaction carried and how long it took, connection wait included. */
export interface AppendTransactionObservation {
  requests: number;
  events: number;
  seconds: number;
  /** It started from heads this instance knew, without the locking round trip. */
  oneRoundTrip: boolean;
}
export type AppendTransactionObserver = (observation: AppendTransactionObservation) => void;

export class GroupCommitter {
  /** Heads this instance's commits left, for transactions of one round trip. */
  private readonly heads = new HeadCache();
  private readonly lanes: Lane[] = Array.from({ length: GROUP_LANES }, () => ({ queue: [], busy: false }));
  private pumpScheduled = false;

  constructor(
    private readonly pool: Pool,
    private readonly partitions: number,
    private readonly options: GroupCommitOptions,
  ) {}

  append(request: AppendRequest): Promise<AppendResult> {
    const partition = partitionOf(request.streamId, this.partitions);
    const lane = this.lanes[partition % GROUP_LANES]!;
    const waitingMax = this.options.laneQueueRequestsMax ?? GROUP_LANE_QUEUE_REQUESTS_MAX;
    if (lane.queue.length >= waitingMax) return Promise.reject(new EventStoreBusyError(lane.queue.length));
    return new Promise<AppendResult>((resolve, reject) => {
      lane.queue.push({ request, partition, resolve, reject });
      this.schedulePump();
    });
  }

  /** Starts the free lanes' next transactions once this turn's requests have all joined their queues. */
  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    for (const lane of this.lanes) {
      if (lane.busy || lane.queue.length === 0) continue;
      const batch = takeBatch(lane.queue);
      lane.busy = true;
      void this.commit(batch).finally(() => {
        lane.busy = false;
        this.schedulePump();
      });
    }
  }

  private async commit(batch: Pending[]): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.commitOnce(batch);
        return;
      } catch (thrown) {
        // Its heads are forgotten: the batch goes again, the locking way.
        if (thrown instanceof KnownHeadsTaken && attempt < TRANSIENT_RETRIES_MAX) continue;
        const error = thrown instanceof KnownHeadsTaken ? thrown.cause : thrown;
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
    const startedMs = performance.now();
    const known = this.heads.knownFor(batch);
    const connection = await this.pool.getConnection();
    try {
      const outcomes = await appendBatch(connection, batch, this.options.beforeCommit, known ?? undefined);
      this.heads.recordCommitted(batch, outcomes);
      this.options.observeTransaction?.({
        requests: batch.length,
        events: batch.reduce((count, pending) => count + pending.request.events.length, 0),
        seconds: (performance.now() - startedMs) / 1000,
        oneRoundTrip: known !== null,
      });
      outcomes.forEach((outcome, index) => {
        const pending = batch[index]!;
        if (outcome.ok) pending.resolve(outcome.result);
        else pending.reject(outcome.error);
      });
    } catch (error) {
      const errno = sqlErrno(error);
      const rolledBack =
        errno === ER_DUP_ENTRY || errno === ER_LOCK_DEADLOCK || errno === ER_LOCK_WAIT_TIMEOUT;
      // Anything else (a lost connection, a server restarted, perhaps restored from a backup) may have
      // moved any head: every head is read under lock again.
      if (rolledBack) this.heads.forget(batch);
      else this.heads.clear();
      // A unique key or a lock on known heads: another writer took a position or a version since (or a
      // duplicate command); nothing was committed, and the locking way sorts out which.
      if (known !== null && rolledBack) throw new KnownHeadsTaken(error);
      throw error;
    } finally {
      connection.release();
    }
  }
}

/** A transaction on known heads failed on a unique key or a lock: it wrote nothing, and goes again locking. */
class KnownHeadsTaken extends Error {
  constructor(cause: unknown) {
    super('append: a known head was taken by another writer', { cause });
  }
}

/**
 * The oldest requests that fit, at most one per stream, command id and unique key (a second waits its
 * turn).
 */
function takeBatch(queue: Pending[]): Pending[] {
  const batch: Pending[] = [];
  const taken = new Set<string>();
  let events = 0;
  for (let i = 0; i < queue.length && batch.length < GROUP_REQUESTS_MAX;) {
    const pending = queue[i]!;
    const { request } = pending;
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
