import { hash } from 'node:crypto';
import type { Clock } from '../clock.ts';
import type { Decision } from '../domain/event.ts';
import { DOMAIN_ERROR_STATUS, type DomainError } from '../domain/errors.ts';
import { derivedId } from '../ids.ts';
import {
  ConcurrencyError,
  DuplicateCommandError,
  UniqueKeyError,
  type CommandRecord,
  type EventStore,
  type NewEvent,
} from '../eventstore/port.ts';
import { applicationError, type Rejection } from './errors.ts';
import { KeyedMutex } from './keyed-mutex.ts';
import { StreamStateCache } from './state-cache.ts';
import { loadStream, type StreamFolder } from './stream-loader.ts';

/**
 * Reload-and-decide rounds after losing a version race to another process (inside one process commands on
 * a stream queue on a mutex and do not race). Each round is one read and one append.
 */
export const COMMAND_CONFLICT_RETRIES_MAX = 10;
/** Upper bound of the random pause before retry n (n x this): two processes stop winning in lockstep. */
const CONFLICT_BACKOFF_MS_PER_ATTEMPT = 3;

export interface StreamDecider<S, C, E extends { type: string; data: unknown }> extends StreamFolder<S, E> {
  decide(command: C, state: S, now: string): Decision<E>;
}

export interface CommandEnvelope {
  tenantId: string;
  streamId: string;
  /** The Idempotency-Key (or a derived id for commands from the CLI), unique per command in the tenant. */
  commandId: string;
  /** sha256 of what the command asks for; the same key with another request is refused. */
  requestHash: string;
  correlationId?: string;
  actor?: string;
  /** Business keys the command takes (e.g. 'purchase:<orderId>'), unique in the tenant, checked by the database. */
  uniqueKeys?: readonly string[];
}

export interface Decided<S, E> {
  events: readonly E[];
  state: S;
  version: number;
  now: string;
}

export interface Response {
  status: number;
  body: unknown;
}

export type CommandResult =
  { ok: true; response: Response; replayed: boolean } | { ok: false; rejection: Rejection };

export interface CommandHandlers<S, E> {
  /** Checked against the loaded state before deciding (e.g. a pos key may capture only its stores' holds). */
  authorize?(state: S): Rejection | null;
  /** Builds the response stored with the events, so a retry gets the same answer. */
  respond(decided: Decided<S, E>): Response;
  /** What a taken business key means to the caller (e.g. 'purchase:<id>' is order-already-recorded). */
  explainUniqueKey(key: string, holderStreamId: string | null): Rejection;
  /**
   * The response a refusal is answered with. When given, refusals by the programme's rules (400, 404, 409,
   * 422) are recorded under the command id, so every later attempt gets the same answer.
   */
  refusalResponse?(refusal: DomainError): Response;
}

export function requestHash(parts: unknown): string {
  return hash('sha256', JSON.stringify(parts), 'hex');
}

/**
 * Runs one command against one stream: load (this process's cached state, else the snapshot), decide,
 * append with the expected version, the command row with the response, and the new snapshot in one
 * transaction. A rejected command writes no events.
 */
export class CommandRunner {
  private readonly mutex = new KeyedMutex();
  private inFlight = 0;
  private idle: (() => void) | null = null;

  constructor(
    private readonly store: EventStore,
    private readonly clock: Clock,
    /** States this process appended last (state-cache.ts); a budget of 0 keeps none. */
    private readonly cache = new StreamStateCache(),
  ) {}

  async run<S, C, E extends { type: string; data: unknown }>(
    envelope: CommandEnvelope,
    decider: StreamDecider<S, C, E>,
    command: C,
    handlers: CommandHandlers<S, E>,
  ): Promise<CommandResult> {
    this.inFlight += 1;
    try {
      return await this.runQueued(envelope, decider, command, handlers);
    } finally {
      this.inFlight -= 1;
      if (this.inFlight === 0) this.idle?.();
    }
  }

  /**
   * Resolves when no command is running. Shutdown waits for it before closing the pool: a client that
   * hangs up does not stop its command, which must still commit or write nothing, not die halfway.
   */
  async drain(): Promise<void> {
    if (this.inFlight === 0) return;
    await new Promise<void>((resolve) => (this.idle = resolve));
  }

  private runQueued<S, C, E extends { type: string; data: unknown }>(
    envelope: CommandEnvelope,
    decider: StreamDecider<S, C, E>,
    command: C,
    handlers: CommandHandlers<S, E>,
  ): Promise<CommandResult> {
    // A retry is not looked up before deciding: retries are rare, and the command row is written in the
    // append transaction, so a retry that decides events again fails that insert and gets the first
    // outcome (DuplicateCommandError). A refusal is recorded under the command id too (with no events):
    // otherwise an attempt still running somewhere (a slow process, a stalled connection) could later
    // succeed under a key whose retry was already refused, and the till would have told the customer no.
    // Whichever outcome is recorded first stands for every attempt.
    return this.mutex.run(`${envelope.tenantId}/${envelope.streamId}`, async () => {
      const result = await this.decideAndAppend(envelope, decider, command, handlers);
      if (result.ok) return result;
      const refusal = result.rejection;
      if (handlers.refusalResponse !== undefined && isRecordedRefusal(refusal)) {
        const standing = await this.store.recordRejection(
          envelope.tenantId,
          envelope.streamId,
          {
            commandId: envelope.commandId,
            requestHash: envelope.requestHash,
            response: handlers.refusalResponse(refusal),
          },
          this.clock.nowIso(),
        );
        return standing ? replay(standing, envelope) : result;
      }
      const committed = await this.store.findCommand(envelope.tenantId, envelope.commandId);
      return committed ? replay(committed, envelope) : result;
    });
  }

  private async decideAndAppend<S, C, E extends { type: string; data: unknown }>(
    envelope: CommandEnvelope,
    decider: StreamDecider<S, C, E>,
    command: C,
    handlers: CommandHandlers<S, E>,
  ): Promise<CommandResult> {
    const key = `${envelope.tenantId}/${envelope.streamId}`;
    // A cached state may be behind the store (state-cache.ts): it may decide events, whose append then
    // checks its version, but never an answer without events, which is decided again from the store.
    let cached = this.cache.get<S>(key);
    for (let attempt = 1; ;) {
      const loaded = cached ?? (await loadStream(this.store, envelope.tenantId, envelope.streamId, decider));
      const fromCache = cached !== undefined;
      cached = undefined;
      if (!fromCache) this.cache.set(key, loaded.version, loaded.state, decider.stateBytes(loaded.state));
      const now = this.clock.nowIso();
      const outcome = decideOn(loaded.state, () => decider.decide(command, loaded.state, now), handlers);
      if (outcome.ok === false || outcome.events.length === 0) {
        if (fromCache) continue;
        if (outcome.ok === false) return outcome;
      }
      const events = outcome.events;
      let state = loaded.state;
      for (const event of events) state = decider.evolve(state, event);
      const version = loaded.version + events.length;
      const response = handlers.respond({ events, state, version, now });
      if (events.length === 0) return { ok: true, response, replayed: false };
      try {
        await this.store.append({
          tenantId: envelope.tenantId,
          streamId: envelope.streamId,
          expectedVersion: loaded.version === 0 ? 'no-stream' : loaded.version,
          events: events.map((event, index) => toNewEvent(envelope, event, index, now)),
          command: { commandId: envelope.commandId, requestHash: envelope.requestHash, response },
          uniqueKeys: envelope.uniqueKeys ?? [],
          snapshot: { schemaVersion: decider.snapshotSchema, state },
        });
        this.cache.set(key, version, state, decider.stateBytes(state));
        return { ok: true, response, replayed: false };
      } catch (error) {
        // Whatever went wrong, the next decision on this stream reads it from the store.
        this.cache.delete(key);
        if (error instanceof DuplicateCommandError) return replay(error.record, envelope);
        if (error instanceof UniqueKeyError)
          return { ok: false, rejection: handlers.explainUniqueKey(error.key, error.streamId) };
        if (error instanceof ConcurrencyError) {
          if (fromCache) continue;
          if (attempt >= COMMAND_CONFLICT_RETRIES_MAX) {
            return {
              ok: false,
              rejection: applicationError(
                'concurrency-conflict',
                'the member changed concurrently; retry the request',
              ),
            };
          }
          attempt += 1;
          await new Promise((resolve) =>
            setTimeout(resolve, Math.random() * CONFLICT_BACKOFF_MS_PER_ATTEMPT * attempt),
          );
          continue;
        }
        throw error;
      }
    }
  }
}

/** The authorization check, then the decider: the events to append, or why nothing changes. */
function decideOn<S, E>(
  state: S,
  decide: () => Decision<E>,
  handlers: CommandHandlers<S, E>,
): { ok: true; events: readonly E[] } | { ok: false; rejection: Rejection } {
  const refused = handlers.authorize?.(state) ?? null;
  if (refused !== null) return { ok: false, rejection: refused };
  const decision = decide();
  return decision.ok ? decision : { ok: false, rejection: decision.error };
}

function toNewEvent<E extends { type: string; data: unknown }>(
  envelope: CommandEnvelope,
  event: E,
  index: number,
  now: string,
): NewEvent {
  return {
    // Derived from (tenant, command, index): a retry of the same command produces the same event ids.
    eventId: derivedId(envelope.tenantId, envelope.commandId, String(index)),
    type: event.type,
    data: event.data,
    metadata: {
      tenantId: envelope.tenantId,
      recordedAt: now,
      commandId: envelope.commandId,
      ...(envelope.correlationId === undefined ? {} : { correlationId: envelope.correlationId }),
      ...(envelope.actor === undefined ? {} : { actor: envelope.actor }),
    },
  };
}

/**
 * Refusals by the programme's rules are answers, the decider's 400s among them: some depend on the state or
 * the clock (a balance over BALANCE_POINTS_MAX, an occurredAt ahead of the ledger's time), so a retry could
 * otherwise succeed under a key the till saw refused. Retryable conflicts and failures are not answers.
 * (Requests the route's schema refuses never reach the decider and are not kept: no state makes them pass.)
 */
function isRecordedRefusal(rejection: Rejection): rejection is DomainError {
  return rejection.code in DOMAIN_ERROR_STATUS;
}

function replay(record: CommandRecord, envelope: CommandEnvelope): CommandResult {
  if (record.requestHash !== envelope.requestHash || record.response === null) {
    return {
      ok: false,
      rejection: applicationError(
        'idempotency-key-reused',
        'this Idempotency-Key was used before with a different request; use a new key for a new request',
      ),
    };
  }
  return { ok: true, response: record.response, replayed: true };
}
