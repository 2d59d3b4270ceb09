import type { EventStore, RecordedEvent } from '../eventstore/port.ts';

/** What a stream's command side needs: how to fold events, and the schema its snapshots are written in. */
export interface StreamFolder<S, E> {
  /** Bump when the state's shape changes: older snapshots are then ignored and the state is rebuilt. */
  readonly snapshotSchema: number;
  initialState(): S;
  evolve(state: S, event: E): S;
  /** A rough size of the state in memory: what it costs the command side's cache (state-cache.ts). */
  stateBytes(state: S): number;
}

export interface LoadedStream<S> {
  state: S;
  /** The stream's version (0 = no stream). */
  version: number;
  /** True when the state came from a snapshot (no events read). */
  fromSnapshot: boolean;
}

/** Events read per round trip while rebuilding a state without a usable snapshot. */
const REBUILD_PAGE_EVENTS = 1_000;

export function toDomainEvent<E>(recorded: RecordedEvent): E {
  return { type: recorded.type, data: recorded.data } as E;
}

/**
 * Loads a stream's command-side state: from its snapshot when it is current and of this schema (one
 * primary-key read, whatever the history), otherwise by folding events after the snapshot or from the
 * start, and then storing the rebuilt snapshot (guarded by the version), so the fold happens once and
 * not on every read until the member's next command.
 */
export async function loadStream<S, E>(
  store: EventStore,
  tenantId: string,
  streamId: string,
  folder: StreamFolder<S, E>,
): Promise<LoadedStream<S>> {
  const head = await store.streamHead(tenantId, streamId);
  if (head === null) return { state: folder.initialState(), version: 0, fromSnapshot: false };
  const usable = head.snapshot !== null && head.snapshot.schemaVersion === folder.snapshotSchema;
  if (usable && head.snapshotVersion === head.version) {
    return { state: head.snapshot!.state as S, version: head.version, fromSnapshot: true };
  }
  let state = usable ? (head.snapshot!.state as S) : folder.initialState();
  let version = usable ? head.snapshotVersion : 0;
  for (;;) {
    const page = await store.readStream(tenantId, streamId, {
      fromVersion: version + 1,
      limit: REBUILD_PAGE_EVENTS,
    });
    for (const recorded of page) {
      state = folder.evolve(state, toDomainEvent<E>(recorded));
      version = recorded.streamVersion;
    }
    if (page.length < REBUILD_PAGE_EVENTS) break;
  }
  await store.saveSnapshot(tenantId, streamId, version, { schemaVersion: folder.snapshotSchema, state });
  return { state, version, fromSnapshot: false };
}
