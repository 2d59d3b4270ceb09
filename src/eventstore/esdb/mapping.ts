import { validateAppend } from '../validate-append.ts';
import type { AppendExpectedRevision } from '@eventstore/db-client';
import { derivedId } from '../../ids.ts';
import { streamHash } from '../hash.ts';
import {
  APPEND_EVENTS_MAX,
  EventStoreUsageError,
  STREAM_ID_CHARS_MAX,
  type AppendRequest,
  type EventMetadata,
  type ExpectedVersion,
  type RecordedEvent,
} from '../port.ts';

/**
 * The pure half of the EventStoreDB adapter: names, versions, positions, ids and metadata, with no I/O, so each
 * rule is unit tested without a server (mapping.test.ts). esdb-event-store.ts says why each rule is what it is.
 */

/** Tenant ids as the SQL adapter accepts them. They never contain TENANT_SEPARATOR, which is what makes names unambiguous. */
export const TENANT_ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,63}$/;

/** Every ledger stream in EventStoreDB starts with this; the category ($ce-ledger) is therefore 'ledger'. */
export const LEDGER_STREAM_PREFIX = 'ledger-';

/**
 * Ends the tenant id inside a stream name. Not '-': tenant ids contain '-', so with 'ledger-<tenant>-<stream>' the
 * prefix 'ledger-acme-' would also match every stream of tenant 'acme-eu', and '$all' read by prefix would leak one
 * tenant's events into another's log. '.' cannot occur in a tenant id.
 */
export const TENANT_SEPARATOR = '.';

/**
 * The largest $all commit position the port can carry. Positions are byte offsets in the transaction log, so 2^53
 * bytes is 8 PiB of log: far beyond any one cluster, but an overflow would silently reorder the log, so it is checked.
 */
export const POSITION_MAX = Number.MAX_SAFE_INTEGER;

/** Keys the adapter adds to EventStoreDB's event metadata next to the caller's EventMetadata, and strips on read. */
export const STORED_HASH_KEY = 'streamHash';
export const STORED_OUTCOME_KEY = 'commandOutcome';

/** An event as the adapter hands it to EventStoreDB. */
export interface EsdbNewEvent {
  eventId: string;
  type: string;
  data: unknown;
  metadata: Record<string, unknown>;
}

/** An event as EventStoreDB returns it, reduced to what the adapter reads (see esdb-log.ts). */
export interface EsdbStoredEvent {
  streamName: string;
  eventId: string;
  type: string;
  /** 0-based revision in its stream. */
  revision: bigint;
  /** The $all position; null when the server did not report one. */
  position: { commit: bigint; prepare: bigint } | null;
  isJson: boolean;
  /** Parsed JSON, as the client returns it. */
  data: unknown;
  metadata: unknown;
}

/**
 * What a command's append decided, written into the metadata of its first event: the events and the outcome land in
 * EventStoreDB in one atomic write, so a later attempt that finds the events also finds the response to replay.
 */
export interface CommandOutcome {
  commandId: string;
  requestHash: string;
  eventCount: number;
  response: { status: number; body: unknown } | null;
}

export interface DecodedEvent {
  event: RecordedEvent;
  /** Present on the first event of a command's append. */
  outcome: CommandOutcome | null;
  /** The $all position exactly as the server sent it (readLog checks commit = prepare). */
  rawPosition: { commit: bigint; prepare: bigint } | null;
}

export function isTenantId(value: string): boolean {
  return TENANT_ID_PATTERN.test(value);
}

export function assertTenantId(tenantId: string): void {
  if (!isTenantId(tenantId)) throw new EventStoreUsageError(`bad tenant id: ${tenantId}`);
}

/** 'ledger-<tenantId>.<streamId>'. */
export function esdbStreamName(tenantId: string, streamId: string): string {
  assertTenantId(tenantId);
  if (streamId.length === 0 || streamId.length > STREAM_ID_CHARS_MAX)
    throw new EventStoreUsageError('bad stream id');
  return `${LEDGER_STREAM_PREFIX}${tenantId}${TENANT_SEPARATOR}${streamId}`;
}

/** The server-side filter that selects exactly one tenant's streams from $all. */
export function tenantStreamPrefix(tenantId: string): string {
  assertTenantId(tenantId);
  return `${LEDGER_STREAM_PREFIX}${tenantId}${TENANT_SEPARATOR}`;
}

/** The inverse of esdbStreamName; null for any stream the ledger did not name. */
export function parseEsdbStreamName(name: string): { tenantId: string; streamId: string } | null {
  if (!name.startsWith(LEDGER_STREAM_PREFIX)) return null;
  const rest = name.slice(LEDGER_STREAM_PREFIX.length);
  const separator = rest.indexOf(TENANT_SEPARATOR);
  if (separator <= 0) return null;
  const tenantId = rest.slice(0, separator);
  const streamId = rest.slice(separator + 1);
  if (!isTenantId(tenantId) || streamId.length === 0 || streamId.length > STREAM_ID_CHARS_MAX) return null;
  return { tenantId, streamId };
}

/**
 * The port's expected version as EventStoreDB's expected revision. Versions count from 1, revisions from 0:
 * version n is revision n - 1, and version 0 (an empty stream) is NO_STREAM, as 'no-stream' is.
 */
export function expectedRevisionOf(expected: number): 'no_stream' | bigint;
export function expectedRevisionOf(expected: ExpectedVersion): AppendExpectedRevision;
export function expectedRevisionOf(expected: ExpectedVersion): AppendExpectedRevision {
  if (expected === 'any') return 'any';
  if (expected === 'no-stream' || expected === 0) return 'no_stream';
  return revisionOfVersion(expected);
}

export function revisionOfVersion(version: number): bigint {
  if (!Number.isSafeInteger(version) || version < 1)
    throw new Error(`a stream version is an integer >= 1, got ${version}`);
  return BigInt(version - 1);
}

export function versionOfRevision(revision: bigint): number {
  if (revision < 0n || revision >= BigInt(Number.MAX_SAFE_INTEGER))
    throw new Error(`stream revision out of range: ${revision}`);
  return Number(revision) + 1;
}

/** The same rule the SQL adapter applies: 'no-stream' and 0 both mean the stream must not exist. */
export function expectedVersionHolds(expected: ExpectedVersion, currentVersion: number | null): boolean {
  if (expected === 'any') return true;
  if (expected === 'no-stream' || expected === 0) return currentVersion === null;
  return currentVersion === expected;
}

/** uuid v5 of (tenant, command, index): every attempt of one command writes the same event ids. */
export function commandEventIds(tenantId: string, commandId: string, count: number): string[] {
  return Array.from({ length: count }, (_, index) => derivedId(tenantId, commandId, String(index)));
}

/** A $all commit position as the port's number. Refuses what a double cannot hold exactly, and 0 (see below). */
export function positionToNumber(commit: bigint): number {
  // 0 is refused too: 0 is the consumer's "nothing read yet" checkpoint, and the start of the log holds system
  // records, never a ledger event. A ledger event at 0 would be returned again on every read from 0.
  if (commit <= 0n || commit > BigInt(POSITION_MAX)) {
    throw new Error(`$all position ${commit} is outside 1..2^53-1: the port cannot carry it exactly`);
  }
  return Number(commit);
}

/**
 * The $all position to resume a read after `position`. Events appended through gRPC are implicitly committed, so
 * each event's commit and prepare positions are both its own log position (readLog asserts this on every event).
 */
export function positionOfNumber(position: number): { commit: bigint; prepare: bigint } {
  if (!Number.isSafeInteger(position) || position < 0) throw new Error(`bad log position: ${position}`);
  return { commit: BigInt(position), prepare: BigInt(position) };
}

/** ISO-8601 UTC with milliseconds, as the SQL adapter returns recordedAt. */
export function normalizeInstant(iso: string): string {
  const ms = Date.parse(iso);
  if (!Number.isFinite(ms)) throw new Error(`not an instant: ${iso}`);
  return new Date(ms).toISOString();
}

/** The caller's metadata plus the adapter's keys, as written to EventStoreDB. */
export function toStoredMetadata(
  metadata: EventMetadata,
  eventStreamHash: string,
  outcome: CommandOutcome | null,
): Record<string, unknown> {
  return {
    ...metadata,
    [STORED_HASH_KEY]: eventStreamHash,
    ...(outcome === null ? {} : { [STORED_OUTCOME_KEY]: outcome }),
  };
}

/**
 * Splits stored metadata back into the caller's EventMetadata and the adapter's keys. JSON keeps key order, so
 * metadataJson is byte for byte JSON.stringify of the metadata the caller gave: what the stream hash covers.
 */
export function fromStoredMetadata(raw: unknown): {
  metadata: EventMetadata;
  metadataJson: string;
  streamHash: string;
  outcome: CommandOutcome | null;
} {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new Error('stored event metadata is not a JSON object');
  const {
    [STORED_HASH_KEY]: storedHash,
    [STORED_OUTCOME_KEY]: storedOutcome,
    ...rest
  } = raw as Record<string, unknown>;
  if (typeof storedHash !== 'string' || !/^[0-9a-f]{64}$/.test(storedHash))
    throw new Error('stored event metadata has no stream hash');
  const metadata = rest as unknown as EventMetadata;
  if (typeof metadata.tenantId !== 'string' || typeof metadata.recordedAt !== 'string') {
    throw new Error('stored event metadata has no tenantId or recordedAt');
  }
  return {
    metadata,
    metadataJson: JSON.stringify(metadata),
    streamHash: storedHash,
    outcome: storedOutcome === undefined ? null : parseOutcome(storedOutcome),
  };
}

function parseOutcome(raw: unknown): CommandOutcome {
  const value = raw as Partial<CommandOutcome> | null;
  const response = value?.response;
  const responseOk =
    response === null ||
    (typeof response === 'object' && response !== undefined && typeof response.status === 'number');
  if (
    typeof value?.commandId !== 'string' ||
    typeof value.requestHash !== 'string' ||
    typeof value.eventCount !== 'number' ||
    !Number.isSafeInteger(value.eventCount) ||
    value.eventCount < 1 ||
    value.eventCount > APPEND_EVENTS_MAX ||
    !responseOk
  ) {
    throw new Error('stored command outcome is malformed');
  }
  return {
    commandId: value.commandId,
    requestHash: value.requestHash,
    eventCount: value.eventCount,
    response:
      response === null || response === undefined ? null : { status: response.status, body: response.body },
  };
}

/** A stored event as the port's RecordedEvent. Anything that is not an event the ledger wrote fails loudly. */
export function decodeStoredEvent(stored: EsdbStoredEvent): DecodedEvent {
  const names = parseEsdbStreamName(stored.streamName);
  if (names === null) throw new Error(`stream ${stored.streamName} is not a ledger stream`);
  if (!stored.isJson) throw new Error(`event ${stored.eventId} in ${stored.streamName} is not JSON`);
  const {
    metadata,
    metadataJson,
    streamHash: eventStreamHash,
    outcome,
  } = fromStoredMetadata(stored.metadata);
  if (metadata.tenantId !== names.tenantId) {
    throw new Error(`event ${stored.eventId} in ${stored.streamName} names tenant ${metadata.tenantId}`);
  }
  const dataJson = JSON.stringify(stored.data) as string | undefined;
  if (dataJson === undefined)
    throw new Error(`event ${stored.eventId} in ${stored.streamName} has no JSON data`);
  if (stored.position === null) {
    throw new Error(
      `the server sent no $all position for ${stored.streamName}@${stored.revision} (needs EventStoreDB >= 22.6)`,
    );
  }
  return {
    event: {
      eventId: stored.eventId,
      type: stored.type,
      data: stored.data,
      metadata,
      tenantId: names.tenantId,
      streamId: names.streamId,
      streamVersion: versionOfRevision(stored.revision),
      partition: 0,
      position: positionToNumber(stored.position.commit),
      recordedAt: normalizeInstant(metadata.recordedAt),
      streamHash: eventStreamHash,
      partitionHash: '',
      dataJson,
      metadataJson,
    },
    outcome,
    rawPosition: stored.position,
  };
}

/**
 * The events of one append, hashed onto the stream's current head: what goes to EventStoreDB, and the RecordedEvents
 * to return (position 0 until the server assigns one). The hash inputs are those of the SQL adapter, so one
 * StreamChainVerifier checks both stores.
 */
export function buildAppend(
  request: AppendRequest,
  eventIds: readonly string[],
  currentVersion: number,
  previousHash: string,
  outcome: CommandOutcome | null,
): { stored: EsdbNewEvent[]; recorded: RecordedEvent[] } {
  if (eventIds.length !== request.events.length) throw new Error('one event id per event');
  const stored: EsdbNewEvent[] = [];
  const recorded: RecordedEvent[] = [];
  let previous = previousHash;
  request.events.forEach((event, index) => {
    const eventId = eventIds[index]!;
    const streamVersion = currentVersion + 1 + index;
    const dataJson = JSON.stringify(event.data);
    const metadataJson = JSON.stringify(event.metadata);
    const eventStreamHash = streamHash(previous, {
      tenantId: request.tenantId,
      streamId: request.streamId,
      streamVersion,
      eventId,
      type: event.type,
      dataJson,
      metadataJson,
    });
    stored.push({
      eventId,
      type: event.type,
      data: event.data,
      metadata: toStoredMetadata(event.metadata, eventStreamHash, index === 0 ? outcome : null),
    });
    recorded.push({
      eventId,
      type: event.type,
      data: event.data,
      metadata: event.metadata,
      tenantId: request.tenantId,
      streamId: request.streamId,
      streamVersion,
      partition: 0,
      position: 0,
      recordedAt: normalizeInstant(event.metadata.recordedAt),
      streamHash: eventStreamHash,
      partitionHash: '',
      dataJson,
      metadataJson,
    });
    previous = eventStreamHash;
  });
  return { stored, recorded };
}

/**
 * The checks of the SQL adapter's validateAppend (the port's limits), plus what EventStoreDB adds: the adapter's
 * metadata keys are reserved, data must be JSON, and an instant must parse (it is hashed and normalised).
 */
export function validateAppendRequest(request: AppendRequest): void {
  validateAppend(request);
  const fail = (message: string): never => {
    throw new EventStoreUsageError(message);
  };
  for (const event of request.events) {
    if (!Number.isFinite(Date.parse(event.metadata.recordedAt)))
      fail(`recordedAt is not an instant: ${event.metadata.recordedAt}`);
    if (STORED_HASH_KEY in event.metadata || STORED_OUTCOME_KEY in event.metadata) {
      fail(`metadata keys ${STORED_HASH_KEY} and ${STORED_OUTCOME_KEY} are the adapter's`);
    }
    if (event.type.length === 0) fail('an event needs a type');
    if ((JSON.stringify(event.data) as string | undefined) === undefined)
      fail(`event ${event.type} has data JSON cannot carry`);
  }
}

/** kurrentdb:// is the same protocol under the new name; this client (v6) only parses esdb://. */
export function toEsdbConnectionString(value: string): string {
  const match = /^(esdb|kurrentdb)(\+discover)?:\/\/(.+)$/.exec(value);
  if (match === null)
    throw new Error(`not an EventStoreDB connection string: ${value.replace(/\/\/[^@/]*@/, '//***@')}`);
  return `esdb${match[2] ?? ''}://${match[3]!}`;
}
