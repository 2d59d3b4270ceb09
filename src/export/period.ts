/**
 * A finance period: the half-open range [from, to) of local dates in the tenant's time zone, as the two
 * instants that bound it. An event belongs to the period in which the ledger recorded it (its `at`, which
 * ledger_entries.at copies), never the POS's occurredAt: a late upload lands in the period that recorded it.
 */
import { TENANT_STREAM_ID } from '../commands/streams.ts';
import type { Programme } from '../domain/programme.ts';
import {
  evolveTenant,
  initialTenantState,
  type TenantEvent,
  type TenantState,
} from '../domain/tenant/index.ts';
import { isLocalDate, startOfLocalDateIso, type IsoInstant, type LocalDate } from '../domain/time.ts';
import type { EventStore } from '../eventstore/port.ts';

/** A tenant's stream is a handful of events (creation, programme changes); this bounds the read. */
const TENANT_EVENTS_MAX = 10_000;

export interface Period {
  from: LocalDate;
  to: LocalDate;
  timeZone: string;
  fromAt: IsoInstant;
  toAt: IsoInstant;
}

export interface TenantAsOf {
  timeZone: string;
  /** The programme in force at the end of the period (its pointValueFen prices the closing points). */
  programme: Programme;
}

export class ExportInputError extends Error {
  override name = 'ExportInputError';
}

/** The tenant as of an instant (programme changes recorded at or after it are not applied), or null. */
export async function tenantAsOf(
  store: EventStore,
  tenantId: string,
  at: IsoInstant | null,
): Promise<TenantAsOf | null> {
  const events = await store.readStream(tenantId, TENANT_STREAM_ID, { limit: TENANT_EVENTS_MAX });
  let state: TenantState = initialTenantState();
  for (const recorded of events) {
    const event = { type: recorded.type, data: recorded.data } as TenantEvent;
    if (state.created && at !== null && event.data.at >= at) break;
    state = evolveTenant(state, event);
  }
  return state.created ? { timeZone: state.timeZone, programme: state.programme } : null;
}

export function resolvePeriod(from: string, to: string, timeZone: string): Period {
  if (!isLocalDate(from)) throw new ExportInputError(`--from must be a date YYYY-MM-DD, got ${from}`);
  if (!isLocalDate(to)) throw new ExportInputError(`--to must be a date YYYY-MM-DD, got ${to}`);
  if (!(from < to))
    throw new ExportInputError(`the period [${from}, ${to}) is empty: --from must be before --to`);
  return {
    from,
    to,
    timeZone,
    fromAt: startOfLocalDateIso(from, timeZone),
    toAt: startOfLocalDateIso(to, timeZone),
  };
}
