import { replayMember } from '../audit/member-replay.ts';
import { memberFolder } from '../commands/members.ts';
import { loadStream, toDomainEvent } from '../commands/stream-loader.ts';
import { memberIdOfStream, memberStreamId } from '../commands/streams.ts';
import type { MemberEvent } from '../domain/member/events.ts';
import { movementsOf, type MovementKind } from '../domain/member/movements.ts';
import { maskPhone } from '../domain/member/phone.ts';
import type { MemberState } from '../domain/member/state.ts';
import { housekeeping } from '../domain/member/decider.ts';
import { memberView } from '../domain/member/view.ts';
import type { EventStore } from '../eventstore/port.ts';
import { memberTags } from '../projections/tags.ts';
import type { Pool } from '../db/pool.ts';

/** The member view of CONTRACT.md. */
export interface MemberViewBody {
  memberId: string;
  tenantId: string;
  phone: string;
  tier: string;
  points: { balance: number; held: number; available: number };
  expiring: { points: number; expiresAt: string }[];
  tags: string[];
  version: number;
}

export function memberViewBody(
  tenantId: string,
  state: MemberState,
  version: number,
  now: string,
  tags: string[],
): MemberViewBody | null {
  if (!state.registered) return null;
  // As the next command will find it: holds and lots past their expiry are gone even before an event says
  // so (decider.ts, housekeeping), so a till is never shown points it cannot spend.
  const view = memberView(housekeeping(state, now).state, now);
  return {
    memberId: state.memberId,
    tenantId,
    phone: maskPhone(state.phone),
    tier: view.tier,
    points: { balance: view.balance, held: view.held, available: view.available },
    expiring: view.expiring.map((e) => ({ points: e.points, expiresAt: e.expiresAt })),
    tags,
    version,
  };
}

/**
 * A member view read from the command side (the stream's snapshot), so a POS reads its own write on the
 * very next request; only tags come from the projected read model (within a second of the purchase).
 */
export async function readMemberView(
  store: EventStore,
  pool: Pool,
  tenantId: string,
  memberId: string,
  now: string,
): Promise<MemberViewBody | null> {
  const loaded = await loadStream(store, tenantId, memberStreamId(memberId), memberFolder);
  if (!loaded.state.registered) return null;
  return memberViewBody(
    tenantId,
    loaded.state,
    loaded.version,
    now,
    await memberTags(pool, tenantId, memberId, now),
  );
}

export async function findMemberIdByPhone(
  store: EventStore,
  tenantId: string,
  normalizedPhone: string,
): Promise<string | null> {
  const streamId = await store.findUniqueKey(tenantId, `phone:${normalizedPhone}`);
  return streamId === null ? null : memberIdOfStream(streamId);
}

export interface LedgerEntry {
  entryId: string;
  at: string;
  kind: MovementKind;
  points: number;
  balanceAfter: number;
  orderId?: string;
  storeId?: string;
  reason?: string;
}

/** Events read per round trip while paging a ledger. */
const LEDGER_SCAN_EVENTS = 500;
/** Events one ledger request may scan before it returns a cursor (bounds a request over a sparse range). */
const LEDGER_SCAN_EVENTS_MAX = 20_000;

/**
 * A page of a member's ledger, read from the events (never behind the last write). The cursor is the
 * stream version to continue after, so pages are stable while new events arrive.
 */
export async function readLedgerPage(
  store: EventStore,
  tenantId: string,
  memberId: string,
  options: { from?: string; to?: string; limit: number; afterVersion: number },
): Promise<{ entries: LedgerEntry[]; nextVersion: number | null }> {
  const entries: LedgerEntry[] = [];
  let version = options.afterVersion;
  let scanned = 0;
  for (;;) {
    const page = await store.readStream(tenantId, memberStreamId(memberId), {
      fromVersion: version + 1,
      limit: LEDGER_SCAN_EVENTS,
    });
    for (const recorded of page) {
      if (options.to !== undefined && recorded.recordedAt >= options.to)
        return { entries, nextVersion: null };
      const inWindow = options.from === undefined || recorded.recordedAt >= options.from;
      const movements = inWindow ? movementsOf(toDomainEvent<MemberEvent>(recorded)) : [];
      // The page ends before the first event that does not fit, so a cursor is returned only when another
      // entry exists (a full page at the end of the stream answers null). Both movements of a refund stay
      // on one page.
      if (movements.length > 0 && entries.length > 0 && entries.length + movements.length > options.limit) {
        return { entries, nextVersion: version };
      }
      version = recorded.streamVersion;
      scanned += 1;
      for (const movement of movements) {
        entries.push({
          entryId: movement.suffix === '' ? recorded.eventId : `${recorded.eventId}:${movement.suffix}`,
          at: recorded.recordedAt,
          kind: movement.kind,
          points: movement.points,
          balanceAfter: movement.balanceAfter,
          ...(movement.orderId === undefined ? {} : { orderId: movement.orderId }),
          ...(movement.storeId === undefined ? {} : { storeId: movement.storeId }),
          ...(movement.reason === undefined ? {} : { reason: movement.reason }),
        });
      }
      if (scanned >= LEDGER_SCAN_EVENTS_MAX) return { entries, nextVersion: version };
    }
    if (page.length < LEDGER_SCAN_EVENTS) return { entries, nextVersion: null };
  }
}

/**
 * The state of a member as of an instant, folded from its events (not from the read model or snapshot).
 * The fold is the one `ledger replay` prints (src/audit/member-replay.ts).
 */
export async function replayMemberAsOf(
  store: EventStore,
  tenantId: string,
  memberId: string,
  asOf: string,
): Promise<{ state: MemberState; version: number } | null> {
  const replayed = await replayMember(store, tenantId, memberId, { asOf });
  return replayed.state.registered ? replayed : null;
}
