/**
 * The projection of one batch, without I/O: given the rows the batch's events touch (loaded by batch.ts)
 * and the events in log order, it computes every row to write. Member rows are written as absolute
 * values, so each event is checked against what is stored (TigerBeetle's paired assertions): the stored
 * stream version is exactly one behind the event (an event is never skipped or applied twice), the stored
 * balance plus the event's movements equals its balanceAfter, a lot never goes below zero, and the six
 * lifetime columns always add up to the balance. Only the per-store and per-account sums are written as
 * deltas, which is exact because the batch and its checkpoint commit together.
 */
import { createHash } from 'node:crypto';
import { assert } from '../domain/assert.ts';
import {
  MEMBER_EVENT_TYPES,
  maskPhone,
  movementsOf,
  postingsFor,
  type LotCredit,
  type LotDebit,
  type MemberEvent,
  type MovementKind,
} from '../domain/member/index.ts';
import { addPoints, sumBy } from '../domain/points.ts';
import type { RecordedEvent } from '../eventstore/port.ts';
import { memberIdOfStream } from '../commands/streams.ts';
import {
  evaluateTags,
  TAG_CATEGORY_ANY,
  withPurchase,
  type CategoryPurchases,
  type TagRule,
} from './tags.ts';

export interface AccountRow {
  memberId: string;
  partition: number;
  phoneMasked: string;
  phoneSha256: string;
  tier: string;
  registeredStoreId: string;
  channel: string;
  balance: number;
  /** Points of holds no event has ended yet. */
  held: number;
  earned: number;
  redeemed: number;
  expired: number;
  adjusted: number;
  reversed: number;
  restored: number;
  version: number;
  lastEventHash: string;
  registeredAt: string;
  updatedAt: string;
}

export interface LotRow {
  memberId: string;
  lotId: string;
  points: number;
  remaining: number;
  expiresAt: string;
  earnedAt: string;
}

export interface HoldRow {
  memberId: string;
  holdId: string;
  orderId: string;
  storeId: string;
  points: number;
  expiresAt: string;
  placedAt: string;
}

export interface CategoryRow extends CategoryPurchases {
  memberId: string;
  lastAt: string;
}

export interface LedgerRow {
  memberId: string;
  streamVersion: number;
  movementNo: number;
  entryId: string;
  partition: number;
  position: number;
  eventType: string;
  at: string;
  kind: MovementKind;
  points: number;
  balanceAfter: number;
  orderId: string | null;
  storeId: string | null;
  reason: string | null;
}

export interface StoreDayDelta {
  day: string;
  storeId: string;
  earned: number;
  redeemed: number;
  reversed: number;
  restored: number;
  movements: number;
}

export interface AccountTotalDelta {
  account: string;
  points: number;
  postings: number;
}

export interface TagRow {
  memberId: string;
  tag: string;
  expiresAt: string;
  updatedAt: string;
}

export interface MemberKey {
  memberId: string;
  id: string;
}

/** What a batch needs read before it can fold. */
export interface BatchLoadPlan {
  members: string[];
  /** Lots named by debits, per member (a lot credited earlier in the same batch is not read). */
  debitedLots: Map<string, Set<string>>;
  /** Members with a purchase: their category rows are read and their tags re-derived. */
  purchasers: string[];
}

export interface LoadedRows {
  accounts: Map<string, AccountRow>;
  /** Keyed lotKey(memberId, lotId). */
  lots: Map<string, LotRow>;
  /** member -> category -> row. */
  categories: Map<string, Map<string, CategoryRow>>;
}

export interface BatchWrites {
  accounts: AccountRow[];
  lotsUpsert: LotRow[];
  lotsDelete: MemberKey[];
  holdsInsert: HoldRow[];
  holdsDelete: MemberKey[];
  ledger: LedgerRow[];
  storeDays: StoreDayDelta[];
  totals: AccountTotalDelta[];
  categories: CategoryRow[];
  /** Members whose tags are replaced by `tags` (theirs only). */
  tagMembers: string[];
  tags: TagRow[];
  /** Events that were member events (the rest only advance the checkpoint). */
  memberEvents: number;
}

/** Rows a batch writes or deletes (for the benchmark's rows/s). */
export function rowsWritten(writes: BatchWrites): number {
  return (
    writes.accounts.length +
    writes.lotsUpsert.length +
    writes.lotsDelete.length +
    writes.holdsInsert.length +
    writes.holdsDelete.length +
    writes.ledger.length +
    writes.storeDays.length +
    writes.totals.length +
    writes.categories.length +
    writes.tags.length
  );
}

export function lotKey(memberId: string, lotId: string): string {
  return `${memberId}\u001f${lotId}`;
}

const MEMBER_EVENT_TYPE_SET = new Set<string>(MEMBER_EVENT_TYPES);

/** The member event in a recorded event, null for other streams. An unknown type on a member stream is a bug to stop at. */
export function memberEventOf(recorded: RecordedEvent): { memberId: string; event: MemberEvent } | null {
  const memberId = memberIdOfStream(recorded.streamId);
  if (memberId === null) return null;
  assert(
    MEMBER_EVENT_TYPE_SET.has(recorded.type),
    `unknown event type ${recorded.type} on ${recorded.streamId} at ${recorded.partition}/${recorded.position}`,
  );
  return { memberId, event: { type: recorded.type, data: recorded.data } as MemberEvent };
}

function debitsOf(event: MemberEvent): readonly LotDebit[] {
  switch (event.type) {
    case 'HoldCaptured':
    case 'PointsRedeemed':
    case 'PointsAdjusted':
      return event.data.consumed;
    case 'PurchaseRefunded':
      return event.data.reversedConsumed;
    case 'LotsExpired':
      return event.data.lots;
    default:
      return [];
  }
}

export function planLoads(events: readonly RecordedEvent[]): BatchLoadPlan {
  const members = new Set<string>();
  const purchasers = new Set<string>();
  const debitedLots = new Map<string, Set<string>>();
  for (const recorded of events) {
    const member = memberEventOf(recorded);
    if (member === null) continue;
    members.add(member.memberId);
    if (member.event.type === 'PurchaseRecorded') purchasers.add(member.memberId);
    for (const debit of debitsOf(member.event)) {
      let lots = debitedLots.get(member.memberId);
      if (lots === undefined) debitedLots.set(member.memberId, (lots = new Set()));
      lots.add(debit.lotId);
    }
  }
  return { members: [...members], debitedLots, purchasers: [...purchasers] };
}

export function phoneSha256(phone: string): string {
  return createHash('sha256').update(phone).digest('hex');
}

type TrackedLot = { row: LotRow; persisted: boolean; changed: boolean };
type TrackedHold = { row: HoldRow | null; persisted: boolean };

const LIFETIME_COLUMN: Readonly<
  Record<
    MovementKind,
    keyof AccountRow & ('earned' | 'redeemed' | 'expired' | 'adjusted' | 'reversed' | 'restored')
  >
> = {
  earned: 'earned',
  redeemed: 'redeemed',
  expired: 'expired',
  adjusted: 'adjusted',
  reversed: 'reversed',
  restored: 'restored',
};

export interface FoldOptions {
  tenantId: string;
  partition: number;
  rules: readonly TagRule[];
  /** Local calendar date (tenant time zone) of an instant, for the per-store day. */
  localDay(at: string): string;
}

/** Folds one batch. Use once: new BatchFold(...), apply each event in log order, then writes(). */
export class BatchFold {
  private readonly accounts = new Map<string, AccountRow>();
  private readonly changedAccounts = new Set<string>();
  private readonly lots = new Map<string, TrackedLot>();
  private readonly holds = new Map<string, TrackedHold & { memberId: string; holdId: string }>();
  private readonly categories: Map<string, Map<string, CategoryRow>>;
  private readonly changedCategories = new Map<string, CategoryRow>();
  private readonly ledger: LedgerRow[] = [];
  private readonly storeDays = new Map<string, StoreDayDelta>();
  private readonly totals = new Map<string, AccountTotalDelta>();
  private readonly tagMembers = new Set<string>();
  private memberEvents = 0;
  private lastPosition = -1;

  constructor(
    private readonly options: FoldOptions,
    loaded: LoadedRows,
  ) {
    for (const [memberId, row] of loaded.accounts) this.accounts.set(memberId, { ...row });
    for (const [key, row] of loaded.lots)
      this.lots.set(key, { row: { ...row }, persisted: true, changed: false });
    this.categories = new Map([...loaded.categories].map(([memberId, rows]) => [memberId, new Map(rows)]));
  }

  apply(recorded: RecordedEvent): void {
    assert(
      recorded.tenantId === this.options.tenantId,
      `event of tenant ${recorded.tenantId} in a batch of ${this.options.tenantId}`,
    );
    assert(
      recorded.partition === this.options.partition,
      `event of partition ${recorded.partition} in a batch of ${this.options.partition}`,
    );
    assert(
      recorded.position > this.lastPosition,
      `log position ${recorded.position} after ${this.lastPosition}`,
    );
    this.lastPosition = recorded.position;
    const member = memberEventOf(recorded);
    if (member === null) return;
    this.memberEvents += 1;
    const { memberId, event } = member;
    const at = event.data.at;

    let account: AccountRow;
    if (event.type === 'MemberRegistered') {
      assert(!this.accounts.has(memberId), `MemberRegistered for ${memberId}, which has an account row`);
      assert(recorded.streamVersion === 1, `MemberRegistered at stream version ${recorded.streamVersion}`);
      assert(
        event.data.memberId === memberId,
        `MemberRegistered names ${event.data.memberId} on stream of ${memberId}`,
      );
      account = {
        memberId,
        partition: recorded.partition,
        phoneMasked: maskPhone(event.data.phone),
        phoneSha256: phoneSha256(event.data.phone),
        tier: event.data.tier,
        registeredStoreId: event.data.storeId,
        channel: event.data.channel,
        balance: 0,
        held: 0,
        earned: 0,
        redeemed: 0,
        expired: 0,
        adjusted: 0,
        reversed: 0,
        restored: 0,
        version: 0,
        lastEventHash: '',
        registeredAt: at,
        updatedAt: at,
      };
      this.accounts.set(memberId, account);
    } else {
      const found = this.accounts.get(memberId);
      assert(
        found !== undefined,
        `${event.type} for ${memberId}, which has no account row (version ${recorded.streamVersion})`,
      );
      account = found;
    }
    // Invariant 7, checked on every event: exactly the next version of the stream.
    assert(
      account.version + 1 === recorded.streamVersion,
      `${memberId}: event version ${recorded.streamVersion} but the read model is at ${account.version}`,
    );

    const balanceBefore = account.balance;
    switch (event.type) {
      case 'MemberRegistered':
      case 'PointsRedeemed':
      case 'LotsExpired':
        break;
      case 'MemberProfileUpdated':
        if (event.data.phone !== undefined) {
          account.phoneMasked = maskPhone(event.data.phone);
          account.phoneSha256 = phoneSha256(event.data.phone);
        }
        break;
      case 'TierChanged':
        assert(
          account.tier === event.data.from,
          `${memberId}: TierChanged from ${event.data.from} but tier is ${account.tier}`,
        );
        account.tier = event.data.to;
        break;
      case 'PurchaseRecorded':
        this.credit(memberId, event.data.lot, event.data.debtRepaid, at);
        this.recordPurchase(memberId, event.data.categories, at);
        break;
      case 'PointsHeld':
        account.held = addPoints(account.held, event.data.points);
        this.placeHold(memberId, {
          memberId,
          holdId: event.data.holdId,
          orderId: event.data.orderId,
          storeId: event.data.storeId,
          points: event.data.points,
          expiresAt: event.data.expiresAt,
          placedAt: at,
        });
        break;
      case 'HoldCaptured':
        account.held = addPoints(account.held, -(event.data.points + event.data.releasedPoints));
        this.endHold(memberId, event.data.holdId);
        break;
      case 'HoldReleased':
        account.held = addPoints(account.held, -event.data.points);
        this.endHold(memberId, event.data.holdId);
        break;
      case 'PurchaseRefunded':
        this.credit(memberId, event.data.restoredLot, event.data.debtRepaid, at);
        break;
      case 'PointsAdjusted':
        if (event.data.points > 0) this.credit(memberId, event.data.lot, event.data.debtRepaid, at);
        break;
    }
    for (const debit of debitsOf(event)) this.debitLot(memberId, debit);
    assert(account.held >= 0, `${memberId}: held went below zero at version ${recorded.streamVersion}`);

    // Movements (the domain's definition of a ledger entry) move the balance and the lifetime columns.
    const movements = movementsOf(event);
    movements.forEach((movement, movementNo) => {
      const column = LIFETIME_COLUMN[movement.kind];
      account[column] = addPoints(account[column], movement.points);
      account.balance = addPoints(account.balance, movement.points);
      assert(
        account.balance === movement.balanceAfter,
        `${memberId} v${recorded.streamVersion}: balance ${account.balance} after ${movement.kind} != balanceAfter ${movement.balanceAfter}`,
      );
      this.ledger.push({
        memberId,
        streamVersion: recorded.streamVersion,
        movementNo,
        entryId: movement.suffix === '' ? recorded.eventId : `${recorded.eventId}:${movement.suffix}`,
        partition: recorded.partition,
        position: recorded.position,
        eventType: event.type,
        at,
        kind: movement.kind,
        points: movement.points,
        balanceAfter: movement.balanceAfter,
        orderId: movement.orderId ?? null,
        storeId: movement.storeId ?? null,
        reason: movement.reason ?? null,
      });
      if (movement.storeId !== undefined)
        this.addStoreMovement(movement.storeId, at, movement.kind, movement.points);
    });
    if ('balanceAfter' in event.data) {
      assert(
        account.balance === event.data.balanceAfter,
        `${memberId} v${recorded.streamVersion}: balance ${account.balance} != balanceAfter ${event.data.balanceAfter}`,
      );
    } else {
      assert(account.balance === balanceBefore, `${event.type} moved the balance`);
    }
    assert(
      account.earned +
        account.redeemed +
        account.expired +
        account.adjusted +
        account.reversed +
        account.restored ===
        account.balance,
      `${memberId}: lifetime movements do not add up to the balance ${account.balance}`,
    );

    for (const posting of postingsFor(event)) {
      const total = this.totals.get(posting.account) ?? { account: posting.account, points: 0, postings: 0 };
      total.points = addPoints(total.points, posting.points);
      total.postings += 1;
      this.totals.set(posting.account, total);
    }

    account.version = recorded.streamVersion;
    account.lastEventHash = recorded.streamHash;
    account.updatedAt = at;
    this.changedAccounts.add(memberId);
  }

  private credit(memberId: string, lot: LotCredit | null, debtRepaid: number, at: string): void {
    if (lot === null) return;
    const remaining = lot.points - debtRepaid;
    assert(remaining >= 0, `lot ${lot.lotId}: repaid ${debtRepaid} of a credit of ${lot.points}`);
    if (remaining === 0) return;
    const key = lotKey(memberId, lot.lotId);
    assert(!this.lots.has(key), `lot ${lot.lotId} of ${memberId} is credited twice`);
    this.lots.set(key, {
      row: {
        memberId,
        lotId: lot.lotId,
        points: lot.points,
        remaining,
        expiresAt: lot.expiresAt,
        earnedAt: at,
      },
      persisted: false,
      changed: true,
    });
  }

  private debitLot(memberId: string, debit: LotDebit): void {
    const tracked = this.lots.get(lotKey(memberId, debit.lotId));
    assert(
      tracked !== undefined && tracked.row.remaining > 0,
      `${memberId}: debit of lot ${debit.lotId}, which is not open`,
    );
    assert(
      debit.points > 0 && debit.points <= tracked.row.remaining,
      `${memberId}: lot ${debit.lotId} has ${tracked.row.remaining}, debit wants ${debit.points}`,
    );
    tracked.row.remaining -= debit.points;
    tracked.changed = true;
  }

  private placeHold(memberId: string, row: HoldRow): void {
    const key = lotKey(memberId, row.holdId);
    assert(!this.holds.has(key), `hold ${row.holdId} of ${memberId} placed twice in a batch`);
    this.holds.set(key, { row, persisted: false, memberId, holdId: row.holdId });
  }

  private endHold(memberId: string, holdId: string): void {
    const key = lotKey(memberId, holdId);
    const tracked = this.holds.get(key);
    if (tracked === undefined) {
      // Placed in an earlier batch: its row is deleted.
      this.holds.set(key, { row: null, persisted: true, memberId, holdId });
      return;
    }
    assert(tracked.row !== null, `hold ${holdId} of ${memberId} ended twice`);
    if (tracked.persisted) tracked.row = null;
    else this.holds.delete(key);
  }

  private recordPurchase(memberId: string, categories: readonly string[], at: string): void {
    let rows = this.categories.get(memberId);
    if (rows === undefined) this.categories.set(memberId, (rows = new Map()));
    for (const category of new Set(categories)) {
      const before = rows.get(category);
      const after = withPurchase(before ?? { category, purchases: 0, recentAt: [] }, at);
      // Built field by field: a spread of withPurchase's row here cost about 5 us a purchase (BENCHMARKS.md).
      const row: CategoryRow = {
        memberId,
        category,
        purchases: after.purchases,
        recentAt: after.recentAt,
        lastAt: before !== undefined && before.lastAt > at ? before.lastAt : at,
      };
      rows.set(category, row);
      this.changedCategories.set(lotKey(memberId, category), row);
    }
    // Tags derive only from ruled categories: a purchase in none of them cannot change the member's tags.
    if (categories.some((category) => this.ruledCategory(category))) this.tagMembers.add(memberId);
  }

  private ruledCategory(category: string): boolean {
    return this.options.rules.some(
      (rule) => rule.category === TAG_CATEGORY_ANY || rule.category === category,
    );
  }

  private addStoreMovement(storeId: string, at: string, kind: MovementKind, points: number): void {
    const day = this.options.localDay(at);
    const key = `${day}\u001f${storeId}`;
    const delta = this.storeDays.get(key) ?? {
      day,
      storeId,
      earned: 0,
      redeemed: 0,
      reversed: 0,
      restored: 0,
      movements: 0,
    };
    switch (kind) {
      case 'earned':
      case 'redeemed':
      case 'reversed':
      case 'restored':
        delta[kind] = addPoints(delta[kind], points);
        break;
      default:
        // Adjustments and expiries belong to no store.
        return;
    }
    delta.movements += 1;
    this.storeDays.set(key, delta);
  }

  writes(): BatchWrites {
    const lotsUpsert: LotRow[] = [];
    const lotsDelete: MemberKey[] = [];
    for (const { row, persisted, changed } of this.lots.values()) {
      if (!changed) continue;
      if (row.remaining > 0) lotsUpsert.push(row);
      else if (persisted) lotsDelete.push({ memberId: row.memberId, id: row.lotId });
    }
    const holdsInsert: HoldRow[] = [];
    const holdsDelete: MemberKey[] = [];
    for (const tracked of this.holds.values()) {
      if (tracked.row === null) holdsDelete.push({ memberId: tracked.memberId, id: tracked.holdId });
      else if (!tracked.persisted) holdsInsert.push(tracked.row);
    }
    const tags: TagRow[] = [];
    for (const memberId of this.tagMembers) {
      const rows = [...(this.categories.get(memberId)?.values() ?? [])];
      for (const [tag, expiresAt] of evaluateTags(rows, this.options.rules)) {
        const updatedAt = rows.reduce((latest, row) => (row.lastAt > latest ? row.lastAt : latest), '');
        tags.push({ memberId, tag, expiresAt, updatedAt });
      }
    }
    const accounts = [...this.changedAccounts].map((memberId) => this.accounts.get(memberId)!);
    for (const account of accounts) {
      if (account.balance >= 0) continue;
      // Invariant 4's other half: a member in debt has no open lot among those this batch touched.
      assert(
        ![...this.lots.values()].some(({ row }) => row.memberId === account.memberId && row.remaining > 0),
        `${account.memberId} is in debt with open lots`,
      );
    }
    assert(
      sumBy([...this.totals.values()], (total) => total.points) === 0,
      'the batch postings do not sum to zero',
    );
    return {
      accounts,
      lotsUpsert,
      lotsDelete,
      holdsInsert,
      holdsDelete,
      ledger: this.ledger,
      storeDays: [...this.storeDays.values()],
      totals: [...this.totals.values()],
      categories: [...this.changedCategories.values()],
      tagMembers: [...this.tagMembers],
      tags,
      memberEvents: this.memberEvents,
    };
  }
}
