/**
 * The shapes every stream shares (Emmett style): an event or a command is a `type` tag plus `data`.
 * Metadata (correlation id, idempotency key, stream position) belongs to the store, not the domain.
 */
import type { DomainError } from './errors.ts';

export type Event<Type extends string, Data extends Record<string, unknown>> = Readonly<{
  type: Type;
  data: Readonly<Data>;
}>;

export type Command<Type extends string, Data extends Record<string, unknown>> = Readonly<{
  type: Type;
  data: Readonly<Data>;
}>;

/** What a decider returns: the events to append (possibly none), or why nothing changes. */
export type Decision<E> = { ok: true; events: E[] } | { ok: false; error: DomainError };
