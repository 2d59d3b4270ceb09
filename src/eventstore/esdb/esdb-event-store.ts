import { isoToSqlTime, type Pool } from '../../db/pool.ts';
import { GENESIS_HASH } from '../hash.ts';
import {
  ConcurrencyError,
  DuplicateCommandError,
  EventStoreUsageError,
  READ_EVENTS_MAX,
  type AppendRequest,
  type AppendResult,
  type CommandRecord,
  type EventStore,
  type PartitionHead,
  type ReadStreamOptions,
  type RecordedEvent,
  type Snapshot,
  type StreamHead,
} from '../port.ts';
import {
  APPEND_DEADLINE_MS,
  ClientEsdbLog,
  EsdbUnknownOutcomeError,
  type EsdbAppendOutcome,
  type EsdbLog,
} from './esdb-log.ts';
import {
  assertTenantId,
  buildAppend,
  commandEventIds,
  decodeStoredEvent,
  esdbStreamName,
  expectedRevisionOf,
  expectedVersionHolds,
  positionOfNumber,
  positionToNumber,
  revisionOfVersion,
  tenantStreamPrefix,
  validateAppendRequest,
  versionOfRevision,
  type CommandOutcome,
  type DecodedEvent,
  type EsdbStoredEvent,
} from './mapping.ts';
import {
  COMMAND_LEASE_MS,
  EsdbSideTables,
  type AbandonedCommand,
  type Claim,
  type ClaimRequest,
} from './side-tables.ts';

export { CommandInProgressError } from './side-tables.ts';

/** Appends tried per call: the first, then retries after an unknown outcome or (expected version 'any') a lost race. */
export const APPEND_ATTEMPTS_MAX = 3;
/** Pause before retrying after an unknown outcome, times the attempt number: time for a leader election. */
export const APPEND_RETRY_BACKOFF_MS = 200;
/** No append is started this long after the command was claimed: it could otherwise outlive the claim's lease. */
export const APPEND_START_WINDOW_MS = 20_000;
/** Abandoned commands resolved before one claim gives up (each resolution frees or records one command). */
const CLAIM_ROUNDS_MAX = 4;
/** Events read when looking for an earlier attempt's events; more means an operator should look. */
const LANDED_SEARCH_EVENTS_MAX = READ_EVENTS_MAX;
/** Pages read past the recorded log head by partitionHeads. */
const HEAD_CATCH_UP_PAGES_MAX = 16;

if (APPEND_START_WINDOW_MS + APPEND_DEADLINE_MS >= COMMAND_LEASE_MS) {
  throw new Error('a command lease must outlast the last append it allows');
}

/**
 * The EventStoreDB adapter (DESIGN.md, "EventStoreDB"; docs/eventstore-esdb.md has the long form).
 *
 * Layout. A ledger stream is the EventStoreDB stream `ledger-<tenantId>.<streamId>` ('.' because tenant ids contain
 * '-', mapping.ts). $all is one totally ordered log, so `partitions = 1`: readLog(tenant, 0, after, limit) reads $all
 * after commit position `after` through a server-side stream-name prefix filter `ledger-<tenantId>.`, and a
 * RecordedEvent's `position` is the event's commit position (a safe integer: 2^53 bytes of log is 8 PiB), its
 * `partition` 0 and its `partitionHash` ''. Version n is revision n - 1; an empty stream is NO_STREAM.
 *
 * Hash chain. Each event's streamHash is computed here exactly as the SQL adapter does (hash.ts) over
 * JSON.stringify(data) and JSON.stringify(the caller's metadata), chained on the previous event's hash read from the
 * stream's tail. EventStoreDB's metadata is `{ ...metadata, streamHash }` (and, on a command's first event,
 * `commandOutcome`); reads strip both, so metadataJson is again the caller's metadata and StreamChainVerifier holds.
 *
 * What cannot live in EventStoreDB transactionally (command ids, unique keys, snapshots, the tenant registry) lives in
 * the SQL database, in the SQL adapter's tables (side-tables.ts has the row states). One append:
 *   1. read the stream's tail (version, hash);
 *   2. SQL transaction: claim the command id (a pending row with a lease) and every unique key; a recorded command is
 *      a DuplicateCommandError, a held key a UniqueKeyError, a command another request is writing a
 *      CommandInProgressError (a ConcurrencyError: retry);
 *   3. append with the expected revision of that tail, never 'any' (the hash chain needs the exact predecessor; for
 *      expected version 'any' a lost race is retried on the new tail). With a command, every event id is
 *      derivedId(tenant, commandId, index) and the command's outcome rides in the first event's metadata;
 *   4. SQL transaction: record the command's outcome, the stream row (head, snapshot) guarded by version, and the
 *      tenant's last log position.
 * Events can land in step 3 while the process dies before step 4, or the append can end in an unknown outcome. The
 * pending row keeps `first_version`, the lowest version the command's events can land at, so the next attempt reads
 * the stream from there for the first derived id: found, the earlier attempt's events and outcome stand and the
 * caller gets a DuplicateCommandError with that outcome; not found, it appends. That read and the concrete expected
 * revision make double posting impossible without trusting EventStoreDB's own event-id check (best effort only: it
 * can even answer "written" for another request's events that carry the same ids, so every retried write is read
 * back and compared by hash). A claim whose write definitely did not land (ConcurrencyError, a refused write) is
 * released, freeing the command id and keys as the SQL adapter's rollback does; one that may have landed keeps its
 * row. Cost of a one-event command: 2 EventStoreDB round trips and 2 SQL transactions (the SQL adapter: one).
 */
export class EsdbEventStore implements EventStore {
  readonly kind = 'esdb' as const;
  readonly partitions = 1;
  private readonly side: EsdbSideTables;

  constructor(
    private readonly log: EsdbLog,
    pool: Pool,
  ) {
    this.side = new EsdbSideTables(pool);
  }

  /** The pool belongs to the caller; the EventStoreDB client belongs to the store and is disposed by close(). */
  static connect(connectionString: string, pool: Pool): EsdbEventStore {
    return new EsdbEventStore(ClientEsdbLog.connect(connectionString), pool);
  }

  async append(request: AppendRequest): Promise<AppendResult> {
    validateAppendRequest(request);
    const { tenantId, streamId } = request;
    const streamName = esdbStreamName(tenantId, streamId);
    await this.side.registerTenant(tenantId);
    const command = request.command ?? null;
    const eventIds =
      command === null
        ? request.events.map((event) => event.eventId)
        : commandEventIds(tenantId, command.commandId, request.events.length);
    const uniqueKeys = [...new Set(request.uniqueKeys ?? [])].sort();

    const startTail = await this.log.readLast(streamName);
    const startVersion = startTail === null ? 0 : versionOfRevision(startTail.revision);
    const claim = await this.claim({
      tenantId,
      streamId,
      command: command === null ? null : { commandId: command.commandId, requestHash: command.requestHash },
      uniqueKeys,
      searchFromVersion: startVersion + 1,
    });
    const claimedAtMs = Date.now();
    const progress = { uncertain: false };
    let written: WriteResult;
    try {
      written = await this.write(
        {
          request,
          streamName,
          eventIds,
          searchFromVersion: claim.searchFromVersion,
          // A resumed claim reads the tail again: it must look for events that landed before the claim was taken.
          firstTail: claim.resumed ? undefined : startTail,
          outcome:
            command === null
              ? null
              : {
                  commandId: command.commandId,
                  requestHash: command.requestHash,
                  eventCount: request.events.length,
                  response: command.response ?? null,
                },
          assertMayAppend: () => {
            if (command !== null && Date.now() - claimedAtMs > APPEND_START_WINDOW_MS) {
              throw new Error(
                `command ${command.commandId}: no append starts ${APPEND_START_WINDOW_MS} ms after its claim`,
              );
            }
          },
        },
        progress,
      );
    } catch (error) {
      // Cleanup is best effort: a claim left behind is pending, its lease expires and the next contender resolves it.
      if (error instanceof ConcurrencyError || !progress.uncertain) {
        await this.side.release(claim).catch(() => undefined);
      } else {
        await this.side.endLease(claim).catch(() => undefined);
      }
      throw error;
    }

    // From here on the events are in EventStoreDB: a failure keeps the pending row (ending its lease), and the next
    // attempt finds the events and records them.
    if (written.kind === 'landed-earlier') {
      const { outcome } = written;
      await this.recordLanded(tenantId, streamId, written.events, outcome, uniqueKeys).catch(
        async (error: unknown) => {
          await this.side.endLease(claim).catch(() => undefined);
          throw error;
        },
      );
      const record = await this.side.findRecordedCommand(tenantId, outcome.commandId);
      if (record === null)
        throw new Error(`command ${outcome.commandId} was just recorded but cannot be read`);
      throw new DuplicateCommandError(record);
    }
    const first = written.events[0]!;
    const last = written.events[written.events.length - 1]!;
    try {
      await this.side.recordAppend({
        tenantId,
        streamId,
        command:
          command === null
            ? null
            : {
                commandId: command.commandId,
                requestHash: command.requestHash,
                response: command.response ?? null,
              },
        uniqueKeys,
        firstVersion: first.streamVersion,
        eventCount: written.events.length,
        lastHash: last.streamHash,
        lastPosition: last.position,
        recordedAt: first.recordedAt,
        snapshot: request.snapshot ?? null,
      });
    } catch (error) {
      await this.side.endLease(claim).catch(() => undefined);
      throw error;
    }
    return { streamVersion: last.streamVersion, events: written.events };
  }

  /** Step 2, resolving abandoned commands that stand in the way (each round frees or records one). */
  private async claim(request: ClaimRequest): Promise<Claim> {
    for (let round = 1; ; round++) {
      const outcome = await this.side.claim(request);
      if (outcome.kind === 'claimed') return outcome.claim;
      if (round >= CLAIM_ROUNDS_MAX) {
        throw new Error(
          `stream ${request.streamId}: still blocked by abandoned commands after ${round} rounds`,
        );
      }
      await this.resolveAbandoned(outcome.abandoned);
    }
  }

  /** An expired pending command: its events landed (record them) or they did not and cannot (delete it). */
  private async resolveAbandoned(abandoned: AbandonedCommand): Promise<void> {
    const streamName = esdbStreamName(abandoned.tenantId, abandoned.streamId);
    const tail = await this.log.readLast(streamName);
    const tailVersion = tail === null ? 0 : versionOfRevision(tail.revision);
    const firstId = commandEventIds(abandoned.tenantId, abandoned.commandId, 1)[0]!;
    const run =
      tailVersion >= abandoned.searchFromVersion
        ? await this.findLanded(streamName, firstId, abandoned.searchFromVersion, tailVersion, 1)
        : null;
    if (run === null) {
      await this.side.deleteAbandoned(abandoned);
      return;
    }
    const outcome = landedOutcome(run, abandoned.commandId);
    await this.recordLanded(
      abandoned.tenantId,
      abandoned.streamId,
      run.map((decoded) => decoded.event),
      outcome,
      [],
    );
  }

  private async recordLanded(
    tenantId: string,
    streamId: string,
    events: readonly RecordedEvent[],
    outcome: CommandOutcome,
    uniqueKeys: readonly string[],
  ): Promise<void> {
    const first = events[0]!;
    const last = events[events.length - 1]!;
    await this.side.recordAppend({
      tenantId,
      streamId,
      command: { commandId: outcome.commandId, requestHash: outcome.requestHash, response: outcome.response },
      uniqueKeys,
      firstVersion: first.streamVersion,
      eventCount: events.length,
      lastHash: last.streamHash,
      lastPosition: last.position,
      recordedAt: first.recordedAt,
      snapshot: null,
    });
  }

  /**
   * Step 3. Each round reads the tail, looks for events this command already landed, checks the caller's expected
   * version, and appends at exactly that tail. A wrong-expected-revision or an unknown outcome goes round again, so
   * the last word is always a fresh read: an earlier round's write that landed late is found, never written twice.
   */
  private async write(plan: WritePlan, progress: { uncertain: boolean }): Promise<WriteResult> {
    const { request, streamName } = plan;
    const ownFirstHashes = new Set<string>();
    let lastUnknown: EsdbUnknownOutcomeError | null = null;
    for (let attempt = 1; ; attempt++) {
      const tail =
        attempt === 1 && plan.firstTail !== undefined ? plan.firstTail : await this.log.readLast(streamName);
      const head = tail === null ? null : decodeStoredEvent(tail).event;
      const currentVersion = head?.streamVersion ?? 0;
      if (currentVersion >= plan.searchFromVersion) {
        const run = await this.findLanded(
          streamName,
          plan.eventIds[0]!,
          plan.searchFromVersion,
          currentVersion,
          plan.eventIds.length,
        );
        if (run !== null) return this.classify(plan, run, ownFirstHashes);
      }
      if (!expectedVersionHolds(request.expectedVersion, head === null ? null : currentVersion)) {
        throw new ConcurrencyError(
          request.streamId,
          request.expectedVersion,
          head === null ? null : currentVersion,
        );
      }
      if (attempt > APPEND_ATTEMPTS_MAX) {
        // An unknown outcome may still land: say so, so the claim is kept. Lost races (expected 'any') are definite.
        if (lastUnknown !== null) throw lastUnknown;
        throw new ConcurrencyError(request.streamId, request.expectedVersion, currentVersion);
      }
      const built = buildAppend(
        request,
        plan.eventIds,
        currentVersion,
        head?.streamHash ?? GENESIS_HASH,
        plan.outcome,
      );
      ownFirstHashes.add(built.recorded[0]!.streamHash);
      plan.assertMayAppend();
      let outcome: EsdbAppendOutcome;
      try {
        outcome = await this.log.append(streamName, built.stored, expectedRevisionOf(currentVersion));
      } catch (error) {
        if (!(error instanceof EsdbUnknownOutcomeError)) throw error;
        progress.uncertain = true;
        lastUnknown = error;
        await sleep(APPEND_RETRY_BACKOFF_MS * attempt);
        continue;
      }
      if (outcome.kind === 'wrong-expected-revision') {
        lastUnknown = null;
        continue;
      }
      const lastVersion = versionOfRevision(outcome.lastRevision);
      if (lastVersion !== currentVersion + built.recorded.length) {
        throw new Error(
          `${streamName}: appended at version ${currentVersion + 1} but the server reports ${lastVersion}`,
        );
      }
      if (built.recorded.length === 1 && !progress.uncertain && outcome.lastPosition !== null) {
        return {
          kind: 'written',
          events: [{ ...built.recorded[0]!, position: positionToNumber(outcome.lastPosition.commit) }],
        };
      }
      // Several events (their positions), or a retry (the server's id check may have answered for other events with
      // these ids without writing): read them back and compare hashes.
      const run = await this.readRun(streamName, currentVersion + 1, built.recorded.length);
      return this.classify(plan, run, ownFirstHashes);
    }
  }

  /** Events found at the head of a run: this call's own (written), or an earlier attempt's (landed-earlier). */
  private classify(plan: WritePlan, run: DecodedEvent[], ownFirstHashes: ReadonlySet<string>): WriteResult {
    const first = run[0]!;
    if (ownFirstHashes.has(first.event.streamHash)) {
      const ids = run.map((decoded) => decoded.event.eventId);
      if (ids.length !== plan.eventIds.length || ids.some((id, index) => id !== plan.eventIds[index])) {
        throw new Error(
          `${plan.streamName}: events read back at version ${first.event.streamVersion} are not the ones written`,
        );
      }
      return { kind: 'written', events: run.map((decoded) => decoded.event) };
    }
    if (plan.outcome === null) {
      throw new EventStoreUsageError(
        `event ${first.event.eventId} is already in stream ${plan.request.streamId}: event ids must be unique`,
      );
    }
    return {
      kind: 'landed-earlier',
      events: run.map((decoded) => decoded.event),
      outcome: landedOutcome(run, plan.outcome.commandId),
    };
  }

  /**
   * The run of events starting with `firstEventId` between two versions of a stream, or null. Its length is the
   * command outcome's event count when the first event carries one, else `length`.
   */
  private async findLanded(
    streamName: string,
    firstEventId: string,
    fromVersion: number,
    toVersion: number,
    length: number,
  ): Promise<DecodedEvent[] | null> {
    const count = toVersion - fromVersion + 1;
    if (count > LANDED_SEARCH_EVENTS_MAX) {
      throw new Error(
        `${streamName}: looking for event ${firstEventId} would read ${count} events; resolve the command by hand`,
      );
    }
    const window = (await this.log.readForward(streamName, revisionOfVersion(fromVersion), count)).map(
      decodeStoredEvent,
    );
    const index = window.findIndex((decoded) => decoded.event.eventId === firstEventId);
    if (index < 0) return null;
    const runLength = window[index]!.outcome?.eventCount ?? length;
    const run = window.slice(index, index + runLength);
    // An append is atomic and was complete when the tail was read, so all of it lies inside the window.
    if (run.length !== runLength)
      throw new Error(`${streamName}: found ${run.length} of the ${runLength} events of one append`);
    return run;
  }

  private async readRun(streamName: string, fromVersion: number, count: number): Promise<DecodedEvent[]> {
    const run = (await this.log.readForward(streamName, revisionOfVersion(fromVersion), count)).map(
      decodeStoredEvent,
    );
    if (
      run.length !== count ||
      run.some((decoded, index) => decoded.event.streamVersion !== fromVersion + index)
    ) {
      throw new Error(
        `${streamName}: reading back versions ${fromVersion}..${fromVersion + count - 1} returned ${run.length} events`,
      );
    }
    return run;
  }

  async readStream(
    tenantId: string,
    streamId: string,
    options: ReadStreamOptions = {},
  ): Promise<RecordedEvent[]> {
    const streamName = esdbStreamName(tenantId, streamId);
    const fromVersion = options.fromVersion ?? 1;
    if (!Number.isSafeInteger(fromVersion) || fromVersion < 1)
      throw new EventStoreUsageError(`bad fromVersion: ${fromVersion}`);
    const limit = Math.min(options.limit ?? READ_EVENTS_MAX, READ_EVENTS_MAX);
    if (limit <= 0) return [];
    const events = (await this.log.readForward(streamName, revisionOfVersion(fromVersion), limit)).map(
      (stored) => decodeStoredEvent(stored).event,
    );
    events.forEach((event, index) => {
      if (
        event.streamVersion !== fromVersion + index ||
        event.tenantId !== tenantId ||
        event.streamId !== streamId
      ) {
        throw new Error(
          `${streamName}: read ${event.streamId}@${event.streamVersion} where version ${fromVersion + index} belongs`,
        );
      }
    });
    return events;
  }

  async readLog(
    tenantId: string,
    partition: number,
    afterPosition: number,
    limit: number,
  ): Promise<RecordedEvent[]> {
    if (partition !== 0)
      throw new EventStoreUsageError(`EventStoreDB has one log, partition 0; asked for ${partition}`);
    if (!Number.isSafeInteger(afterPosition) || afterPosition < 0)
      throw new EventStoreUsageError(`bad position: ${afterPosition}`);
    const count = Math.min(limit, READ_EVENTS_MAX);
    if (count <= 0) return [];
    const stored = await this.log.readAllAfter(
      tenantStreamPrefix(tenantId),
      positionOfNumber(afterPosition),
      count,
    );
    let previous = afterPosition;
    return stored.map((item) => {
      const decoded = decodeStoredEvent(item);
      const { event, rawPosition } = decoded;
      if (event.tenantId !== tenantId)
        throw new Error(`the log of ${tenantId} returned an event of ${event.tenantId}`);
      // Resuming "after commit position p" is exact only if no two events share one: true of gRPC appends, whose
      // events are each implicitly committed at their own log position (commit = prepare). Anything else (legacy
      // explicit transactions) could be skipped between pages, so it stops the read rather than risk that.
      if (rawPosition === null || rawPosition.commit !== rawPosition.prepare) {
        throw new Error(`${event.streamId}@${event.streamVersion}: $all position with commit != prepare`);
      }
      if (event.position <= previous) {
        throw new Error(`the log of ${tenantId} went from position ${previous} to ${event.position}`);
      }
      previous = event.position;
      return event;
    });
  }

  async streamHead(tenantId: string, streamId: string): Promise<StreamHead | null> {
    const streamName = esdbStreamName(tenantId, streamId);
    const [tail, row] = await Promise.all([
      this.log.readLast(streamName),
      this.side.snapshotRow(tenantId, streamId),
    ]);
    if (tail === null) return null;
    const head = decodeStoredEvent(tail).event;
    const snapshot = row?.snapshot ?? null;
    const snapshotVersion = snapshot === null || row === null ? 0 : row.version;
    if (snapshotVersion > head.streamVersion) {
      throw new Error(
        `${streamName}: snapshot of version ${snapshotVersion} is ahead of the stream at ${head.streamVersion}`,
      );
    }
    return { version: head.streamVersion, lastHash: head.streamHash, snapshot, snapshotVersion };
  }

  /**
   * The tenant's last $all position. The SQL row holds the last one recorded in step 4; events whose step 4 has not
   * run (yet) lie after it, so the log is read on from there to its end. There is no partition hash chain ('').
   */
  async partitionHeads(tenantId: string): Promise<PartitionHead[]> {
    assertTenantId(tenantId);
    const recorded = await this.side.recordedLogHead(tenantId);
    if (recorded === null) return [];
    let position = recorded;
    for (let page = 0; page < HEAD_CATCH_UP_PAGES_MAX; page++) {
      const events = await this.readLog(tenantId, 0, position, READ_EVENTS_MAX);
      if (events.length === 0) return [{ partition: 0, position, lastHash: '' }];
      position = events[events.length - 1]!.position;
    }
    throw new Error(
      `the log of ${tenantId} runs more than ${HEAD_CATCH_UP_PAGES_MAX} pages past its recorded head`,
    );
  }

  async findCommand(tenantId: string, commandId: string): Promise<CommandRecord | null> {
    return this.side.findRecordedCommand(tenantId, commandId);
  }

  async findUniqueKey(tenantId: string, key: string): Promise<string | null> {
    return this.side.findUniqueKey(tenantId, key);
  }

  async recordRejection(
    tenantId: string,
    streamId: string,
    command: { commandId: string; requestHash: string; response: { status: number; body: unknown } },
    recordedAt: string,
  ): Promise<CommandRecord | null> {
    return this.side.recordRejection(tenantId, streamId, command, isoToSqlTime(recordedAt));
  }

  async saveSnapshot(tenantId: string, streamId: string, version: number, snapshot: Snapshot): Promise<void> {
    const tail = await this.log.readLast(esdbStreamName(tenantId, streamId));
    if (tail === null) return;
    const head = decodeStoredEvent(tail).event;
    if (head.streamVersion !== version) return;
    await this.side.saveSnapshot(tenantId, streamId, version, head.streamHash, snapshot, head.recordedAt);
  }

  async listTenants(): Promise<string[]> {
    return this.side.listTenants();
  }

  async close(): Promise<void> {
    await this.log.close();
  }
}

interface WritePlan {
  request: AppendRequest;
  streamName: string;
  eventIds: readonly string[];
  searchFromVersion: number;
  /** The tail read before claiming, when it may be used as the first round's tail; undefined to read it again. */
  firstTail: EsdbStoredEvent | null | undefined;
  outcome: CommandOutcome | null;
  assertMayAppend(): void;
}

type WriteResult =
  | { kind: 'written'; events: RecordedEvent[] }
  | { kind: 'landed-earlier'; events: RecordedEvent[]; outcome: CommandOutcome };

function landedOutcome(run: readonly DecodedEvent[], commandId: string): CommandOutcome {
  const outcome = run[0]!.outcome;
  if (outcome === null || outcome.commandId !== commandId) {
    throw new Error(`event ${run[0]!.event.eventId} has the id of command ${commandId} but not its outcome`);
  }
  const expectedIds = commandEventIds(run[0]!.event.tenantId, commandId, outcome.eventCount);
  if (run.some((decoded, index) => decoded.event.eventId !== expectedIds[index])) {
    throw new Error(`the events of command ${commandId} are not consecutive in ${run[0]!.event.streamId}`);
  }
  return outcome;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
