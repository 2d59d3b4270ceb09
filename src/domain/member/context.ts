import type { Programme } from '../programme.ts';
import type { IsoInstant } from '../time.ts';

/** The tenant facts a member decision needs (read from the tenant stream by the caller). */
export type TenantContext = Readonly<{ tenantId: string; timeZone: string; programme: Programme }>;

/**
 * Inputs a decision needs besides the command and state. `now` is the ledger's clock reading (canonical
 * ISO UTC, as toISOString returns): it becomes every event's `at`, and holds, expiry and tier windows
 * are measured from it. `actor` is who is calling (key id or user), for the caller's audit trail.
 */
export type MemberContext = Readonly<{ now: IsoInstant; tenant: TenantContext; actor?: string }>;
