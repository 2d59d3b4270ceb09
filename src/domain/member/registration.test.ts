import { describe, expect, it } from 'vitest';
import type { MemberCommand } from './commands.ts';
import {
  adjust,
  capture,
  ctx,
  expire,
  given,
  history,
  hold,
  MEMBER_ID,
  PHONE,
  purchase,
  redeem,
  refund,
  register,
  release,
  STORE,
} from './testing.ts';

const T0 = '2026-03-01T02:00:00.000Z';

describe('RegisterMember', () => {
  it('registers with a normalised phone and the first tier', () => {
    given([])
      .when(register({ name: 'Li Lei' }), ctx(T0))
      .then([
        {
          type: 'MemberRegistered',
          data: {
            memberId: MEMBER_ID,
            phone: PHONE,
            name: 'Li Lei',
            storeId: STORE,
            channel: 'store',
            tier: 'standard',
            at: T0,
          },
        },
      ]);
  });

  it('answers member-exists with the memberId when already registered', () => {
    const error = given(history([[T0, register()]]))
      .when(register(), ctx(T0))
      .error();
    expect(error).toEqual({
      code: 'member-exists',
      status: 409,
      detail: `member ${MEMBER_ID} is already registered`,
      extra: { memberId: MEMBER_ID },
    });
  });

  it('rejects a phone that is not a mobile or E.164 number, and an unknown channel', () => {
    const error = given([])
      .when(register({ phone: '12345', channel: 'fax' as 'store' }), ctx(T0))
      .error();
    expect(error.code).toBe('validation-failed');
    expect(error.status).toBe(400);
    if (error.code !== 'validation-failed') return;
    expect(error.extra.errors.map((issue) => issue.path)).toEqual(['phone', 'channel']);
  });

  it('answers member-not-found to every other command before registration', () => {
    const commands: MemberCommand[] = [
      { type: 'UpdateProfile', data: { name: 'x' } },
      purchase('o1', 100),
      hold('h1', 'o1', 1),
      capture('h1'),
      release('h1'),
      redeem('o1', 1),
      refund('r1', 'o1', 1),
      adjust('a1', 1),
      expire(T0),
    ];
    for (const command of commands) given([]).when(command, ctx(T0)).then('member-not-found');
  });
});

describe('UpdateProfile', () => {
  const registered = history([[T0, register({ name: 'Li Lei' })]]);
  const T1 = '2026-03-02T02:00:00.000Z';

  it('records the fields that change, phone normalised', () => {
    given(registered)
      .when({ type: 'UpdateProfile', data: { name: 'Han Meimei', phone: '139-0000-1111' } }, ctx(T1))
      .then([
        { type: 'MemberProfileUpdated', data: { name: 'Han Meimei', phone: '+8613900001111', at: T1 } },
      ]);
  });

  it('records nothing when nothing changes', () => {
    given(registered)
      .when({ type: 'UpdateProfile', data: { name: 'Li Lei', phone: '13812345678' } }, ctx(T1))
      .then([]);
  });

  it('needs a field, and a valid phone', () => {
    given(registered).when({ type: 'UpdateProfile', data: {} }, ctx(T1)).then('validation-failed');
    given(registered)
      .when({ type: 'UpdateProfile', data: { phone: 'call me' } }, ctx(T1))
      .then('validation-failed');
    given(registered)
      .when({ type: 'UpdateProfile', data: { name: ' ' } }, ctx(T1))
      .then('validation-failed');
  });

  it('evolves the profile', () => {
    const { state } = given(registered).when(
      { type: 'UpdateProfile', data: { phone: '+85291234567' } },
      ctx(T1),
    );
    expect(state.registered && [state.name, state.phone]).toEqual(['Li Lei', '+85291234567']);
  });
});
