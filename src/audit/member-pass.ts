/**
 * Pass B, one slice of the member id space, inside one consistent snapshot: a merge join, in member id
 * order, of the member streams' events (by stream id and version) with the streams heads and the read
 * models (member_accounts, member_lots, member_holds, ledger_entries). For each member it
 * - verifies the stream's hash chain and its head in `streams` (StreamChainVerifier);
 * - folds the events with the domain's evolveMember (which re-checks every balanceAfter, lot and hold);
 * - checks, event by event, that `available` (balance minus the holds active at the event's time) never
 *   goes below zero except through a refund's reversal;
 * - compares the read models with the fold as of the projector's checkpoint (read in the same snapshot),
 *   field by field: the account row, every open lot, every open hold, every ledger entry.
 * Memory: one page per cursor and one member's state; a member's events and ledger entries are compared
 * as they stream by, so even a stream of millions of events is never held.
 */
import { rowToEvent } from '../eventstore/sql/sql-event-store.ts';
import { createHash } from 'node:crypto';
import type { RowDataPacket } from 'mysql2/promise';
import { memberIdOfStream, memberStreamId } from '../commands/streams.ts';
import { sqlInt, sqlTimeToIso, type Pool, type PoolConnection } from '../db/pool.ts';
import {
  evolveMember,
  initialMemberState,
  maskPhone,
  movementsOf,
  type MemberEvent,
  type MemberState,
  type Movement,
  type MovementKind,
} from '../domain/member/index.ts';
import { LOG_PARTITIONS, partitionOf } from '../eventstore/partition.ts';
import type { RecordedEvent } from '../eventstore/port.ts';
import { StreamChainVerifier } from '../eventstore/verify.ts';
import { compareKeys, KeysetCursor } from './cursor.ts';
import { chainProblemToDiscrepancy } from './partition-pass.ts';
import type { Discrepancy, DiscrepancyLog } from './report.ts';
import { withSnapshot } from './snapshot.ts';

export const MOVEMENT_KINDS: readonly MovementKind[] = [
  'earned',
  'redeemed',
  'expired',
  'adjusted',
  'reversed',
  'restored',
];

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
  onEvents?: (count: number) => void;
}

export interface SlicePassResult {
  events: number;
  members: number;
}

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

interface LedgerRow {
  memberId: string;
  version: number;
  movementNo: number;
  values: Record<string, string | number | null>;
}

const STREAM_PREFIX = memberStreamId('');
/** The first stream id after every 'member-...' id ('.' follows '-'). */
const STREAM_PREFIX_END = `${STREAM_PREFIX.slice(0, -1)}.`;

const time = (value: unknown) => sqlTimeToIso(String(value));
const nullable = (value: unknown) => (value === null || value === undefined ? null : String(value));

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

  const events = new KeysetCursor<RecordedEvent>(
    async (after, limit) =>
      (
        await query(
          `SELECT tenant_id, partition_no, position, stream_id, stream_version, event_id, event_type, data, metadata, recorded_at,
             stream_hash, partition_hash
           FROM events WHERE tenant_id = ? AND stream_id >= ? AND stream_id < ? AND (stream_id > ? OR stream_version > ?)
           ORDER BY stream_id, stream_version LIMIT ?`,
          [
            tenantId,
            after?.streamId ?? streamLow,
            streamHigh,
            after?.streamId ?? '',
            after?.streamVersion ?? 0,
            limit,
          ],
        )
      ).map(rowToEvent),
    input.eventPageRows,
    (a, b) => compareKeys(a.streamId, b.streamId) || a.streamVersion - b.streamVersion,
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
  const ledger = new KeysetCursor<LedgerRow>(
    async (after, limit) =>
      (
        await query(
          `SELECT member_id, stream_version, movement_no, entry_id, partition_no, position, event_type, at, kind, points, balance_after,
             order_id, store_id, reason
           FROM ledger_entries WHERE tenant_id = ? AND ${memberRange('member_id')}
             ${after === null ? '' : 'AND member_id >= ? AND (member_id > ? OR stream_version > ? OR (stream_version = ? AND movement_no > ?))'}
           ORDER BY member_id, stream_version, movement_no LIMIT ?`,
          [
            tenantId,
            ...memberBounds(slice.low),
            ...(after === null
              ? []
              : [after.memberId, after.memberId, after.version, after.version, after.movementNo]),
            limit,
          ],
        )
      ).map((row) => ({
        memberId: String(row['member_id']),
        version: sqlInt(row['stream_version']),
        movementNo: sqlInt(row['movement_no']),
        values: {
          entry_id: String(row['entry_id']),
          partition_no: sqlInt(row['partition_no']),
          position: sqlInt(row['position']),
          event_type: String(row['event_type']),
          at: time(row['at']),
          kind: String(row['kind']),
          points: sqlInt(row['points']),
          balance_after: sqlInt(row['balance_after']),
          order_id: nullable(row['order_id']),
          store_id: nullable(row['store_id']),
          reason: nullable(row['reason']),
        },
      })),
    input.pageRows,
    (a, b) => compareKeys(a.memberId, b.memberId) || a.version - b.version || a.movementNo - b.movementNo,
    'ledger_entries',
  );
  return { events, streams, accounts, lots, holds, ledger };
}

function heldOf(state: MemberState, at?: string): number {
  if (!state.registered) return 0;
  let held = 0;
  for (const hold of state.holds) if (at === undefined || hold.expiresAt > at) held += hold.points;
  return held;
}

/** What the read model's ledger row for a movement must hold (projections/fold.ts writes the same). */
function expectedLedgerValues(
  recorded: RecordedEvent,
  event: MemberEvent,
  movement: Movement,
): LedgerRow['values'] {
  return {
    entry_id: movement.suffix === '' ? recorded.eventId : `${recorded.eventId}:${movement.suffix}`,
    partition_no: recorded.partition,
    position: recorded.position,
    event_type: recorded.type,
    at: event.data.at,
    kind: movement.kind,
    points: movement.points,
    balance_after: movement.balanceAfter,
    order_id: movement.orderId ?? null,
    store_id: movement.storeId ?? null,
    reason: movement.reason ?? null,
  };
}

export async function auditSlice(input: SlicePassInput, log: DiscrepancyLog): Promise<SlicePassResult> {
  const { tenantId } = input;
  return withSnapshot(input.pool, async (connection) => {
    const [checkpointRows] = await connection.query<RowDataPacket[]>(
      'SELECT partition_no, position FROM projection_checkpoints WHERE tenant_id = ?',
      [tenantId],
    );
    const checkpoints = new Map(
      checkpointRows.map((row) => [sqlInt(row['partition_no']), sqlInt(row['position'])]),
    );
    const c = cursors(connection, input);
    let events = 0;
    let members = 0;
    let pendingProgress = 0;

    for (;;) {
      const candidates: string[] = [];
      const event = await c.events.peek();
      if (event !== undefined) candidates.push(memberIdOfStream(event.streamId)!);
      const stream = await c.streams.peek();
      if (stream !== undefined) candidates.push(memberIdOfStream(stream.streamId)!);
      for (const peek of [
        () => c.accounts.peek(),
        () => c.lots.peek(),
        () => c.holds.peek(),
        () => c.ledger.peek(),
      ]) {
        const row = await peek();
        if (row !== undefined) candidates.push(row.memberId);
      }
      if (candidates.length === 0) break;
      const memberId = candidates.reduce((min, id) => (compareKeys(id, min) < 0 ? id : min));
      members += 1;

      const streamId = memberStreamId(memberId);
      const add = (d: Omit<Discrepancy, 'tenantId' | 'memberId' | 'streamId'>) =>
        log.add({ tenantId, memberId, streamId, ...d });
      const streamRow = (await c.streams.peek())?.streamId === streamId ? await c.streams.next() : undefined;
      const account = (await c.accounts.peek())?.memberId === memberId ? await c.accounts.next() : undefined;
      const lotRows: KeyedRow[] = [];
      while ((await c.lots.peek())?.memberId === memberId) lotRows.push((await c.lots.next())!);
      const holdRows: KeyedRow[] = [];
      while ((await c.holds.peek())?.memberId === memberId) holdRows.push((await c.holds.next())!);

      // Fold the stream; remember the state as of the checkpoint of its partition.
      const partition = partitionOf(streamId, LOG_PARTITIONS);
      const checkpoint = checkpoints.get(partition) ?? 0;
      const verifier = new StreamChainVerifier(tenantId, streamId);
      let state: MemberState = initialMemberState();
      let failedAt: number | null = null;
      const lifetime = Object.fromEntries(MOVEMENT_KINDS.map((kind) => [kind, 0])) as Record<
        MovementKind,
        number
      >;
      let covered: {
        state: MemberState;
        version: number;
        hash: string;
        lifetime: Record<MovementKind, number>;
        at: string;
      } | null = null;
      let registration: { storeId: string; channel: string; at: string } | null = null;
      let streamEvents = 0;

      const nextLedgerOf = async (): Promise<LedgerRow | undefined> => {
        const row = await c.ledger.peek();
        return row?.memberId === memberId ? row : undefined;
      };
      const extraLedgerRow = (row: LedgerRow, why: string) =>
        add({
          kind: 'read-model',
          table: 'ledger_entries',
          streamVersion: row.version,
          field: `entry ${row.version}/${row.movementNo}`,
          expected: null,
          actual: `${String(row.values['kind'])} ${String(row.values['points'])}`,
          detail: why,
        });

      while ((await c.events.peek())?.streamId === streamId) {
        const recorded = (await c.events.next())!;
        streamEvents += 1;
        verifier.add(recorded);
        if (recorded.partition !== partition) {
          add({
            kind: 'chain',
            streamVersion: recorded.streamVersion,
            partition: recorded.partition,
            position: recorded.position,
            detail: `the event is in partition ${recorded.partition}; the stream belongs to partition ${partition}`,
          });
        }
        const isCovered = recorded.position <= checkpoint && recorded.partition === partition;
        const domainEvent = { type: recorded.type, data: recorded.data } as MemberEvent;
        let movements: Movement[] = [];
        if (failedAt === null) {
          try {
            const at = domainEvent.data.at;
            const availableBefore = state.registered ? state.balance - heldOf(state, at) : 0;
            const next = evolveMember(state, domainEvent);
            movements = movementsOf(domainEvent);
            if (next.registered) {
              const availableAfter = next.balance - heldOf(next, at);
              if (
                recorded.type !== 'PurchaseRefunded' &&
                availableAfter < 0 &&
                availableAfter < availableBefore
              ) {
                add({
                  kind: 'available',
                  streamVersion: recorded.streamVersion,
                  field: 'available',
                  expected: '>= 0',
                  actual: availableAfter,
                  detail: `${recorded.type} took available from ${availableBefore} to ${availableAfter}; only a refund's reversal may go below zero`,
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
            for (const movement of movements) lifetime[movement.kind] += movement.points;
          } catch (error) {
            failedAt = recorded.streamVersion;
            add({
              kind: 'replay',
              streamVersion: recorded.streamVersion,
              partition: recorded.partition,
              position: recorded.position,
              detail: `evolveMember refused ${recorded.type}: ${error instanceof Error ? error.message : String(error)}`,
            });
          }
        }
        if (failedAt === null && isCovered) {
          covered = {
            state,
            version: recorded.streamVersion,
            hash: recorded.streamHash,
            lifetime: { ...lifetime },
            at: domainEvent.data.at,
          };
        }

        // Ledger entries of this event: exactly its movements when the checkpoint covers it, none otherwise.
        while (true) {
          const row = await nextLedgerOf();
          if (row === undefined || row.version >= recorded.streamVersion) break;
          extraLedgerRow(
            (await c.ledger.next())!,
            'a ledger entry for a stream version that has no event (or a gap)',
          );
        }
        if (failedAt !== null) {
          while ((await nextLedgerOf())?.version === recorded.streamVersion) await c.ledger.next();
          continue;
        }
        const expected = isCovered ? movements : [];
        for (let movementNo = 0; movementNo < expected.length; movementNo++) {
          const row = await nextLedgerOf();
          const want = expectedLedgerValues(recorded, domainEvent, expected[movementNo]!);
          if (row === undefined || row.version !== recorded.streamVersion || row.movementNo !== movementNo) {
            add({
              kind: 'read-model',
              table: 'ledger_entries',
              streamVersion: recorded.streamVersion,
              field: `entry ${recorded.streamVersion}/${movementNo}`,
              expected: `${String(want['kind'])} ${String(want['points'])}`,
              actual: null,
              detail: 'the ledger entry is missing',
            });
            continue;
          }
          await c.ledger.next();
          for (const [field, value] of Object.entries(want)) {
            if (row.values[field] === value) continue;
            add({
              kind: 'read-model',
              table: 'ledger_entries',
              streamVersion: recorded.streamVersion,
              field: `entry ${recorded.streamVersion}/${movementNo} ${field}`,
              expected: value,
              actual: row.values[field] ?? null,
              detail: 'the ledger entry differs from the event',
            });
          }
        }
        while ((await nextLedgerOf())?.version === recorded.streamVersion) {
          extraLedgerRow(
            (await c.ledger.next())!,
            isCovered
              ? 'a ledger entry the event does not make'
              : 'a ledger entry for an event beyond the projector checkpoint',
          );
        }
      }
      while ((await nextLedgerOf()) !== undefined) {
        extraLedgerRow((await c.ledger.next())!, 'a ledger entry beyond the last event of the stream');
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
      } else {
        for (const problem of verifier.finish({ version: streamRow.version, lastHash: streamRow.lastHash }))
          add(chainProblemToDiscrepancy(problem));
      }
      if (failedAt !== null) continue;

      compareAccount(add, account, covered, registration, streamId);
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
    return { events, members };
  });
}

type Add = (d: Omit<Discrepancy, 'tenantId' | 'memberId' | 'streamId'>) => void;

function compareAccount(
  add: Add,
  account: AccountRow | undefined,
  covered: {
    state: MemberState;
    version: number;
    hash: string;
    lifetime: Record<MovementKind, number>;
    at: string;
  } | null,
  registration: { storeId: string; channel: string; at: string } | null,
  streamId: string,
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
    partition_no: partitionOf(streamId, LOG_PARTITIONS),
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
