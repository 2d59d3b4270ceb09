import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { createKey } from '../../src/auth/keys.ts';
import type { Role } from '../../src/auth/roles.ts';
import { buildServer } from '../../src/api/server.ts';
import type { Clock } from '../../src/clock.ts';
import { loadConfig } from '../../src/config.ts';
import type { ProgrammeInput } from '../../src/domain/programme.ts';
import { openRuntime, type Runtime } from '../../src/runtime.ts';
import type { TestDatabase } from './database.ts';

/** A clock tests can move: starts at an instant, advances only when told. */
export class ManualClock implements Clock {
  private ms: number;
  constructor(startIso: string) {
    this.ms = Date.parse(startIso);
  }
  nowMs(): number {
    return this.ms;
  }
  nowIso(): string {
    return new Date(this.ms).toISOString();
  }
  advanceSeconds(seconds: number): void {
    this.ms += seconds * 1000;
  }
  set(iso: string): void {
    this.ms = Date.parse(iso);
  }
}

export interface TestLedger {
  runtime: Runtime;
  app: FastifyInstance;
  clock: ManualClock;
  createTenant(tenantId: string, options?: { timeZone?: string; programme?: ProgrammeInput }): Promise<void>;
  key(tenantId: string, role: Role, stores?: string[]): Promise<string>;
  close(): Promise<void>;
}

/** A runtime and an in-process server (fastify inject) on a test database, with a manual clock. */
export async function openTestLedger(
  database: TestDatabase,
  options: {
    clockStart?: string;
    rateLimitPerMinute?: number;
    requestTimeoutMs?: number;
    commandDeadlineMs?: number;
    /** Log at info level into this stream (the server is silent otherwise). */
    logStream?: { write(line: string): void };
  } = {},
): Promise<TestLedger> {
  const clock = new ManualClock(options.clockStart ?? '2026-03-01T02:00:00.000Z');
  const config = {
    ...loadConfig({}),
    databaseUrl: database.url,
    ...(options.commandDeadlineMs === undefined ? {} : { commandDeadlineMs: options.commandDeadlineMs }),
  };
  const runtime = await openRuntime(config, { clock });
  const app = await buildServer(runtime, {
    ...(options.logStream === undefined
      ? { logLevel: 'silent' }
      : { logLevel: 'info', logStream: options.logStream }),
    rateLimitPerMinute: options.rateLimitPerMinute ?? 1_000_000,
    ...(options.requestTimeoutMs === undefined ? {} : { requestTimeoutMs: options.requestTimeoutMs }),
  });
  await app.ready();
  return {
    runtime,
    app,
    clock,
    async createTenant(tenantId, tenantOptions = {}) {
      const result = await runtime.tenants.create({ tenantId, ...tenantOptions });
      if (!result.ok) throw new Error(`could not create tenant ${tenantId}: ${result.rejection.code}`);
    },
    async key(tenantId, role, stores = []) {
      return (await createKey(runtime.pool, clock, { tenantId, role, stores })).key;
    },
    async close() {
      await app.close();
      await runtime.close();
    },
  };
}

let idempotencyCounter = 0;
export function newIdempotencyKey(): string {
  idempotencyCounter += 1;
  return `test-${process.pid}-${Date.now()}-${idempotencyCounter}`;
}

/** A POST with a bearer key and an Idempotency-Key (a fresh one unless given). */
export async function post(
  app: FastifyInstance,
  key: string,
  url: string,
  body: unknown,
  idempotencyKey: string = newIdempotencyKey(),
): Promise<LightMyRequestResponse> {
  return app.inject({
    method: 'POST',
    url,
    headers: {
      authorization: `Bearer ${key}`,
      'idempotency-key': idempotencyKey,
      'content-type': 'application/json',
    },
    payload: JSON.stringify(body),
  });
}

export async function get(app: FastifyInstance, key: string, url: string): Promise<LightMyRequestResponse> {
  return app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${key}` } });
}
