import type { Clock } from '../clock.ts';
import type { TenantContext } from '../domain/member/context.ts';
import type { ProgrammeInput } from '../domain/programme.ts';
import type { TenantCommand } from '../domain/tenant/commands.ts';
import { decideTenant } from '../domain/tenant/decider.ts';
import type { TenantEvent } from '../domain/tenant/events.ts';
import {
  evolveTenant,
  initialTenantState,
  tenantContextOf,
  type TenantState,
} from '../domain/tenant/state.ts';
import type { EventStore } from '../eventstore/port.ts';
import { newId } from '../ids.ts';
import { applicationError } from './errors.ts';
import { requestHash, type CommandResult, type CommandRunner, type StreamDecider } from './run-command.ts';
import { loadStream } from './stream-loader.ts';
import { TENANT_STREAM_ID } from './streams.ts';

/** Bump when TenantState's shape changes. */
export const TENANT_SNAPSHOT_SCHEMA = 1;
/** A programme change reaches every API process within this long. */
export const TENANT_CACHE_TTL_MS = 5_000;
const TENANT_CACHE_ENTRIES_MAX = 1_000;

/** A tenant's state is its programme: a few tiers and rules. */
const TENANT_STATE_BYTES = 4_096;

const tenantFolder = {
  snapshotSchema: TENANT_SNAPSHOT_SCHEMA,
  initialState: initialTenantState,
  evolve: evolveTenant,
  stateBytes: (): number => TENANT_STATE_BYTES,
};

const tenantDecider: StreamDecider<TenantState, TenantCommand, TenantEvent> = {
  ...tenantFolder,
  decide: (command, state, now) => decideTenant(command, state, { now }),
};

/** Tenants: created and re-programmed through their stream; read through a short cache on the hot path. */
export class TenantDirectory {
  private readonly cache = new Map<string, { tenant: TenantContext | null; loadedAtMs: number }>();

  constructor(
    private readonly store: EventStore,
    private readonly runner: CommandRunner,
    private readonly clock: Clock,
  ) {}

  async get(tenantId: string): Promise<TenantContext | null> {
    const cached = this.cache.get(tenantId);
    if (cached && this.clock.nowMs() - cached.loadedAtMs < TENANT_CACHE_TTL_MS) return cached.tenant;
    const loaded = await loadStream(this.store, tenantId, TENANT_STREAM_ID, tenantFolder);
    const state = loaded.state;
    const tenant: TenantContext | null = state.created ? tenantContextOf(state) : null;
    if (this.cache.size >= TENANT_CACHE_ENTRIES_MAX) this.cache.clear();
    this.cache.set(tenantId, { tenant, loadedAtMs: this.clock.nowMs() });
    return tenant;
  }

  async create(input: {
    tenantId: string;
    name?: string;
    timeZone?: string;
    programme?: ProgrammeInput;
  }): Promise<CommandResult> {
    const command: TenantCommand = {
      type: 'CreateTenant',
      data: {
        tenantId: input.tenantId,
        ...(input.name === undefined ? {} : { name: input.name }),
        ...(input.timeZone === undefined ? {} : { timeZone: input.timeZone }),
        ...(input.programme === undefined ? {} : { programme: input.programme }),
      },
    };
    return this.execute(input.tenantId, command, `create-tenant:${newId()}`);
  }

  async changeProgramme(tenantId: string, programme: ProgrammeInput): Promise<CommandResult> {
    return this.execute(
      tenantId,
      { type: 'ChangeProgramme', data: { programme } },
      `change-programme:${newId()}`,
    );
  }

  private async execute(tenantId: string, command: TenantCommand, commandId: string): Promise<CommandResult> {
    this.cache.delete(tenantId);
    const result = await this.runner.run(
      { tenantId, streamId: TENANT_STREAM_ID, commandId, requestHash: requestHash(command), actor: 'cli' },
      tenantDecider,
      command,
      {
        respond: ({ version }) => ({ status: 201, body: { tenantId, version } }),
        explainUniqueKey: (key) => applicationError('concurrency-conflict', `key ${key} is taken`),
      },
    );
    this.cache.delete(tenantId);
    return result;
  }
}
