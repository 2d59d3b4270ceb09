/**
 * Pass B, one slice of the member id space, inside one consistent snapshot: a merge join, in member id
 * order, of the member streams' events (by stream id and version) with the streams heads and the read
 * models (member_accounts, member_lots, member_holds, member_category_purchases, member_tags, ledger_entries).
 * For each member it
 * - verifies the stream's hash chain and its head in `streams` (StreamChainVerifier);
 * - folds the events with the domain's evolveMember (which re-checks every balanceAfter, lot and hold);
 * - checks, event by event, that `available` (balance minus the holds active at the event's time) never
 *   goes below zero except through a refund's reversal;
 * - compares the read models with the fold as of the projector's checkpoint (read in the same snapshot),
 *   field by field: the account row, every open lot, every open hold, every ledger entry, every category's
 *   purchase counts, and the member's tags (where the partition's tags follow the tenant's current rules);
 * - adds up, per partition, the postings and the last export's recount of the events at or below the
 *   audit's starting checkpoints, from the data it parses for the fold (postings.ts).
 * Memory: two pages per cursor (the one consumed and the next, fetched meanwhile) and one member's state; a
 * member's events and ledger entries are compared as they stream by, so even a stream of millions of
 * events is never held.
 *
 * Cost: this pass is most of the audit's time (docs/audit.md, "Cost"), so its rows come as arrays
 * (rowsAsArray) with only the columns it reads, the cursors answer without a promise per row, and nothing
 * is parsed or built per event that the checks do not use (metadata is hashed, never parsed).
 */
import { createHash } from 'node:crypto';
import type { RowDataPacket } from 'mysql2/promise';
import { memberIdOfStream, memberStreamId } from '../commands/streams.ts';
import { sqlInt, sqlTimeToIso, type Pool, type PoolConnection } from '../db/pool.ts';
import { assert } from '../domain/assert.ts';
import {
  evolveMember,
  initialMemberState,
  maskPhone,
  MOVEMENT_KINDS,
  movementsOf,
  type MemberEvent,
  type MemberState,
  type Movement,
  type MovementKind,
} from '../domain/member/index.ts';
import { partitionOf } from '../eventstore/partition.ts';
import { scratchEvent, StreamChainVerifier } from '../eventstore/verify.ts';
import { LEDGER_ENTRY_VALUE_COLUMNS } from '../projections/tables.ts';
import {
  encodeRecent,
  evaluateTags,
  loadTagRuleSet,
  withPurchase,
  type CategoryPurchases,
} from '../projections/tags.ts';
import {
  READ_EVENTS_MAX,
  type EventStore,
  type PartitionHead,
  type RecordedEvent,
} from '../eventstore/port.ts';
import { compareKeys, KeysetCursor } from './cursor.ts';
import { ExportRecount, type ExportRecountPart } from './export-recount.ts';
import { POSTING_TYPES, PostingSums, type AccountSums } from './postings.ts';
import { chainProblemToDiscrepancy } from './partition-pass.ts';
import type { Discrepancy, DiscrepancyLog } from './report.ts';
import { withSnapshot } from './snapshot.ts';

/** Each kind's index in MOVEMENT_KINDS (the lifetime arrays below are in that order). */
const MOVEMENT_KIND_INDEX = Object.fromEntries(
  MOVEMENT_KINDS.map((kind, index) => [kind, index]),
) as Readonly<Record<MovementKind, number>>;

/** A slice of member ids: [low, high), high null = unbounded. */
export interface MemberSlice {
  low: string;
  high: string | null;
}

/**
 * The slices audit runs in parallel. Member ids are uuids in practice, so the first character splits them
 * into 16 even slices; any other id still falls in exactly one slice (the first and last are open-ended).
 */
export function memberSlices(): MemberSlice[] {
  const bounds = ['', ...'123456789abcdef'.split('')];
  return bounds.map((low, index) => ({ low, high: bounds[index + 1] ?? null }));
}

export interface SlicePassInput {
  pool: Pool;
  tenantId: string;
  slice: MemberSlice;
  pageRows: number;
  /** Events per page of the events cursor (rows carry the whole event). */
  eventPageRows: number;
  /** Each partition's checkpoint when the audit started: the events at or below it post here (postings.ts). */
  checkpointsAtStart: ReadonlyMap<number, number>;
  /** The last finance export, recounted here from the same events as the postings (export-recount.ts). */
  lastExport: { toAt: string; heads: readonly PartitionHead[] } | null;
  /**
   * null: the events come from the SQL event store's tables in this snapshot. Otherwise from that store's
   * port (EventStoreDB), each stream up to its head in `streams` as this snapshot has it.
   */
  eventStore: EventStore | null;
  /** The event store's number of log partitions (a stream's partition is partitionOf its id). */
  partitions: number;
  onEvents?: (count: number) => void;
}

export interface SlicePassResult {
  events: number;
  members: number;
  /** Postings of the slice's events at or below the starting checkpoints, per partition. */
  postingsBelowStart: [partition: number, sums: AccountSums][];
  /** The last export recounted from those events, one part per partition (none without an export). */
  exportRecounts: ExportRecountPart[];
}

/**
 * The events cursor's row, as the driver returns it (rowsAsArray: an array per row, no object, no column
 * names), holding only what this pass reads: the chain's inputs, the place in the log, and the JSON.
 */
type EventRow = [
  streamId: string,
  streamVersion: number,
  partition: number,
  position: number,
  eventId: string,
  type: string,
  dataJson: string,
  metadataJson: string,
  streamHash: string,
];
/** The columns of EventRow, in its order (bench:audit's floor reads the same: scripts/lib/audit-floor.ts). */
export const SLICE_EVENT_COLUMNS =
  'stream_id, stream_version, partition_no, position, event_id, event_type, data, metadata, stream_hash';

interface StreamRow {
  streamId: string;
  version: number;
  lastHash: string;
}

interface AccountRow {
  memberId: string;
  values: Record<string, string | number>;
}

interface KeyedRow {
  memberId: string;
  id: string;
  values: Record<string, string | number | null>;
}

/** A ledger entry as the driver returns it; LEDGER_FIELDS names the compared columns from index 3 on. */
type LedgerRow = [
  memberId: string,
  streamVersion: number,
  movementNo: number,
  ...values: (string | number | null)[],
];
const LEDGER_FIELDS = LEDGER_ENTRY_VALUE_COLUMNS;
const LEDGER_VALUES_OFFSET = 3;
const LEDGER_AT = LEDGER_FIELDS.indexOf('at');

const STREAM_PREFIX = memberStreamId('');
/** The first stream id after every 'member-...' id ('.' follows '-'). */
const STREAM_PREFIX_END = `${STREAM_PREFIX.slice(0, -1)}.`;

const time = (value: unknown) => sqlTimeToIso(String(value));

/**
 * A DATETIME(3) string ('2026-01-02 03:04:05.678') equals a canonical instant ('2026-01-02T03:04:05.678Z'),
 * without building either form per row; anything not in those exact shapes is compared the long way.
 */
export function sqlTimeEqualsIso(sql: unknown, iso: string): boolean {
  if (typeof sql !== 'string') return false;
  if (sql.length !== 23 || iso.length !== 24 || iso.charCodeAt(23) !== 90 /* Z */) return time(sql) === iso;
  if (sql.charCodeAt(10) !== 32 /* space */ || iso.charCodeAt(10) !== 84 /* T */) return time(sql) === iso;
  for (let i = 0; i < 23; i++) if (i !== 10 && sql.charCodeAt(i) !== iso.charCodeAt(i)) return false;
  return true;
}

/** The driver's rows of a rowsAsArray query. */
async function arrayRows(connection: PoolConnection, sql: string, params: unknown[]): Promise<unknown[][]> {
  const [rows] = await connection.query<RowDataPacket[]>({ sql, rowsAsArray: true }, params);
  return rows as unknown as unknown[][];
}

/** Streams whose first events pass B reads at once through the port (each read is a round trip). */
const STREAMS_READ_AT_ONCE = 8;

/**
 * A page of the slice's events read through the store's port (EventStoreDB), in (stream id, version) order:
 * the slice's streams as `streams` lists them in this snapshot, each read to its end in the store. A stream
 * may run past its head in `streams` (a command whose events landed but whose outcome is not yet recorded
 * there, docs/eventstore-esdb.md); the head must then lie on its chain (auditSlice).
 */
async function eventsThroughPort(
  store: EventStore,
  connection: PoolConnection,
  input: SlicePassInput,
  after: EventRow | null,
  limit: number,
): Promise<EventRow[]> {
  const { tenantId, slice } = input;
  assert(limit <= READ_EVENTS_MAX, `an events page of ${limit} is more than one read returns`);
  const streamHigh = slice.high === null ? STREAM_PREFIX_END : STREAM_PREFIX + slice.high;
  const page: EventRow[] = [];
  const push = (streamId: string, event: RecordedEvent) =>
    page.push([
      streamId,
      event.streamVersion,
      event.partition,
      event.position,
      event.eventId,
      event.type,
      event.dataJson,
      event.metadataJson,
      event.streamHash,
    ]);
  // The stream the last page ended in goes on first (one read: a page is at most one read).
  if (after !== null) {
    for (const event of await store.readStream(tenantId, after[0], { fromVersion: after[1] + 1, limit }))
      push(after[0], event);
  }
  let from = after?.[0] ?? null;
  while (page.length < limit) {
    const streams = (
      await arrayRows(
        connection,
        `SELECT stream_id FROM streams WHERE tenant_id = ? AND stream_id ${from === null ? '>=' : '>'} ? AND stream_id < ?
         ORDER BY stream_id LIMIT ?`,
        [tenantId, from ?? STREAM_PREFIX + slice.low, streamHigh, input.pageRows],
      )
    ).map(([streamId]) => String(streamId));
    for (let first = 0; first < streams.length && page.length < limit; first += STREAMS_READ_AT_ONCE) {
      // Each read is a round trip to the server: a group's first reads go out together.
      const group = streams.slice(first, first + STREAMS_READ_AT_ONCE);
      const reads = group.map((streamId) => {
        const read = store.readStream(tenantId, streamId, { fromVersion: 1, limit });
        // Awaited below unless the page fills first: never an unhandled rejection.
        read.catch(() => undefined);
        return read;
      });
      for (let index = 0; index < group.length && page.length < limit; index++) {
        from = group[index]!;
        const events = await reads[index]!;
        for (const event of events) {
          if (page.length === limit) break;
          push(from, event);
        }
        // A stream's first read asks for a whole page: when it has more, the page is full here, and the
        // next page goes on from its last row (`after`).
      }
    }
    if (streams.length < input.pageRows) break;
  }
  return page;
}

function cursors(connection: PoolConnection, input: SlicePassInput) {
  const { tenantId, slice } = input;
  const query = async (sql: string, params: unknown[]) =>
    (await connection.query<RowDataPacket[]>(sql, params))[0];
  const highMember = slice.high;
  const memberRange = (column: string) =>
    highMember === null ? `${column} >= ?` : `${column} >= ? AND ${column} < ?`;
  const memberBounds = (from: string) => (highMember === null ? [from] : [from, highMember]);
  const streamLow = STREAM_PREFIX + slice.low;
  const streamHigh = highMember === null ? STREAM_PREFIX_END : STREAM_PREFIX + highMember;

  const eventStore = input.eventStore;
  const events = new KeysetCursor<EventRow>(
    eventStore !== null
      ? (after, limit) => eventsThroughPort(eventStore, connection, input, after, limit)
      : async (after, limit) => {
          const rows = await arrayRows(
            connection,
            `SELECT ${SLICE_EVENT_COLUMNS}
         FROM events WHERE tenant_id = ? AND stream_id >= ? AND stream_id < ? AND (stream_id > ? OR stream_version > ?)
         ORDER BY stream_id, stream_version LIMIT ?`,
            [tenantId, after?.[0] ?? streamLow, streamHigh, after?.[0] ?? '', after?.[1] ?? 0, limit],
          );
          for (const row of rows) {
            row[1] = sqlInt(row[1]);
            row[2] = sqlInt(row[2]);
            row[3] = sqlInt(row[3]);
          }
          return rows as EventRow[];
        },
    input.eventPageRows,
    (a, b) => compareKeys(a[0], b[0]) || a[1] - b[1],
    'events',
  );
  const streams = new KeysetCursor<StreamRow>(
    async (after, limit) =>
      (
        await query(
          `SELECT stream_id, version, last_hash FROM streams WHERE tenant_id = ? AND stream_id ${after === null ? '>=' : '>'} ? AND stream_id < ?
           ORDER BY stream_id LIMIT ?`,
          [tenantId, after?.streamId ?? streamLow, streamHigh, limit],
        )
      ).map((row) => ({
        streamId: String(row['stream_id']),
        version: sqlInt(row['version']),
        lastHash: String(row['last_hash']),
      })),
    input.pageRows,
    (a, b) => compareKeys(a.streamId, b.streamId),
    'streams',
  );
  const accounts = new KeysetCursor<AccountRow>(
    async (after, limit) =>
      (
        await query(
          `SELECT * FROM member_accounts WHERE tenant_id = ? AND ${memberRange('member_id')} ${after === null ? '' : 'AND member_id > ?'}
           ORDER BY member_id LIMIT ?`,
          [tenantId, ...memberBounds(slice.low), ...(after === null ? [] : [after.memberId]), limit],
        )
      ).map((row) => ({
        memberId: String(row['member_id']),
        values: {
          partition_no: sqlInt(row['partition_no']),
          phone_masked: String(row['phone_masked']),
          phone_sha256: String(row['phone_sha256']),
          tier: String(row['tier']),
          registered_store_id: String(row['registered_store_id']),
          channel: String(row['channel']),
          balance: sqlInt(row['balance']),
          held: sqlInt(row['held']),
          ...Object.fromEntries(
            MOVEMENT_KINDS.map((kind) => [`${kind}_points`, sqlInt(row[`${kind}_points`])]),
          ),
          version: sqlInt(row['version']),
          last_event_hash: String(row['last_event_hash']),
          registered_at: time(row['registered_at']),
          updated_at: time(row['updated_at']),
        },
      })),
    input.pageRows,
    (a, b) => compareKeys(a.memberId, b.memberId),
    'member_accounts',
  );
  const keyed = (table: string, idColumn: string, map: (row: RowDataPacket) => KeyedRow['values']) =>
    new KeysetCursor<KeyedRow>(
      async (after, limit) =>
        (
          await query(
            `SELECT * FROM ${table} WHERE tenant_id = ? AND ${memberRange('member_id')}
               ${after === null ? '' : `AND member_id >= ? AND (member_id > ? OR ${idColumn} > ?)`}
             ORDER BY member_id, ${idColumn} LIMIT ?`,
            [
              tenantId,
              ...memberBounds(slice.low),
              ...(after === null ? [] : [after.memberId, after.memberId, after.id]),
              limit,
            ],
          )
        ).map((row) => ({ memberId: String(row['member_id']), id: String(row[idColumn]), values: map(row) })),
      input.pageRows,
      (a, b) => compareKeys(a.memberId, b.memberId) || compareKeys(a.id, b.id),
      table,
    );
  const lots = keyed('member_lots', 'lot_id', (row) => ({
    points: sqlInt(row['points']),
    remaining: sqlInt(row['remaining']),
    expires_at: time(row['expires_at']),
    earned_at: time(row['earned_at']),
  }));
  const holds = keyed('member_holds', 'hold_id', (row) => ({
    order_id: String(row['order_id']),
    store_id: String(row['store_id']),
    points: sqlInt(row['points']),
    expires_at: time(row['expires_at']),
    placed_at: time(row['placed_at']),
  }));
  const categories = keyed('member_category_purchases', 'category', (row) => ({
    partition_no: sqlInt(row['partition_no']),
    purchases: sqlInt(row['purchases']),
    recent_at: String(row['recent_at']),
    last_at: time(row['last_at']),
  }));
  const tags = keyed('member_tags', 'tag', (row) => ({ expires_at: time(row['expires_at']) }));
  const ledger = new KeysetCursor<LedgerRow>(
    async (after, limit) => {
      const rows = await arrayRows(
        connection,
        `SELECT member_id, stream_version, movement_no, ${LEDGER_FIELDS.join(', ')}
         FROM ledger_entries WHERE tenant_id = ? AND ${memberRange('member_id')}
           ${after === null ? '' : 'AND member_id >= ? AND (member_id > ? OR stream_version > ? OR (stream_version = ? AND movement_no > ?))'}
         ORDER BY member_id, stream_version, movement_no LIMIT ?`,
        [
          tenantId,
          ...memberBounds(slice.low),
          ...(after === null ? [] : [after[0], after[0], after[1], after[1], after[2]]),
          limit,
        ],
      );
      for (const row of rows) {
        row[1] = sqlInt(row[1]);
        row[2] = sqlInt(row[2]);
      }
      return rows as LedgerRow[];
    },
    input.pageRows,
    (a, b) => compareKeys(a[0], b[0]) || a[1] - b[1] || a[2] - b[2],
    'ledger_entries',
  );
  return { events, streams, accounts, lots, holds, categories, tags, ledger };
}

function heldOf(state: MemberState, at?: string): number {
  if (!state.registered) return 0;
  let held = 0;
  for (const hold of state.holds) if (at === undefined || hold.expiresAt > at) held += hold.points;
  return held;
}

/** What the read model's ledger row for a movement must hold (projections/fold.ts writes the same), in LEDGER_FIELDS order. */
function expectedLedgerValues(row: EventRow, at: string, movement: Movement): (string | number | null)[] {
  return [
    movement.suffix === '' ? row[4] : `${row[4]}:${movement.suffix}`,
    row[2],
    row[3],
    row[5],
    at,
    movement.kind,
    movement.points,
    movement.balanceAfter,
    movement.orderId ?? null,
    movement.storeId ?? null,
    movement.reason ?? null,
  ];
}

/** The read model's value as the report shows it (times as ISO instants). */
function ledgerActual(row: LedgerRow, field: number): string | number | null {
  const value = row[LEDGER_VALUES_OFFSET + field];
  if (value === undefined || value === null) return null;
  return field === LEDGER_AT ? time(value) : value;
}

/** The fold of one stream as of the projector's checkpoint: what the read models must show. */
interface Covered {
  state: MemberState;
  version: number;
  hash: string;
  lifetime: Record<MovementKind, number>;
  at: string;
}

export async function auditSlice(input: SlicePassInput, log: DiscrepancyLog): Promise<SlicePassResult> {
  const { tenantId } = input;
  return withSnapshot(input.pool, async (connection) => {
    const [checkpointRows] = await connection.query<RowDataPacket[]>(
      'SELECT partition_no, position, tags_version, tags_target_version FROM projection_checkpoints WHERE tenant_id = ?',
      [tenantId],
    );
    const checkpoints = new Map(
      checkpointRows.map((row) => [sqlInt(row['partition_no']), sqlInt(row['position'])]),
    );
    const rules = await loadTagRuleSet(connection, tenantId);
    // Tags are compared where the partition's projector has re-derived them under the current rules; while
    // a rule change is being applied (or not yet noticed) they are a mix of old and new, by design.
    const tagsCurrent = new Set(
      checkpointRows
        .filter((row) => row['tags_target_version'] === null && sqlInt(row['tags_version']) === rules.version)
        .map((row) => sqlInt(row['partition_no'])),
    );
    const c = cursors(connection, input);
    // Double entry and the export recount below the starting checkpoints (postings.ts): per partition.
    const belowStart = new Map<number, PostingSums>();
    const recounts = new Map<number, ExportRecount>();
    const countBelowStart = (partition: number, position: number, event: MemberEvent) => {
      let sums = belowStart.get(partition);
      if (sums === undefined) belowStart.set(partition, (sums = new PostingSums()));
      sums.addEvent(event);
      const exported = input.lastExport;
      if (exported === null) return;
      let recount = recounts.get(partition);
      if (recount === undefined) {
        const head = exported.heads.find((h) => h.partition === partition)?.position ?? 0;
        recounts.set(partition, (recount = new ExportRecount(partition, exported.toAt, head)));
      }
      recount.add(position, event);
    };
    let events = 0;
    let members = 0;
    let pendingProgress = 0;
    // One scratch event for the whole slice (scratchEvent: the verifier keeps no reference to it).
    const link = scratchEvent(tenantId);
    const lifetime = [0, 0, 0, 0, 0, 0];
    const coveredLifetime = [0, 0, 0, 0, 0, 0];

    for (;;) {
      await Promise.all([
        c.events.ready(),
        c.streams.ready(),
        c.accounts.ready(),
        c.lots.ready(),
        c.holds.ready(),
        c.categories.ready(),
        c.tags.ready(),
        c.ledger.ready(),
      ]);
      let memberId: string | undefined;
      const candidate = (id: string | undefined) => {
        if (id !== undefined && (memberId === undefined || compareKeys(id, memberId) < 0)) memberId = id;
      };
      const firstEvent = c.events.peek();
      if (firstEvent !== undefined) candidate(memberIdOfStream(firstEvent[0])!);
      const firstStream = c.streams.peek();
      if (firstStream !== undefined) candidate(memberIdOfStream(firstStream.streamId)!);
      candidate(c.accounts.peek()?.memberId);
      candidate(c.lots.peek()?.memberId);
      candidate(c.holds.peek()?.memberId);
      candidate(c.categories.peek()?.memberId);
      candidate(c.tags.peek()?.memberId);
      candidate(c.ledger.peek()?.[0]);
      if (memberId === undefined) break;
      const member: string = memberId;
      members += 1;

      const streamId = memberStreamId(member);
      const add = (d: Omit<Discrepancy, 'tenantId' | 'memberId' | 'streamId'>) =>
        log.add({ tenantId, memberId: member, streamId, ...d });
      const streamRow = c.streams.peek()?.streamId === streamId ? c.streams.next() : undefined;
      const account = c.accounts.peek()?.memberId === member ? c.accounts.next() : undefined;
      const lotRows = await rowsOfMember(c.lots, member);
      const holdRows = await rowsOfMember(c.holds, member);
      const categoryRows = await rowsOfMember(c.categories, member);
      const tagRows = await rowsOfMember(c.tags, member);

      // Fold the stream; remember the state as of the checkpoint of its partition.
      const partition = partitionOf(streamId, input.partitions);
      const checkpoint = checkpoints.get(partition) ?? 0;
      const verifier = new StreamChainVerifier(tenantId, streamId);
      link.streamId = streamId;
      let state: MemberState = initialMemberState();
      let failedAt: number | null = null;
      lifetime.fill(0);
      let covered: Omit<Covered, 'lifetime'> | null = null;
      let registration: { storeId: string; channel: string; at: string } | null = null;
      // Purchases per category as of the checkpoint (projections/fold.ts recordPurchase does the same).
      const purchases = new Map<string, CategoryPurchases & { lastAt: string }>();
      let streamEvents = 0;
      let lastVersion = 0;
      let hashAtHead: string | null = null;

      /** The member's next ledger row, if any (the cursor is ready). */
      const ledgerOfMember = (): LedgerRow | undefined => {
        const row = c.ledger.peek();
        return row !== undefined && row[0] === member ? row : undefined;
      };
      const extraLedgerRow = (row: LedgerRow, why: string) =>
        add({
          kind: 'read-model',
          table: 'ledger_entries',
          streamVersion: row[1],
          field: `entry ${row[1]}/${row[2]}`,
          expected: null,
          actual: `${String(row[LEDGER_VALUES_OFFSET + LEDGER_FIELDS.indexOf('kind')])} ${String(row[LEDGER_VALUES_OFFSET + LEDGER_FIELDS.indexOf('points')])}`,
          detail: why,
        });

      for (;;) {
        if (!c.events.isReady) await c.events.ready();
        const peeked = c.events.peek();
        if (peeked === undefined || peeked[0] !== streamId) break;
        const row = c.events.next()!;
        const version = row[1];
        lastVersion = version;
        if (version === streamRow?.version) hashAtHead = row[8];
        const eventPartition = row[2];
        const position = row[3];
        streamEvents += 1;
        link.streamVersion = version;
        link.position = position;
        link.eventId = row[4];
        link.type = row[5];
        link.dataJson = row[6];
        link.metadataJson = row[7];
        link.streamHash = row[8];
        verifier.add(link);
        if (eventPartition !== partition) {
          add({
            kind: 'chain',
            streamVersion: version,
            partition: eventPartition,
            position,
            detail: `the event is in partition ${eventPartition}; the stream belongs to partition ${partition}`,
          });
        }
        const isCovered = position <= checkpoint && eventPartition === partition;
        let at = '';
        let movements: Movement[] = [];
        let domainEvent: MemberEvent | null = null;
        let parseError: unknown = null;
        try {
          domainEvent = { type: row[5], data: JSON.parse(row[6]) as unknown } as MemberEvent;
        } catch (error) {
          parseError = error;
        }
        if (POSTING_TYPES.has(row[5]) && position <= (input.checkpointsAtStart.get(eventPartition) ?? 0)) {
          try {
            if (domainEvent === null) throw parseError;
            countBelowStart(eventPartition, position, domainEvent);
          } catch (error) {
            add({
              kind: 'postings',
              streamVersion: version,
              partition: eventPartition,
              position,
              detail: `the event's postings cannot be computed: ${error instanceof Error ? error.message : String(error)}`,
            });
          }
        }
        if (failedAt === null) {
          try {
            if (domainEvent === null) throw parseError;
            at = domainEvent.data.at;
            const availableBefore = state.registered ? state.balance - heldOf(state, at) : 0;
            const next = evolveMember(state, domainEvent);
            movements = movementsOf(domainEvent);
            if (next.registered) {
              const availableAfter = next.balance - heldOf(next, at);
              if (
                domainEvent.type !== 'PurchaseRefunded' &&
                availableAfter < 0 &&
                availableAfter < availableBefore
              ) {
                add({
                  kind: 'available',
                  streamVersion: version,
                  field: 'available',
                  expected: '>= 0',
                  actual: availableAfter,
                  detail: `${domainEvent.type} took available from ${availableBefore} to ${availableAfter}; only a refund's reversal may go below zero`,
                });
              }
            }
            if (domainEvent.type === 'MemberRegistered') {
              registration = {
                storeId: domainEvent.data.storeId,
                channel: domainEvent.data.channel,
                at: domainEvent.data.at,
              };
            }
            state = next;
            if (isCovered && domainEvent.type === 'PurchaseRecorded') {
              for (const category of new Set(domainEvent.data.categories)) {
                const before = purchases.get(category);
                const after = withPurchase(before ?? { category, purchases: 0, recentAt: [] }, at);
                // Built field by field: a spread of withPurchase's row cost about 5 us a purchase.
                purchases.set(category, {
                  category,
                  purchases: after.purchases,
                  recentAt: after.recentAt,
                  lastAt: before !== undefined && before.lastAt > at ? before.lastAt : at,
                });
              }
            }
            for (const movement of movements) {
              const kind = MOVEMENT_KIND_INDEX[movement.kind];
              lifetime[kind] = lifetime[kind]! + movement.points;
            }
          } catch (error) {
            failedAt = version;
            const why = error instanceof Error ? error.message : String(error);
            add({
              kind: 'replay',
              streamVersion: version,
              partition: eventPartition,
              position,
              detail:
                error instanceof SyntaxError
                  ? `the stored data of ${row[5]} is not JSON: ${why}`
                  : `evolveMember refused ${row[5]}: ${why}`,
            });
          }
        }
        if (failedAt === null && isCovered) {
          // Mutated in place: one object per member, not per event.
          if (covered === null) covered = { state, version, hash: row[8], at };
          else {
            covered.state = state;
            covered.version = version;
            covered.hash = row[8];
            covered.at = at;
          }
          for (let kind = 0; kind < lifetime.length; kind++) coveredLifetime[kind] = lifetime[kind]!;
        }

        // Ledger entries of this event: exactly its movements when the checkpoint covers it, none otherwise.
        for (;;) {
          if (!c.ledger.isReady) await c.ledger.ready();
          const ledgerRow = ledgerOfMember();
          if (ledgerRow === undefined || ledgerRow[1] >= version) break;
          extraLedgerRow(
            c.ledger.next()!,
            'a ledger entry for a stream version that has no event (or a gap)',
          );
        }
        if (failedAt !== null) {
          for (;;) {
            if (!c.ledger.isReady) await c.ledger.ready();
            if (ledgerOfMember()?.[1] !== version) break;
            c.ledger.next();
          }
          continue;
        }
        const expected = isCovered ? movements : [];
        for (let movementNo = 0; movementNo < expected.length; movementNo++) {
          if (!c.ledger.isReady) await c.ledger.ready();
          const ledgerRow = ledgerOfMember();
          const movement = expected[movementNo]!;
          if (ledgerRow === undefined || ledgerRow[1] !== version || ledgerRow[2] !== movementNo) {
            add({
              kind: 'read-model',
              table: 'ledger_entries',
              streamVersion: version,
              field: `entry ${version}/${movementNo}`,
              expected: `${movement.kind} ${movement.points}`,
              actual: null,
              detail: 'the ledger entry is missing',
            });
            continue;
          }
          c.ledger.next();
          const want = expectedLedgerValues(row, at, movement);
          for (let field = 0; field < LEDGER_FIELDS.length; field++) {
            const value = want[field]!;
            const actual = ledgerRow[LEDGER_VALUES_OFFSET + field];
            if (field === LEDGER_AT ? sqlTimeEqualsIso(actual, at) : actual === value) continue;
            add({
              kind: 'read-model',
              table: 'ledger_entries',
              streamVersion: version,
              field: `entry ${version}/${movementNo} ${LEDGER_FIELDS[field]}`,
              expected: value,
              actual: ledgerActual(ledgerRow, field),
              detail: 'the ledger entry differs from the event',
            });
          }
        }
        for (;;) {
          if (!c.ledger.isReady) await c.ledger.ready();
          if (ledgerOfMember()?.[1] !== version) break;
          extraLedgerRow(
            c.ledger.next()!,
            isCovered
              ? 'a ledger entry the event does not make'
              : 'a ledger entry for an event beyond the projector checkpoint',
          );
        }
      }
      for (;;) {
        if (!c.ledger.isReady) await c.ledger.ready();
        if (ledgerOfMember() === undefined) break;
        extraLedgerRow(c.ledger.next()!, 'a ledger entry beyond the last event of the stream');
      }
      events += streamEvents;
      pendingProgress += streamEvents;
      if (pendingProgress >= 1_000) {
        input.onEvents?.(pendingProgress);
        pendingProgress = 0;
      }

      // The chain and its head in `streams` (a truncated tail shows here).
      if (streamEvents === 0 && streamRow === undefined) {
        // Read-model rows without any event: reported below.
      } else if (streamRow === undefined) {
        add({ kind: 'head', detail: 'the stream has events but no head row in streams' });
      } else if (input.eventStore !== null && lastVersion > streamRow.version) {
        // Through the port (EventStoreDB) a stream may run past its recorded head: the head must be on it.
        for (const problem of verifier.finish()) add(chainProblemToDiscrepancy(problem));
        if (hashAtHead !== streamRow.lastHash)
          add({
            kind: 'head',
            streamVersion: streamRow.version,
            expected: streamRow.lastHash,
            actual: hashAtHead,
            detail: `the head recorded in streams (version ${streamRow.version}) is not on the stream's chain`,
          });
      } else {
        for (const problem of verifier.finish({ version: streamRow.version, lastHash: streamRow.lastHash }))
          add(chainProblemToDiscrepancy(problem));
      }
      if (failedAt !== null) continue;

      const coveredWithLifetime: Covered | null =
        covered === null
          ? null
          : {
              ...covered,
              lifetime: Object.fromEntries(
                MOVEMENT_KINDS.map((kind) => [kind, coveredLifetime[MOVEMENT_KIND_INDEX[kind]]!]),
              ) as Record<MovementKind, number>,
            };
      compareAccount(add, account, coveredWithLifetime, registration, partition);
      const expectedLots = new Map<string, KeyedRow['values']>();
      const expectedHolds = new Map<string, KeyedRow['values']>();
      if (covered !== null && covered.state.registered) {
        for (const lot of covered.state.lots) {
          expectedLots.set(lot.lotId, {
            points: lot.points,
            remaining: lot.remaining,
            expires_at: lot.expiresAt,
            earned_at: lot.earnedAt,
          });
        }
        for (const hold of covered.state.holds) {
          expectedHolds.set(hold.holdId, {
            order_id: hold.orderId,
            store_id: hold.storeId,
            points: hold.points,
            expires_at: hold.expiresAt,
            placed_at: hold.at,
          });
        }
      }
      compareKeyed(add, 'member_lots', 'lot', expectedLots, lotRows);
      compareKeyed(add, 'member_holds', 'hold', expectedHolds, holdRows);
      const expectedCategories = new Map<string, KeyedRow['values']>();
      for (const row of purchases.values()) {
        expectedCategories.set(row.category, {
          partition_no: partition,
          purchases: row.purchases,
          recent_at: encodeRecent(row.recentAt),
          last_at: row.lastAt,
        });
      }
      compareKeyed(add, 'member_category_purchases', 'category', expectedCategories, categoryRows);
      if (tagsCurrent.has(partition)) {
        const expectedTags = new Map<string, KeyedRow['values']>();
        for (const [tag, expiresAt] of evaluateTags(purchases.values(), rules.rules)) {
          expectedTags.set(tag, { expires_at: expiresAt });
        }
        compareKeyed(add, 'member_tags', 'tag', expectedTags, tagRows);
      }
      // Invariant 4 on the read model itself: open lots add up to the balance when it is not in debt.
      if (account !== undefined) {
        const balance = Number(account.values['balance']);
        const lotsTotal = lotRows.reduce((sum, row) => sum + Number(row.values['remaining']), 0);
        if (balance >= 0 && lotsTotal !== balance) {
          add({
            kind: 'read-model',
            table: 'member_lots',
            field: 'sum of remaining',
            expected: balance,
            actual: lotsTotal,
            detail: 'the open lots in the read model do not add up to the balance',
          });
        }
      }
    }
    if (pendingProgress > 0) input.onEvents?.(pendingProgress);
    return {
      events,
      members,
      postingsBelowStart: [...belowStart].map(([partition, sums]) => [partition, sums.toData()]),
      exportRecounts: [...recounts.values()].map((recount) => recount.part()),
    };
  });
}

/** The member's rows of a keyed cursor (its rows come next, in key order). */
async function rowsOfMember(cursor: KeysetCursor<KeyedRow>, member: string): Promise<KeyedRow[]> {
  const rows: KeyedRow[] = [];
  for (;;) {
    await cursor.ready();
    if (cursor.peek()?.memberId !== member) return rows;
    rows.push(cursor.next()!);
  }
}

type Add = (d: Omit<Discrepancy, 'tenantId' | 'memberId' | 'streamId'>) => void;

function compareAccount(
  add: Add,
  account: AccountRow | undefined,
  covered: Covered | null,
  registration: { storeId: string; channel: string; at: string } | null,
  partition: number,
): void {
  const registered = covered !== null && covered.state.registered ? covered.state : null;
  if (registered === null) {
    if (account !== undefined) {
      const version = Number(account.values['version']);
      add({
        kind: version > (covered?.version ?? 0) ? 'head' : 'read-model',
        table: 'member_accounts',
        field: 'version',
        expected: covered?.version ?? 0,
        actual: version,
        detail:
          'the read model has an account the events (up to the checkpoint) do not register: events missing from the store?',
      });
    }
    return;
  }
  if (account === undefined) {
    add({
      kind: 'read-model',
      table: 'member_accounts',
      expected: covered!.version,
      actual: null,
      field: 'version',
      detail: 'the account row is missing',
    });
    return;
  }
  const expected: Record<string, string | number> = {
    partition_no: partition,
    phone_masked: maskPhone(registered.phone),
    phone_sha256: createHash('sha256').update(registered.phone).digest('hex'),
    tier: registered.tier,
    balance: registered.balance,
    held: heldOf(registered),
    ...Object.fromEntries(MOVEMENT_KINDS.map((kind) => [`${kind}_points`, covered!.lifetime[kind]])),
    version: covered!.version,
    last_event_hash: covered!.hash,
    updated_at: covered!.at,
    ...(registration === null
      ? {}
      : {
          registered_store_id: registration.storeId,
          channel: registration.channel,
          registered_at: registration.at,
        }),
  };
  for (const [field, value] of Object.entries(expected)) {
    const actual = account.values[field];
    if (actual === value) continue;
    // A read model ahead of the store (version or head hash the events do not reach) means lost events.
    const ahead =
      (field === 'version' && Number(actual) > covered!.version) ||
      (field === 'last_event_hash' && Number(account.values['version']) > covered!.version);
    add({
      kind: ahead ? 'head' : 'read-model',
      table: 'member_accounts',
      field,
      expected: value,
      actual: actual ?? null,
      detail: ahead
        ? 'the read model saw events the event store no longer has (tail truncated?)'
        : 'the account differs from the replay of its events',
    });
  }
}

function compareKeyed(
  add: Add,
  table: string,
  noun: string,
  expected: Map<string, KeyedRow['values']>,
  rows: readonly KeyedRow[],
): void {
  const seen = new Set<string>();
  for (const row of rows) {
    seen.add(row.id);
    const want = expected.get(row.id);
    if (want === undefined) {
      add({
        kind: 'read-model',
        table,
        field: `${noun} ${row.id}`,
        expected: null,
        actual: JSON.stringify(row.values),
        detail: `an open ${noun} the events do not have`,
      });
      continue;
    }
    for (const [field, value] of Object.entries(want)) {
      if (row.values[field] === value) continue;
      add({
        kind: 'read-model',
        table,
        field: `${noun} ${row.id} ${field}`,
        expected: value,
        actual: row.values[field] ?? null,
        detail: `the ${noun} differs from the replay`,
      });
    }
  }
  for (const [id, want] of expected) {
    if (seen.has(id)) continue;
    add({
      kind: 'read-model',
      table,
      field: `${noun} ${id}`,
      expected: JSON.stringify(want),
      actual: null,
      detail: `the open ${noun} is missing`,
    });
  }
}
