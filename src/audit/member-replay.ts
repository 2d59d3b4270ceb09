/**
 * The one fold of a member's stream from its events (never from a snapshot or a read model): what
 * `GET /v1/members/{id}/balance?asOf=` answers from and what `ledger replay` prints, step by step.
 * Keeping both on this function means the auditor's printout and the API's as-of balance cannot disagree.
 */
import { memberStreamId } from '../commands/streams.ts';
import { toDomainEvent } from '../commands/stream-loader.ts';
import type { MemberEvent } from '../domain/member/events.ts';
import { evolveMember } from '../domain/member/evolve.ts';
import { movementsOf, type Movement } from '../domain/member/movements.ts';
import { initialMemberState, type MemberState } from '../domain/member/state.ts';
import type { EventStore, RecordedEvent } from '../eventstore/port.ts';

/** Events read per round trip (bounded memory whatever the history's length). */
export const REPLAY_PAGE_EVENTS = 1_000;

export interface ReplayStep {
  recorded: RecordedEvent;
  event: MemberEvent;
  /** The state after the event. */
  state: MemberState;
  /** How the event moved the member's points (the ledger entries it makes). */
  movements: Movement[];
}

export interface ReplayedMember {
  state: MemberState;
  /** The version of the last event folded (0 = none). */
  version: number;
}

/**
 * Folds a member's events in version order with evolveMember (which re-checks every balanceAfter and the
 * lot invariants). With `asOf`, stops before the first event the ledger recorded after that instant
 * (`data.at`, the recording time every event carries: the same clock finance periods follow).
 */
export async function replayMember(
  store: EventStore,
  tenantId: string,
  memberId: string,
  options: { asOf?: string; onStep?: (step: ReplayStep) => void } = {},
): Promise<ReplayedMember> {
  const streamId = memberStreamId(memberId);
  let state = initialMemberState();
  let version = 0;
  for (;;) {
    const page = await store.readStream(tenantId, streamId, {
      fromVersion: version + 1,
      limit: REPLAY_PAGE_EVENTS,
    });
    for (const recorded of page) {
      const event = toDomainEvent<MemberEvent>(recorded);
      if (options.asOf !== undefined && event.data.at > options.asOf) return { state, version };
      state = evolveMember(state, event);
      version = recorded.streamVersion;
      options.onStep?.({ recorded, event, state, movements: movementsOf(event) });
    }
    if (page.length < REPLAY_PAGE_EVENTS) return { state, version };
  }
}
