import {
  BACKWARDS,
  END,
  ErrorType,
  EventStoreDBClient,
  FORWARDS,
  START,
  StreamNotFoundError,
  WrongExpectedVersionError,
  isCommandError,
  jsonEvent,
  streamNameFilter,
  type AllStreamResolvedEvent,
  type AllStreamSubscription,
  type JSONType,
  type ResolvedEvent,
  type StreamingRead,
} from '@eventstore/db-client';
import { toEsdbConnectionString, type EsdbNewEvent, type EsdbStoredEvent } from './mapping.ts';

/**
 * The few EventStoreDB operations the adapter needs, in the adapter's terms. ClientEsdbLog implements them on
 * @eventstore/db-client; MemoryEsdbLog (a test double) implements the same documented semantics in memory, which is
 * how the adapter's protocol is tested where no server runs.
 */
export interface EsdbLog {
  /**
   * Appends atomically if the stream is exactly at `expected` (a concrete revision or 'no_stream'; the adapter never
   * appends with 'any'). Throws EsdbUnknownOutcomeError when the write may or may not have happened.
   */
  append(
    streamName: string,
    events: readonly EsdbNewEvent[],
    expected: 'no_stream' | bigint,
  ): Promise<EsdbAppendOutcome>;
  /** Events from `fromRevision` forwards, at most maxCount; [] when the stream does not exist. */
  readForward(streamName: string, fromRevision: bigint, maxCount: number): Promise<EsdbStoredEvent[]>;
  /** The stream's last event, or null when the stream does not exist. */
  readLast(streamName: string): Promise<EsdbStoredEvent | null>;
  /** Events of streams starting with `prefix`, after $all position `after` (exclusive), at most maxCount. */
  readAllAfter(prefix: string, after: EsdbPosition, maxCount: number): Promise<EsdbStoredEvent[]>;
  close(): Promise<void>;
}

export interface EsdbPosition {
  commit: bigint;
  prepare: bigint;
}

/** The stream moved on: the adapter reads the tail again rather than trust the revision the server reports. */
export type EsdbAppendOutcome =
  | { kind: 'appended'; lastRevision: bigint; lastPosition: EsdbPosition | null }
  | { kind: 'wrong-expected-revision' };

/** The append may or may not have been written (timeout, lost connection, leader change). Retrying it is safe. */
export class EsdbUnknownOutcomeError extends Error {
  override name = 'EsdbUnknownOutcomeError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Server-side deadline of one append; the adapter's lease (esdb-event-store.ts) is sized from it. */
export const APPEND_DEADLINE_MS = 5_000;
/** Client-side bound on one stream read (the client sets none on reads). */
export const STREAM_READ_DEADLINE_MS = 10_000;
/**
 * Client-side bound on one readAllAfter. The server scans $all to find a tenant's events; a tenant with no events in a
 * long stretch of other tenants' traffic costs that whole stretch (docs/eventstore-esdb.md, "Cost").
 */
export const LOG_READ_DEADLINE_MS = 30_000;

/** Client errors after which an append may still have been written. Anything unrecognised counts as unknown too. */
const DEFINITE_APPEND_FAILURES: ReadonlySet<ErrorType> = new Set([
  ErrorType.ACCESS_DENIED,
  ErrorType.STREAM_DELETED,
  ErrorType.MAXIMUM_APPEND_SIZE_EXCEEDED,
  ErrorType.INVALID_ARGUMENT,
  ErrorType.UNSUPPORTED,
  ErrorType.NOT_FOUND,
]);

export interface ClientEsdbLogOptions {
  streamReadDeadlineMs?: number;
  logReadDeadlineMs?: number;
}

export class ClientEsdbLog implements EsdbLog {
  private readonly streamReadDeadlineMs: number;
  private readonly logReadDeadlineMs: number;

  constructor(
    private readonly client: EventStoreDBClient,
    options: ClientEsdbLogOptions = {},
  ) {
    this.streamReadDeadlineMs = options.streamReadDeadlineMs ?? STREAM_READ_DEADLINE_MS;
    this.logReadDeadlineMs = options.logReadDeadlineMs ?? LOG_READ_DEADLINE_MS;
  }

  /** esdb://, esdb+discover://, kurrentdb:// or kurrentdb+discover://. Connects lazily, on the first call. */
  static connect(connectionString: string): ClientEsdbLog {
    return new ClientEsdbLog(EventStoreDBClient.connectionString(toEsdbConnectionString(connectionString)));
  }

  async append(
    streamName: string,
    events: readonly EsdbNewEvent[],
    expected: 'no_stream' | bigint,
  ): Promise<EsdbAppendOutcome> {
    const eventData = events.map((event) =>
      jsonEvent({
        id: event.eventId,
        type: event.type,
        // The client serialises data with JSON.stringify, exactly as the adapter hashed it.
        data: event.data as JSONType,
        metadata: event.metadata,
      }),
    );
    try {
      const result = await this.client.appendToStream(streamName, eventData, {
        expectedRevision: expected,
        deadline: APPEND_DEADLINE_MS,
      });
      // Only with throwOnAppendFailure=false in the connection string; the revision it reports then is unreliable.
      if (!result.success) return { kind: 'wrong-expected-revision' };
      return {
        kind: 'appended',
        lastRevision: result.nextExpectedRevision,
        lastPosition: result.position ?? null,
      };
    } catch (error) {
      if (error instanceof WrongExpectedVersionError) return { kind: 'wrong-expected-revision' };
      if (error instanceof Error && isCommandError(error) && DEFINITE_APPEND_FAILURES.has(error.type))
        throw error;
      throw new EsdbUnknownOutcomeError(`append to ${streamName} has an unknown outcome`, { cause: error });
    }
  }

  async readForward(streamName: string, fromRevision: bigint, maxCount: number): Promise<EsdbStoredEvent[]> {
    return collectStreamRead(
      this.client.readStream(streamName, { fromRevision, maxCount, direction: FORWARDS }),
      streamName,
      this.streamReadDeadlineMs,
    );
  }

  async readLast(streamName: string): Promise<EsdbStoredEvent | null> {
    const events = await collectStreamRead(
      this.client.readStream(streamName, { fromRevision: END, maxCount: 1, direction: BACKWARDS }),
      streamName,
      this.streamReadDeadlineMs,
    );
    return events[0] ?? null;
  }

  async readAllAfter(prefix: string, after: EsdbPosition, maxCount: number): Promise<EsdbStoredEvent[]> {
    // readAll in this client (v6.2) cannot filter on the server; a catch-up subscription can. Subscription positions
    // are exclusive, which is what "after" means. START when nothing was read yet: no ledger event sits at 0.
    const subscription = this.client.subscribeToAll({
      fromPosition: after.commit === 0n ? START : after,
      filter: streamNameFilter({ prefixes: [prefix] }),
    });
    // An 'error' after we stopped listening would otherwise crash the process.
    subscription.on('error', () => undefined);
    try {
      const resolved = await collectUntilCaughtUp(subscription, maxCount, this.logReadDeadlineMs);
      return resolved.map((item) => toStored(item, 'a $all read'));
    } finally {
      await subscription.unsubscribe().catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    await this.client.dispose();
  }
}

/** Drains a stream read, with a deadline the client does not set on reads. A missing stream is an empty one. */
async function collectStreamRead(
  read: StreamingRead<ResolvedEvent>,
  streamName: string,
  deadlineMs: number,
): Promise<EsdbStoredEvent[]> {
  read.on('error', () => undefined);
  const timer = setTimeout(() => {
    void read.cancel().catch(() => undefined);
    read.destroy(new Error(`reading ${streamName} took longer than ${deadlineMs} ms`));
  }, deadlineMs);
  try {
    const events: EsdbStoredEvent[] = [];
    for await (const resolved of read) events.push(toStored(resolved as ResolvedEvent, streamName));
    return events;
  } catch (error) {
    if (error instanceof StreamNotFoundError) return [];
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Reads a catch-up subscription until `maxCount` events or until it has caught up, whichever is first. The client
 * emits 'caughtUp' (servers >= 23.10) while processing the server's CaughtUp message, and every event the server sent
 * before that message has already been pushed into the readable buffer by then: so "caught up and buffer empty"
 * means every event that existed when the read started has been taken. Whatever is returned is a gap-free prefix
 * of the filtered log after the start position, so stopping early (limit, deadline) never skips an event.
 */
function collectUntilCaughtUp(
  subscription: AllStreamSubscription,
  maxCount: number,
  deadlineMs: number,
): Promise<AllStreamResolvedEvent[]> {
  return new Promise((resolve, reject) => {
    const taken: AllStreamResolvedEvent[] = [];
    let caughtUp = false;
    let settled = false;
    const settle = (error?: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      subscription.removeListener('readable', drain);
      subscription.removeListener('caughtUp', onCaughtUp);
      subscription.removeListener('error', onError);
      subscription.removeListener('end', onEnd);
      if (error) reject(error);
      else resolve(taken);
    };
    const drain = (): void => {
      if (settled) return;
      while (taken.length < maxCount) {
        const item = subscription.read() as AllStreamResolvedEvent | null;
        if (item === null) break;
        taken.push(item);
      }
      if (taken.length >= maxCount || (caughtUp && subscription.readableLength === 0)) settle();
    };
    // 'caughtUp' fires inside the stream's transform; reading from there would re-enter it, so drain on the next turn.
    const onCaughtUp = (): void => {
      caughtUp = true;
      setImmediate(drain);
    };
    const onError = (error: Error): void => settle(error);
    const onEnd = (): void => {
      drain();
      if (taken.length > 0) settle();
      else settle(new Error('the $all subscription ended before it caught up'));
    };
    const timer = setTimeout(() => {
      drain();
      // A non-empty prefix is a correct answer; an empty one would wrongly say "nothing more", so it is an error.
      if (taken.length > 0) settle();
      else
        settle(
          new Error(`reading $all did not catch up within ${deadlineMs} ms (the server must be >= 23.10)`),
        );
    }, deadlineMs);
    subscription.on('readable', drain);
    subscription.on('caughtUp', onCaughtUp);
    subscription.on('error', onError);
    subscription.on('end', onEnd);
  });
}

function toStored(resolved: ResolvedEvent | AllStreamResolvedEvent, where: string): EsdbStoredEvent {
  const event = resolved.event;
  if (event === undefined) throw new Error(`${where} returned a link without its event`);
  return {
    streamName: event.streamId,
    eventId: event.id,
    type: event.type,
    revision: event.revision,
    position: event.position ?? null,
    isJson: event.isJson,
    data: event.data,
    metadata: event.metadata,
  };
}
