import type { Event } from '../event.ts';
import type { Programme } from '../programme.ts';
import type { IsoInstant } from '../time.ts';

/** The programme is stored fully parsed (defaults filled in), so later default changes never rewrite history. */
export type TenantCreated = Event<
  'TenantCreated',
  { tenantId: string; name: string; timeZone: string; programme: Programme; at: IsoInstant }
>;

/** programme.version is the previous version + 1. */
export type ProgrammeChanged = Event<'ProgrammeChanged', { programme: Programme; at: IsoInstant }>;

export type TenantEvent = TenantCreated | ProgrammeChanged;
