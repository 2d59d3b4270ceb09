import { describe, expect, it } from 'vitest';
import { InvariantViolation } from '../assert.ts';
import { defaultProgramme } from '../programme.ts';
import type { TenantCommand } from './commands.ts';
import { decideTenant, evolveTenant, initialTenantState } from './decider.ts';
import type { TenantEvent } from './events.ts';
import type { TenantState } from './state.ts';

const NOW = '2026-01-05T02:00:00.000Z';

function given(events: TenantEvent[]) {
  const state = events.reduce<TenantState>(evolveTenant, initialTenantState());
  return {
    when(command: TenantCommand) {
      const decision = decideTenant(command, state, { now: NOW });
      return {
        then(expected: TenantEvent[] | string) {
          if (typeof expected === 'string')
            expect(decision.ok ? decision.events : decision.error.code).toBe(expected);
          else expect(decision.ok ? decision.events : decision.error).toEqual(expected);
        },
        decision,
      };
    },
  };
}

const created: TenantEvent = {
  type: 'TenantCreated',
  data: {
    tenantId: 'direct',
    name: 'direct',
    timeZone: 'Asia/Shanghai',
    programme: defaultProgramme(),
    at: NOW,
  },
};

describe('CreateTenant', () => {
  it('creates a tenant with the default programme and time zone', () => {
    given([])
      .when({ type: 'CreateTenant', data: { tenantId: 'direct' } })
      .then([created]);
  });

  it('keeps a given name, canonical time zone and programme with defaults filled in', () => {
    given([])
      .when({
        type: 'CreateTenant',
        data: {
          tenantId: 'alliance',
          name: 'Alliance stores',
          timeZone: 'america/new_york',
          programme: { pointsPerYuan: 2, clawback: 'cap-at-zero' },
        },
      })
      .then([
        {
          type: 'TenantCreated',
          data: {
            tenantId: 'alliance',
            name: 'Alliance stores',
            timeZone: 'America/New_York',
            programme: { ...defaultProgramme(), pointsPerYuan: 2, clawback: 'cap-at-zero' },
            at: NOW,
          },
        },
      ]);
  });

  it('answers tenant-exists for a second creation', () => {
    given([created])
      .when({ type: 'CreateTenant', data: { tenantId: 'direct' } })
      .then('tenant-exists');
  });

  it('rejects an unknown time zone, a bad id and a bad programme with the offending paths', () => {
    const { decision } = given([]).when({
      type: 'CreateTenant',
      data: { tenantId: 'bad id', timeZone: 'Mars/Base', programme: { pointsPerYuan: 0 } },
    });
    expect(decision.ok).toBe(false);
    if (decision.ok || decision.error.code !== 'validation-failed')
      throw new Error('expected validation-failed');
    expect(decision.error.status).toBe(400);
    expect(decision.error.extra.errors.map((issue) => issue.path)).toEqual(['tenantId', 'timeZone']);

    const programme = given([]).when({
      type: 'CreateTenant',
      data: { tenantId: 'ok', programme: { pointsPerYuan: 0 } },
    }).decision;
    if (programme.ok || programme.error.code !== 'validation-failed')
      throw new Error('expected validation-failed');
    expect(programme.error.extra.errors.map((issue) => issue.path)).toEqual(['programme.pointsPerYuan']);
  });
});

describe('ChangeProgramme', () => {
  it('records a programme whose version is one more', () => {
    given([created])
      .when({ type: 'ChangeProgramme', data: { programme: { version: 2, pointsPerYuan: 3 } } })
      .then([
        {
          type: 'ProgrammeChanged',
          data: { programme: { ...defaultProgramme(), version: 2, pointsPerYuan: 3 }, at: NOW },
        },
      ]);
  });

  it('rejects a version that is not current + 1', () => {
    given([created])
      .when({ type: 'ChangeProgramme', data: { programme: { version: 3 } } })
      .then('validation-failed');
    given([created])
      .when({ type: 'ChangeProgramme', data: { programme: {} } })
      .then('validation-failed');
  });

  it('answers tenant-not-found before the tenant exists', () => {
    given([])
      .when({ type: 'ChangeProgramme', data: { programme: { version: 2 } } })
      .then('tenant-not-found');
  });

  it('evolves to the new programme, and refuses a stream that skips a version', () => {
    const changed: TenantEvent = {
      type: 'ProgrammeChanged',
      data: { programme: { ...defaultProgramme(), version: 2 }, at: NOW },
    };
    const state = [created, changed].reduce<TenantState>(evolveTenant, initialTenantState());
    expect(state.created && state.programme.version).toBe(2);
    expect(() => evolveTenant(state, changed)).toThrow(InvariantViolation);
  });
});
