/**
 * One batch = one transaction: lock the checkpoint row, read the rows the events touch, fold, write every
 * read-model row with multi-row statements, advance the checkpoint (fenced by the lease), commit. The
 * checkpoint row is the only record of progress and it commits with the rows, so a crash anywhere before
 * COMMIT leaves nothing, and a crash after leaves both (DESIGN.md invariant 7).
 *
 * Cost of a batch of n events over m members (back of the envelope, n = 1000, m ~ 400):
 *   round trips: 1 checkpoint lock + 3 reads (accounts, lots, categories) + ~8 writes + 1 checkpoint + COMMIT
 *   rows written: m accounts + ~n/3 lots + ~0.8 n ledger entries + a few hundred sums; one fsync.
 */
import type { ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { assert } from '../domain/assert.ts';
import {
  ER_LOCK_DEADLOCK,
  ER_LOCK_WAIT_TIMEOUT,
  sqlErrno,
  sqlInt,
  sqlTimeToIso,
  type Pool,
  type PoolConnection,
} from '../db/pool.ts';
import type { RecordedEvent } from '../eventstore/port.ts';
import {
  BatchFold,
  lotKey,
  planLoads,
  rowsWritten,
  type AccountRow,
  type BatchWrites,
  type CategoryRow,
  type LoadedRows,
  type LotRow,
  type MemberKey,
} from './fold.ts';
import { sqlTime } from './sql-time.ts';
import { LEDGER_ENTRY_KEY_COLUMNS, LEDGER_ENTRY_VALUE_COLUMNS, type TableNames } from './tables.ts';
import { decodeRecent, encodeRecent, evaluateTags, type TagRuleSet } from './tags.ts';

/** Rows in one multi-row statement: keeps a statement far below max_allowed_packet and TiDB's entry limits. */
export const SQL_ROWS_PER_STATEMENT_MAX = 1_000;
/** Re-runs of a batch rolled back by a deadlock or lock-wait timeout. */
export const BATCH_TRANSIENT_RETRIES_MAX = 5;
/** Members whose tags one re-derivation transaction rewrites after a rule change. */
export const TAG_RECOMPUTE_MEMBERS_PER_TRANSACTION = 500;

export interface Fence {
  owner: string;
  token: number;
  leaseSeconds: number;
}

export interface BatchInfo {
  tenantId: string;
  partition: number;
  owner: string;
  token: number;
}

export interface CommittedBatch extends BatchInfo {
  fromPosition: number;
  toPosition: number;
  events: number;
  /** Read-model rows written or deleted. */
  rows: number;
  startedAtMs: number;
  committedAtMs: number;
}

/**
 * Fault injection for tests: each hook may throw, which aborts the batch exactly as a crash at that point
 * would (the transaction rolls back). `step` names the statement about to run.
 */
export interface ProjectionHooks {
  beforeStatement?(step: string, info: BatchInfo): void | Promise<void>;
  beforeCommit?(info: BatchInfo): void | Promise<void>;
  afterCommit?(batch: CommittedBatch): void | Promise<void>;
}

export interface BatchTarget {
  pool: Pool;
  tables: TableNames;
  tenantId: string;
  partition: number;
  /** null: no lease check (a rebuild filling its own tables under the rebuild lock). */
  fence: Fence | null;
  hooks?: ProjectionHooks | undefined;
}

/** The checkpoint is not where the caller read from: someone else applied events. Re-read and go on. */
export class CheckpointMovedError extends Error {
  override name = 'CheckpointMovedError';
  constructor(
    readonly expected: number,
    readonly actual: number,
  ) {
    super(`checkpoint moved: expected ${expected}, found ${actual}`);
  }
}

/** The fenced checkpoint update matched no row: the lease changed hands. The batch rolled back. */
export class LeaseLostError extends Error {
  override name = 'LeaseLostError';
}

export interface CheckpointRow {
  position: number;
  tagsVersion: number;
  tagsTargetVersion: number | null;
  tagsCursor: string | null;
}

function info(target: BatchTarget): BatchInfo {
  return {
    tenantId: target.tenantId,
    partition: target.partition,
    owner: target.fence?.owner ?? '',
    token: target.fence?.token ?? 0,
  };
}

async function step(target: BatchTarget, name: string): Promise<void> {
  await target.hooks?.beforeStatement?.(name, info(target));
}

/** Creates missing checkpoint rows at position 0, tagged with the rules version (no member yet, so every version holds). */
export async function ensureCheckpoints(
  pool: Pool,
  tables: TableNames,
  tenantId: string,
  partitions: number,
  tagsVersion: number,
): Promise<void> {
  const rows = Array.from({ length: partitions }, (_, partition) => [tenantId, partition, 0, 0, tagsVersion]);
  await pool.query(
    `INSERT IGNORE INTO ${tables.projection_checkpoints}
       (tenant_id, partition_no, position, events_applied, tags_version, updated_at)
     VALUES ${rows.map(() => '(?, ?, ?, ?, ?, UTC_TIMESTAMP(3))').join(', ')}`,
    rows.flat(),
  );
}

function checkpointFrom(row: RowDataPacket): CheckpointRow {
  return {
    position: sqlInt(row['position']),
    tagsVersion: sqlInt(row['tags_version']),
    tagsTargetVersion: row['tags_target_version'] === null ? null : sqlInt(row['tags_target_version']),
    tagsCursor: row['tags_cursor'] === null ? null : String(row['tags_cursor']),
  };
}

export async function readCheckpoint(
  pool: Pool | PoolConnection,
  tables: TableNames,
  tenantId: string,
  partition: number,
  lock = false,
): Promise<CheckpointRow | null> {
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT position, tags_version, tags_target_version, tags_cursor FROM ${tables.projection_checkpoints}
     WHERE tenant_id = ? AND partition_no = ?${lock ? ' FOR UPDATE' : ''}`,
    [tenantId, partition],
  );
  return rows[0] === undefined ? null : checkpointFrom(rows[0]);
}

async function lockCheckpoint(connection: PoolConnection, target: BatchTarget): Promise<CheckpointRow> {
  await step(target, 'lock-checkpoint');
  const row = await readCheckpoint(connection, target.tables, target.tenantId, target.partition, true);
  assert(row !== null, `no checkpoint row for ${target.tenantId}/${target.partition}`);
  return row;
}

/**
 * Advances the checkpoint: a compare-and-set on the position, and with a fence, a join on the lease row
 * that must still name this owner and token (renewing the lease in the same statement).
 */
async function advanceCheckpoint(
  connection: PoolConnection,
  target: BatchTarget,
  set: {
    from: number;
    to: number;
    events: number;
    tags?: { version: number; targetVersion: number | null; cursor: string | null };
  },
): Promise<void> {
  const tagsSql =
    set.tags === undefined ? '' : ', c.tags_version = ?, c.tags_target_version = ?, c.tags_cursor = ?';
  const tagsParams =
    set.tags === undefined ? [] : [set.tags.version, set.tags.targetVersion, set.tags.cursor];
  await step(target, 'checkpoint');
  let result: ResultSetHeader;
  if (target.fence === null) {
    [result] = await connection.query<ResultSetHeader>(
      `UPDATE ${target.tables.projection_checkpoints} c
       SET c.position = ?, c.events_applied = c.events_applied + ?, c.updated_at = UTC_TIMESTAMP(3)${tagsSql}
       WHERE c.tenant_id = ? AND c.partition_no = ? AND c.position = ?`,
      [set.to, set.events, ...tagsParams, target.tenantId, target.partition, set.from],
    );
  } else {
    [result] = await connection.query<ResultSetHeader>(
      `UPDATE ${target.tables.projection_checkpoints} c JOIN projection_leases l
         ON l.tenant_id = c.tenant_id AND l.partition_no = c.partition_no
       SET c.position = ?, c.events_applied = c.events_applied + ?, c.updated_at = UTC_TIMESTAMP(3)${tagsSql},
           l.expires_at = DATE_ADD(UTC_TIMESTAMP(3), INTERVAL ? SECOND)
       WHERE c.tenant_id = ? AND c.partition_no = ? AND c.position = ? AND l.owner = ? AND l.fencing_token = ?`,
      [
        set.to,
        set.events,
        ...tagsParams,
        target.fence.leaseSeconds,
        target.tenantId,
        target.partition,
        set.from,
        target.fence.owner,
        target.fence.token,
      ],
    );
  }
  if (result.affectedRows === 0) {
    throw new LeaseLostError(
      `${target.tenantId}/${target.partition}: lease lost (owner ${target.fence?.owner ?? '-'})`,
    );
  }
}

async function commitWithHooks(connection: PoolConnection, target: BatchTarget): Promise<void> {
  await target.hooks?.beforeCommit?.(info(target));
  await connection.commit();
}

/**
 * Runs fn in a transaction on its own connection; rolls back on any throw. A deadlock or lock-wait timeout
 * rolled the whole transaction back, and a batch is a pure function of (checkpoint, events, stored rows),
 * so it is simply run again, a bounded number of times.
 */
async function transaction<T>(pool: Pool, fn: (connection: PoolConnection) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await transactionOnce(pool, fn);
    } catch (error) {
      const errno = sqlErrno(error);
      const transient = errno === ER_LOCK_DEADLOCK || errno === ER_LOCK_WAIT_TIMEOUT;
      if (!transient || attempt >= BATCH_TRANSIENT_RETRIES_MAX) throw error;
    }
  }
}

async function transactionOnce<T>(pool: Pool, fn: (connection: PoolConnection) => Promise<T>): Promise<T> {
  const connection = await pool.getConnection();
  try {
    await connection.beginTransaction();
    try {
      return await fn(connection);
    } catch (error) {
      await connection.rollback().catch(() => undefined);
      throw error;
    }
  } finally {
    connection.release();
  }
}

export interface ApplyBatchResult {
  position: number;
  events: number;
  memberEvents: number;
  rows: number;
}

/**
 * Applies `events` (the log of target.partition right after `afterPosition`, in order) in one transaction.
 * Throws CheckpointMovedError if the checkpoint is not at afterPosition, LeaseLostError if the fence fails.
 */
export async function applyBatch(
  target: BatchTarget,
  events: readonly RecordedEvent[],
  afterPosition: number,
  rules: TagRuleSet,
  localDay: (at: string) => string,
): Promise<ApplyBatchResult> {
  assert(events.length > 0, 'an empty batch');
  const startedAtMs = Date.now();
  const toPosition = events[events.length - 1]!.position;
  const result = await transaction(target.pool, async (connection) => {
    const checkpoint = await lockCheckpoint(connection, target);
    if (checkpoint.position !== afterPosition)
      throw new CheckpointMovedError(afterPosition, checkpoint.position);
    assert(
      events[0]!.position > afterPosition,
      `batch starts at ${events[0]!.position}, not after ${afterPosition}`,
    );

    const plan = planLoads(events);
    const loaded = await loadRows(connection, target, plan);
    const fold = new BatchFold(
      { tenantId: target.tenantId, partition: target.partition, rules: rules.rules, localDay },
      loaded,
    );
    for (const event of events) fold.apply(event);
    const writes = fold.writes();
    await writeRows(connection, target, writes);
    await advanceCheckpoint(connection, target, {
      from: afterPosition,
      to: toPosition,
      events: events.length,
    });
    await commitWithHooks(connection, target);
    return {
      position: toPosition,
      events: events.length,
      memberEvents: writes.memberEvents,
      rows: rowsWritten(writes),
    };
  });
  await target.hooks?.afterCommit?.({
    ...info(target),
    fromPosition: afterPosition,
    toPosition,
    events: events.length,
    rows: result.rows,
    startedAtMs,
    committedAtMs: Date.now(),
  });
  return result;
}

// ---- reads --------------------------------------------------------------------------------------

function chunks<T>(items: readonly T[], size = SQL_ROWS_PER_STATEMENT_MAX): T[][] {
  const out: T[][] = [];
  for (let index = 0; index < items.length; index += size) out.push(items.slice(index, index + size));
  return out;
}

const ACCOUNT_COLUMNS =
  'member_id, partition_no, phone_masked, phone_sha256, tier, registered_store_id, channel, balance, held, earned_points, ' +
  'redeemed_points, expired_points, adjusted_points, reversed_points, restored_points, version, last_event_hash, registered_at, updated_at';

function accountFrom(row: RowDataPacket): AccountRow {
  return {
    memberId: String(row['member_id']),
    partition: sqlInt(row['partition_no']),
    phoneMasked: String(row['phone_masked']),
    phoneSha256: String(row['phone_sha256']),
    tier: String(row['tier']),
    registeredStoreId: String(row['registered_store_id']),
    channel: String(row['channel']),
    balance: sqlInt(row['balance']),
    held: sqlInt(row['held']),
    earned: sqlInt(row['earned_points']),
    redeemed: sqlInt(row['redeemed_points']),
    expired: sqlInt(row['expired_points']),
    adjusted: sqlInt(row['adjusted_points']),
    reversed: sqlInt(row['reversed_points']),
    restored: sqlInt(row['restored_points']),
    version: sqlInt(row['version']),
    lastEventHash: String(row['last_event_hash']),
    registeredAt: sqlTimeToIso(String(row['registered_at'])),
    updatedAt: sqlTimeToIso(String(row['updated_at'])),
  };
}

async function loadRows(
  connection: PoolConnection,
  target: BatchTarget,
  plan: ReturnType<typeof planLoads>,
): Promise<LoadedRows> {
  const { tables, tenantId } = target;
  const accounts = new Map<string, AccountRow>();
  for (const members of chunks(plan.members)) {
    await step(target, 'load-accounts');
    const [rows] = await connection.query<RowDataPacket[]>(
      `SELECT ${ACCOUNT_COLUMNS} FROM ${tables.member_accounts} WHERE tenant_id = ? AND member_id IN (?)`,
      [tenantId, members],
    );
    for (const row of rows) accounts.set(String(row['member_id']), accountFrom(row));
  }

  const lots = new Map<string, LotRow>();
  const debtors = [...plan.debitedLots.keys()];
  for (const members of chunks(debtors)) {
    const lotIds = [...new Set(members.flatMap((member) => [...plan.debitedLots.get(member)!]))];
    await step(target, 'load-lots');
    // member IN x lot IN is a superset of the pairs wanted; the extra rows are dropped below.
    const [rows] = await connection.query<RowDataPacket[]>(
      `SELECT member_id, lot_id, points, remaining, expires_at, earned_at FROM ${tables.member_lots}
       WHERE tenant_id = ? AND member_id IN (?) AND lot_id IN (?)`,
      [tenantId, members, lotIds],
    );
    for (const row of rows) {
      const memberId = String(row['member_id']);
      const lotId = String(row['lot_id']);
      if (!plan.debitedLots.get(memberId)?.has(lotId)) continue;
      lots.set(lotKey(memberId, lotId), {
        memberId,
        lotId,
        points: sqlInt(row['points']),
        remaining: sqlInt(row['remaining']),
        expiresAt: sqlTimeToIso(String(row['expires_at'])),
        earnedAt: sqlTimeToIso(String(row['earned_at'])),
      });
    }
  }

  const categories = new Map<string, Map<string, CategoryRow>>();
  for (const members of chunks(plan.purchasers)) {
    await step(target, 'load-categories');
    for (const row of await readCategories(connection, tables, tenantId, members)) {
      let byCategory = categories.get(row.memberId);
      if (byCategory === undefined) categories.set(row.memberId, (byCategory = new Map()));
      byCategory.set(row.category, row);
    }
  }
  return { accounts, lots, categories };
}

async function readCategories(
  connection: PoolConnection,
  tables: TableNames,
  tenantId: string,
  members: readonly string[],
): Promise<CategoryRow[]> {
  if (members.length === 0) return [];
  const [rows] = await connection.query<RowDataPacket[]>(
    `SELECT member_id, category, purchases, recent_at, last_at FROM ${tables.member_category_purchases}
     WHERE tenant_id = ? AND member_id IN (?)`,
    [tenantId, members],
  );
  return rows.map((row) => ({
    memberId: String(row['member_id']),
    category: String(row['category']),
    purchases: sqlInt(row['purchases']),
    recentAt: decodeRecent(String(row['recent_at'])),
    lastAt: sqlTimeToIso(String(row['last_at'])),
  }));
}

// ---- writes -------------------------------------------------------------------------------------

/** INSERT ... ON DUPLICATE KEY UPDATE with VALUES(): the one upsert spelling TiDB, MySQL 8 and MariaDB all run. */
async function upsert(
  connection: PoolConnection,
  target: BatchTarget,
  name: string,
  table: string,
  columns: readonly string[],
  rows: readonly unknown[][],
  onDuplicate: string | null,
): Promise<void> {
  for (const chunk of chunks(rows)) {
    await step(target, name);
    const placeholders = `(${columns.map(() => '?').join(', ')})`;
    await connection.query(
      `INSERT INTO ${table} (${columns.join(', ')}) VALUES ${chunk.map(() => placeholders).join(', ')}${
        onDuplicate === null ? '' : ` ON DUPLICATE KEY UPDATE ${onDuplicate}`
      }`,
      chunk.flat(),
    );
  }
}

function compareKeys(a1: string, a2: string, b1: string, b2: string): number {
  if (a1 !== b1) return a1 < b1 ? -1 : 1;
  return a2 < b2 ? -1 : a2 > b2 ? 1 : 0;
}

function assignAll(columns: readonly string[], keys: readonly string[]): string {
  return columns
    .filter((column) => !keys.includes(column))
    .map((column) => `${column} = VALUES(${column})`)
    .join(', ');
}

async function deleteByMember(
  connection: PoolConnection,
  target: BatchTarget,
  name: string,
  table: string,
  idColumn: string,
  keys: readonly MemberKey[],
): Promise<void> {
  const sorted = [...keys].sort((a, b) => compareKeys(a.memberId, a.id, b.memberId, b.id));
  for (const chunk of chunks(sorted)) {
    await step(target, name);
    // An OR of point equalities, not a row-constructor IN: MariaDB plans a one-pair (a, b) IN ((x, y)) as
    // a scan of the tenant's prefix, and a locking scan would lock (and deadlock on) other partitions' rows.
    const [result] = await connection.query<ResultSetHeader>(
      `DELETE FROM ${table} WHERE tenant_id = ? AND (${chunk.map(() => `(member_id = ? AND ${idColumn} = ?)`).join(' OR ')})`,
      [target.tenantId, ...chunk.flatMap((key) => [key.memberId, key.id])],
    );
    // A row this batch means to delete was written by an earlier batch; if it is missing, the model is wrong.
    assert(
      result.affectedRows === chunk.length,
      `${table}: deleted ${result.affectedRows} of ${chunk.length} rows`,
    );
  }
}

async function writeRows(
  connection: PoolConnection,
  target: BatchTarget,
  writes: BatchWrites,
): Promise<void> {
  const { tables, tenantId, partition } = target;
  const accountColumns = [
    'tenant_id',
    'member_id',
    'partition_no',
    'phone_masked',
    'phone_sha256',
    'tier',
    'registered_store_id',
    'channel',
    'balance',
    'held',
    'earned_points',
    'redeemed_points',
    'expired_points',
    'adjusted_points',
    'reversed_points',
    'restored_points',
    'version',
    'last_event_hash',
    'registered_at',
    'updated_at',
  ];
  await upsert(
    connection,
    target,
    'upsert-accounts',
    tables.member_accounts,
    accountColumns,
    [...writes.accounts]
      .sort((x, y) => compareKeys(x.memberId, '', y.memberId, ''))
      .map((a) => [
        tenantId,
        a.memberId,
        a.partition,
        a.phoneMasked,
        a.phoneSha256,
        a.tier,
        a.registeredStoreId,
        a.channel,
        a.balance,
        a.held,
        a.earned,
        a.redeemed,
        a.expired,
        a.adjusted,
        a.reversed,
        a.restored,
        a.version,
        a.lastEventHash,
        sqlTime(a.registeredAt),
        sqlTime(a.updatedAt),
      ]),
    assignAll(accountColumns, ['tenant_id', 'member_id']),
  );

  const lotColumns = ['tenant_id', 'member_id', 'lot_id', 'points', 'remaining', 'expires_at', 'earned_at'];
  await upsert(
    connection,
    target,
    'upsert-lots',
    tables.member_lots,
    lotColumns,
    [...writes.lotsUpsert]
      .sort((x, y) => compareKeys(x.memberId, x.lotId, y.memberId, y.lotId))
      .map((lot) => [
        tenantId,
        lot.memberId,
        lot.lotId,
        lot.points,
        lot.remaining,
        sqlTime(lot.expiresAt),
        sqlTime(lot.earnedAt),
      ]),
    'remaining = VALUES(remaining)',
  );
  await deleteByMember(connection, target, 'delete-lots', tables.member_lots, 'lot_id', writes.lotsDelete);

  await upsert(
    connection,
    target,
    'insert-holds',
    tables.member_holds,
    ['tenant_id', 'member_id', 'hold_id', 'order_id', 'store_id', 'points', 'expires_at', 'placed_at'],
    [...writes.holdsInsert]
      .sort((x, y) => compareKeys(x.memberId, x.holdId, y.memberId, y.holdId))
      .map((hold) => [
        tenantId,
        hold.memberId,
        hold.holdId,
        hold.orderId,
        hold.storeId,
        hold.points,
        sqlTime(hold.expiresAt),
        sqlTime(hold.placedAt),
      ]),
    null,
  );
  await deleteByMember(
    connection,
    target,
    'delete-holds',
    tables.member_holds,
    'hold_id',
    writes.holdsDelete,
  );

  // Plain INSERT: an entry applied twice is a duplicate key, a loud failure rather than a silent overwrite.
  await upsert(
    connection,
    target,
    'insert-ledger',
    tables.ledger_entries,
    [...LEDGER_ENTRY_KEY_COLUMNS, ...LEDGER_ENTRY_VALUE_COLUMNS],
    writes.ledger.map((entry) => [
      tenantId,
      entry.memberId,
      entry.streamVersion,
      entry.movementNo,
      entry.entryId,
      entry.partition,
      entry.position,
      entry.eventType,
      sqlTime(entry.at),
      entry.kind,
      entry.points,
      entry.balanceAfter,
      entry.orderId,
      entry.storeId,
      entry.reason,
    ]),
    null,
  );

  // Sums are keyed by partition as well, so no two partitions' batches ever wait on the same row.
  const storeDays = [...writes.storeDays].sort((a, b) => (a.day + a.storeId < b.day + b.storeId ? -1 : 1));
  await upsert(
    connection,
    target,
    'upsert-store-days',
    tables.store_daily_totals,
    [
      'tenant_id',
      'day',
      'store_id',
      'partition_no',
      'earned_points',
      'redeemed_points',
      'reversed_points',
      'restored_points',
      'movements',
    ],
    storeDays.map((d) => [
      tenantId,
      d.day,
      d.storeId,
      partition,
      d.earned,
      d.redeemed,
      d.reversed,
      d.restored,
      d.movements,
    ]),
    ['earned_points', 'redeemed_points', 'reversed_points', 'restored_points', 'movements']
      .map((column) => `${column} = ${column} + VALUES(${column})`)
      .join(', '),
  );
  await upsert(
    connection,
    target,
    'upsert-totals',
    tables.tenant_totals,
    ['tenant_id', 'partition_no', 'account', 'points', 'postings'],
    writes.totals.map((total) => [tenantId, partition, total.account, total.points, total.postings]),
    'points = points + VALUES(points), postings = postings + VALUES(postings)',
  );

  const categoryColumns = [
    'tenant_id',
    'member_id',
    'category',
    'partition_no',
    'purchases',
    'recent_at',
    'last_at',
  ];
  await upsert(
    connection,
    target,
    'upsert-categories',
    tables.member_category_purchases,
    categoryColumns,
    [...writes.categories]
      .sort((x, y) => compareKeys(x.memberId, x.category, y.memberId, y.category))
      .map((row) => [
        tenantId,
        row.memberId,
        row.category,
        partition,
        row.purchases,
        encodeRecent(row.recentAt),
        sqlTime(row.lastAt),
      ]),
    assignAll(categoryColumns, ['tenant_id', 'member_id', 'category']),
  );
  await replaceTags(connection, target, writes.tagMembers, writes.tags);
}

async function replaceTags(
  connection: PoolConnection,
  target: BatchTarget,
  members: readonly string[],
  tags: readonly { memberId: string; tag: string; expiresAt: string; updatedAt: string }[],
): Promise<void> {
  for (const chunk of chunks([...members].sort())) {
    await step(target, 'delete-tags');
    await connection.query(
      `DELETE FROM ${target.tables.member_tags} WHERE tenant_id = ? AND member_id IN (?)`,
      [target.tenantId, chunk],
    );
  }
  await upsert(
    connection,
    target,
    'insert-tags',
    target.tables.member_tags,
    ['tenant_id', 'member_id', 'tag', 'expires_at', 'updated_at'],
    [...tags]
      .sort((x, y) => compareKeys(x.memberId, x.tag, y.memberId, y.tag))
      .map((tag) => [target.tenantId, tag.memberId, tag.tag, sqlTime(tag.expiresAt), sqlTime(tag.updatedAt)]),
    null,
  );
}

// ---- tag re-derivation after a rule change ---------------------------------------------------------

/**
 * One step of re-deriving a partition's tags under the current rules (after setTagRules): the next
 * TAG_RECOMPUTE_MEMBERS_PER_TRANSACTION members with purchases, from member_category_purchases, in one
 * fenced transaction that also moves the cursor. Returns true while more steps are needed.
 */
export async function recomputeTagsStep(target: BatchTarget, rules: TagRuleSet): Promise<boolean> {
  return transaction(target.pool, async (connection) => {
    const checkpoint = await lockCheckpoint(connection, target);
    if (checkpoint.tagsVersion === rules.version) return false;
    const cursor = checkpoint.tagsTargetVersion === rules.version ? (checkpoint.tagsCursor ?? '') : '';
    await step(target, 'recompute-members');
    const [memberRows] = await connection.query<RowDataPacket[]>(
      `SELECT DISTINCT member_id FROM ${target.tables.member_category_purchases}
       WHERE tenant_id = ? AND partition_no = ? AND member_id > ? ORDER BY member_id LIMIT ?`,
      [target.tenantId, target.partition, cursor, TAG_RECOMPUTE_MEMBERS_PER_TRANSACTION],
    );
    const members = memberRows.map((row) => String(row['member_id']));
    const byMember = new Map<string, CategoryRow[]>();
    for (const row of await readCategories(connection, target.tables, target.tenantId, members)) {
      const rows = byMember.get(row.memberId) ?? [];
      rows.push(row);
      byMember.set(row.memberId, rows);
    }
    const tags = members.flatMap((memberId) => {
      const rows = byMember.get(memberId) ?? [];
      const updatedAt = rows.reduce((latest, row) => (row.lastAt > latest ? row.lastAt : latest), '');
      return [...evaluateTags(rows, rules.rules)].map(([tag, expiresAt]) => ({
        memberId,
        tag,
        expiresAt,
        updatedAt,
      }));
    });
    await replaceTags(connection, target, members, tags);
    const done = members.length < TAG_RECOMPUTE_MEMBERS_PER_TRANSACTION;
    await advanceCheckpoint(connection, target, {
      from: checkpoint.position,
      to: checkpoint.position,
      events: 0,
      tags: done
        ? { version: rules.version, targetVersion: null, cursor: null }
        : {
            version: checkpoint.tagsVersion,
            targetVersion: rules.version,
            cursor: members[members.length - 1]!,
          },
    });
    await commitWithHooks(connection, target);
    return !done;
  });
}
