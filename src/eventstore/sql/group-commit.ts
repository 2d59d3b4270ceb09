import { ER_DUP_ENTRY, ER_LOCK_DEADLOCK, ER_LOCK_WAIT_TIMEOUT, sqlErrno, type Pool } from '../../db/pool.ts';
import type { AppendRequest, AppendResult } from '../port.ts';
import { partitionOf } from '../partition.ts';
import { appendBatch } from './append-transaction.ts';

/**
 * Group commit (DESIGN.md, "Batching"). The fsync is the limit, so appends that arrive while a transaction
 * is in flight are gathered and written by the next transaction with a fixed number of statements.
 * Batches are per log partition, one transaction in flight per partition: appends to one partition
 * serialise on its counter row anyway, so queueing them here costs nothing, while partitions commit in
 * parallel and the server merges their fsyncs (its own group commit). Each
 * request keeps its own outcome: a version conflict fails only that request; a duplicate command id or
 * unique key fails the statement, so the batch is rolled back and its requests are retried one by one to
 * tell whose key it was.
 */
export const GROUP_REQUESTS_MAX = 128;
export const GROUP_EVENTS_MAX = 2_000;
/** Transactions in flight per store instance, at most one per partition. */
export const GROUP_TRANSACTIONS_IN_FLIGHT = 16;
/** Deadlocks and lock-wait timeouts roll a transaction back whole; retrying it is safe. */
const TRANSIENT_RETRIES_MAX = 5;

interface Pending {
  request: AppendRequest;
  resolve(result: AppendResult): void;
  reject(error: unknown): void;
}

export interface GroupCommitOptions {
  /** Test hook: runs inside the transaction just before COMMIT, once per request in it. */
  beforeCommit?: (request: AppendRequest) => Promise<void>;
  /** Maps a duplicate-key failure of a single request to the typed error the caller acts on. */
  explainDuplicate(request: AppendRequest, error: unknown): Promise<Error>;
}

export class GroupCommitter {
  /** Waiting appends per (tenant, partition), oldest first. */
  private readonly queues = new Map<string, Pending[]>();
  private readonly busy = new Set<string>();

  constructor(
    private readonly pool: Pool,
    private readonly partitions: number,
    private readonly options: GroupCommitOptions,
  ) {}

  append(request: AppendRequest): Promise<AppendResult> {
    const key = `${request.tenantId}\u0000${partitionOf(request.streamId, this.partitions)}`;
    return new Promise<AppendResult>((resolve, reject) => {
      const queue = this.queues.get(key);
      if (queue === undefined) this.queues.set(key, [{ request, resolve, reject }]);
      else queue.push({ request, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    for (const [key, queue] of this.queues) {
      if (this.busy.size >= GROUP_TRANSACTIONS_IN_FLIGHT) return;
      if (this.busy.has(key)) continue;
      const batch = takeBatch(queue);
      if (queue.length === 0) this.queues.delete(key);
      this.busy.add(key);
      void this.commit(batch).finally(() => {
        this.busy.delete(key);
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
      const outcomes = await appendBatch(
        connection,
        batch.map((p) => p.request),
        this.partitions,
        this.options.beforeCommit,
      );
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

/** The oldest requests that fit, at most one per stream, command id and unique key (a second waits its turn). */
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
