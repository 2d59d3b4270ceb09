import {
  APPEND_EVENTS_MAX,
  COMMAND_ID_CHARS_MAX,
  EventStoreUsageError,
  STREAM_ID_CHARS_MAX,
  UNIQUE_KEYS_MAX,
  UNIQUE_KEY_CHARS_MAX,
  type AppendRequest,
} from './port.ts';

/** The port's limits on an append (port.ts); every adapter checks them before writing anything. */
export function validateAppend(request: AppendRequest): void {
  const fail = (message: string): never => {
    throw new EventStoreUsageError(message);
  };
  if (!/^[a-z0-9][a-z0-9-]{0,63}$/.test(request.tenantId)) fail(`bad tenant id: ${request.tenantId}`);
  if (request.streamId.length === 0 || request.streamId.length > STREAM_ID_CHARS_MAX) fail('bad stream id');
  if (request.events.length === 0 || request.events.length > APPEND_EVENTS_MAX) {
    fail(`an append carries 1..${APPEND_EVENTS_MAX} events, got ${request.events.length}`);
  }
  if ((request.uniqueKeys?.length ?? 0) > UNIQUE_KEYS_MAX) fail(`at most ${UNIQUE_KEYS_MAX} unique keys`);
  for (const key of request.uniqueKeys ?? []) {
    if (key.length === 0 || key.length > UNIQUE_KEY_CHARS_MAX) fail(`bad unique key: ${key}`);
  }
  if (
    request.command &&
    (request.command.commandId.length === 0 || request.command.commandId.length > COMMAND_ID_CHARS_MAX)
  ) {
    fail('bad command id');
  }
  const recordedAt = request.events[0]?.metadata.recordedAt;
  for (const event of request.events) {
    if (event.metadata.tenantId !== request.tenantId) fail('event metadata names another tenant');
    if (event.metadata.recordedAt !== recordedAt) fail('events of one append share one recording time');
  }
  if (
    typeof request.expectedVersion === 'number' &&
    (!Number.isSafeInteger(request.expectedVersion) || request.expectedVersion < 0)
  ) {
    fail('expected version must be a non-negative integer');
  }
}
