/**
 * Registration and profile. The phone is stored normalised (normalizePhone); its uniqueness within a
 * tenant is the store's unique key, since one member stream cannot see the others.
 */
import { assert } from '../assert.ts';
import type { Decision } from '../event.ts';
import { memberExists } from '../errors.ts';
import { parseWith } from '../validation.ts';
import type { RegisterMember, UpdateProfile } from './commands.ts';
import type { MemberContext } from './context.ts';
import type { MemberEvent, MemberProfileUpdated } from './events.ts';
import { normalizePhone } from './phone.ts';
import { registerMemberSchema, updateProfileSchema } from './schemas.ts';
import type { MemberState, RegisteredMember } from './state.ts';

export function decideRegisterMember(
  data: RegisterMember['data'],
  state: MemberState,
  ctx: MemberContext,
): Decision<MemberEvent> {
  if (state.registered) return { ok: false, error: memberExists(state.memberId) };
  const parsed = parseWith(registerMemberSchema, data);
  if (!parsed.ok) return parsed;
  const phone = normalizePhone(data.phone);
  assert(phone !== null, 'phone passed the schema but does not normalise');
  const firstTier = ctx.tenant.programme.tiers[0];
  assert(firstTier !== undefined, 'programme has no tiers');
  return {
    ok: true,
    events: [
      {
        type: 'MemberRegistered',
        data: {
          memberId: data.memberId,
          phone,
          ...(data.name === undefined ? {} : { name: data.name }),
          storeId: data.storeId,
          channel: data.channel,
          tier: firstTier.name,
          at: ctx.now,
        },
      },
    ],
  };
}

/** Records only what changes; a profile update that changes nothing emits no event. */
export function decideUpdateProfile(
  data: UpdateProfile['data'],
  state: RegisteredMember,
  ctx: MemberContext,
): Decision<MemberEvent> {
  const parsed = parseWith(updateProfileSchema, data);
  if (!parsed.ok) return parsed;
  const phone = data.phone === undefined ? undefined : normalizePhone(data.phone);
  assert(phone !== null, 'phone passed the schema but does not normalise');
  const changed: MemberProfileUpdated['data'] = {
    ...(data.name === undefined || data.name === state.name ? {} : { name: data.name }),
    ...(phone === undefined || phone === state.phone ? {} : { phone }),
    at: ctx.now,
  };
  if (changed.name === undefined && changed.phone === undefined) return { ok: true, events: [] };
  return { ok: true, events: [{ type: 'MemberProfileUpdated', data: changed }] };
}
