/**
 * The tenant decider: one stream per tenant holding its name, time zone and programme history.
 * Programme versions go up by exactly one, so every PurchaseRecorded's programmeVersion names one
 * programme without ambiguity.
 */
import { z } from 'zod';
import { assert, assertNever } from '../assert.ts';
import type { Decision } from '../event.ts';
import { domainError, invalidField } from '../errors.ts';
import { TENANT_ID_CHARS_MAX, TENANT_NAME_CHARS_MAX } from '../limits.ts';
import { programmeSchema } from '../programme.ts';
import { canonicalTimeZone, isCanonicalIsoInstant, isValidTimeZone } from '../time.ts';
import type { IsoInstant } from '../time.ts';
import { parseWith, textSchema } from '../validation.ts';
import type { ChangeProgramme, CreateTenant, TenantCommand } from './commands.ts';
import type { TenantEvent } from './events.ts';
import type { CreatedTenant, TenantState } from './state.ts';

export { evolveTenant, initialTenantState, tenantContextOf } from './state.ts';

export const TENANT_TIME_ZONE_DEFAULT = 'Asia/Shanghai';

export type TenantDecisionContext = Readonly<{ now: IsoInstant }>;

/** Tenant ids lead every key and appear in stream names: a conservative, URL- and CLI-safe alphabet. */
export const tenantIdSchema = z
  .string()
  .min(1)
  .max(TENANT_ID_CHARS_MAX)
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._-]*$/,
    'letters, digits, ".", "_" and "-", starting with a letter or digit',
  );

const createTenantSchema = z.object({
  tenantId: tenantIdSchema,
  name: textSchema(TENANT_NAME_CHARS_MAX).optional(),
  timeZone: z.string().refine(isValidTimeZone, 'must be an IANA time zone such as Asia/Shanghai').optional(),
});

export function decideTenant(
  command: TenantCommand,
  state: TenantState,
  ctx: TenantDecisionContext,
): Decision<TenantEvent> {
  assert(isCanonicalIsoInstant(ctx.now), `ctx.now must be a canonical ISO instant, got ${ctx.now}`);
  switch (command.type) {
    case 'CreateTenant':
      return decideCreateTenant(command.data, state, ctx);
    case 'ChangeProgramme':
      if (!state.created)
        return { ok: false, error: domainError('tenant-not-found', 'tenant does not exist') };
      return decideChangeProgramme(command.data, state, ctx);
    default:
      return assertNever(command, 'tenant command');
  }
}

function decideCreateTenant(
  data: CreateTenant['data'],
  state: TenantState,
  ctx: TenantDecisionContext,
): Decision<TenantEvent> {
  if (state.created) {
    return {
      ok: false,
      error: domainError('tenant-exists', `tenant ${state.tenantId} already exists`, {
        tenantId: state.tenantId,
      }),
    };
  }
  const parsed = parseWith(createTenantSchema, data);
  if (!parsed.ok) return parsed;
  const programme = parseWith(programmeSchema, data.programme ?? {}, 'programme');
  if (!programme.ok) return programme;
  return {
    ok: true,
    events: [
      {
        type: 'TenantCreated',
        data: {
          tenantId: data.tenantId,
          name: data.name ?? data.tenantId,
          timeZone: canonicalTimeZone(data.timeZone ?? TENANT_TIME_ZONE_DEFAULT),
          programme: programme.value,
          at: ctx.now,
        },
      },
    ],
  };
}

function decideChangeProgramme(
  data: ChangeProgramme['data'],
  state: CreatedTenant,
  ctx: TenantDecisionContext,
): Decision<TenantEvent> {
  const programme = parseWith(programmeSchema, data.programme, 'programme');
  if (!programme.ok) return programme;
  const expectedVersion = state.programme.version + 1;
  if (programme.value.version !== expectedVersion) {
    return { ok: false, error: invalidField('programme.version', `must be ${expectedVersion}`) };
  }
  return {
    ok: true,
    events: [{ type: 'ProgrammeChanged', data: { programme: programme.value, at: ctx.now } }],
  };
}
