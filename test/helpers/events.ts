import { newId } from '../../src/ids.ts';
import type { NewEvent } from '../../src/eventstore/port.ts';

/** A recording time for events the event-store tests append: the store takes it as given. */
export const EVENT_RECORDED_AT = '2026-03-01T08:00:00.000Z';

/** An event for the event-store tests: a fresh id, the tenant in its metadata, `data` as given. */
export const newEvent = (tenantId: string, data: unknown = { n: 1 }): NewEvent => ({
  eventId: newId(),
  type: 'Thing',
  data,
  metadata: { tenantId, recordedAt: EVENT_RECORDED_AT },
});
