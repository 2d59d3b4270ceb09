import type { Command } from '../event.ts';
import type { ProgrammeInput } from '../programme.ts';

/** name defaults to tenantId, timeZone to TENANT_TIME_ZONE_DEFAULT, programme to defaultProgramme(). */
export type CreateTenant = Command<
  'CreateTenant',
  {
    tenantId: string;
    name?: string | undefined;
    timeZone?: string | undefined;
    programme?: ProgrammeInput | undefined;
  }
>;

/** The whole new programme (a file), validated by programmeSchema; its version must be current + 1. */
export type ChangeProgramme = Command<'ChangeProgramme', { programme: ProgrammeInput }>;

export type TenantCommand = CreateTenant | ChangeProgramme;
