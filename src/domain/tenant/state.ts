import { assert, assertNever } from '../assert.ts';
import type { TenantContext } from '../member/context.ts';
import type { Programme } from '../programme.ts';
import { programmeSchema } from '../programme.ts';
import type { IsoInstant } from '../time.ts';
import { isValidTimeZone } from '../time.ts';
import type { TenantEvent } from './events.ts';

export type UncreatedTenant = Readonly<{ created: false }>;

export type CreatedTenant = Readonly<{
  created: true;
  tenantId: string;
  name: string;
  timeZone: string;
  programme: Programme;
  createdAt: IsoInstant;
}>;

export type TenantState = UncreatedTenant | CreatedTenant;

export function initialTenantState(): TenantState {
  return { created: false };
}

/** What a member decision needs from its tenant. */
export function tenantContextOf(state: CreatedTenant): TenantContext {
  return { tenantId: state.tenantId, timeZone: state.timeZone, programme: state.programme };
}

function assertProgramme(programme: Programme): void {
  assert(programmeSchema.safeParse(programme).success, 'tenant event carries an invalid programme');
}

export function evolveTenant(state: TenantState, event: TenantEvent): TenantState {
  switch (event.type) {
    case 'TenantCreated': {
      assert(!state.created, 'TenantCreated on an existing tenant');
      assert(
        isValidTimeZone(event.data.timeZone),
        `TenantCreated with invalid time zone ${event.data.timeZone}`,
      );
      assertProgramme(event.data.programme);
      return {
        created: true,
        tenantId: event.data.tenantId,
        name: event.data.name,
        timeZone: event.data.timeZone,
        programme: event.data.programme,
        createdAt: event.data.at,
      };
    }
    case 'ProgrammeChanged':
      assert(state.created, 'ProgrammeChanged on a tenant that does not exist');
      assert(
        event.data.programme.version === state.programme.version + 1,
        'ProgrammeChanged must raise the version by one',
      );
      assertProgramme(event.data.programme);
      return { ...state, programme: event.data.programme };
    default:
      return assertNever(event, 'tenant event');
  }
}
