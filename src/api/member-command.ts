import type { FastifyReply, FastifyRequest } from 'fastify';
import type { MemberCommand } from '../domain/member/commands.ts';
import type { MemberEvent } from '../domain/member/events.ts';
import type { MemberState } from '../domain/member/state.ts';
import { memberDecider, explainMemberUniqueKey, uniqueKeysOf } from '../commands/members.ts';
import { applicationError, type Rejection } from '../commands/errors.ts';
import { requestHash, type Decided, type Response } from '../commands/run-command.ts';
import { memberStreamId } from '../commands/streams.ts';
import { derivedId } from '../ids.ts';
import type { Runtime } from '../runtime.ts';
import { mayActForStore, principalOf } from './plugins/auth.ts';
import { PROBLEM_CONTENT_TYPE, problem, rejectionProblem, sendProblem } from './problem.ts';
import type { TenantContext } from '../domain/member/context.ts';

export interface MemberCommandSpec {
  memberId: string;
  /** The store the command acts for (checked against a pos key's stores), when the body names one. */
  storeId?: string;
  command: MemberCommand;
  respond(decided: Decided<MemberState, MemberEvent>): Response;
  authorize?(state: MemberState): Rejection | null;
  normalizedPhone?: string;
}

/**
 * The one path every POS/support command takes: tenant, Idempotency-Key, store binding, then the command
 * runner (idempotent replay, decide, append with the response). Rejections become problems here.
 */
export async function runMemberCommand(
  runtime: Runtime,
  request: FastifyRequest,
  reply: FastifyReply,
  /** `idFor(purpose)` gives ids derived from the Idempotency-Key: a retry names the same member, hold, lot. */
  specOf: (idFor: (purpose: string) => string) => MemberCommandSpec,
): Promise<FastifyReply> {
  const principal = principalOf(request);
  const idempotencyKey = request.headers['idempotency-key'];
  // The route's commandHeaders schema has already answered 400 to a request without a valid key.
  if (typeof idempotencyKey !== 'string') throw new Error('a command route without commandHeaders');
  const idFor = (purpose: string) => derivedId(principal.tenantId, idempotencyKey, purpose);
  const spec = specOf(idFor);
  if (spec.storeId !== undefined && !mayActForStore(principal, spec.storeId)) {
    return sendProblem(reply, problem(403, 'forbidden', `this key may not act for store ${spec.storeId}`));
  }
  const tenant = await runtime.tenants.get(principal.tenantId);
  if (tenant === null) return sendProblem(reply, problem(404, 'not-found', 'tenant not found'));
  const command = spec.command;
  const route = request.routeOptions.url ?? request.url;
  const running = runtime.runner.run(
    {
      tenantId: principal.tenantId,
      streamId: memberStreamId(spec.memberId),
      commandId: idempotencyKey,
      // The same key must mean the same request: method, route, member, path parameters (the holdId of a
      // capture or release) and body.
      requestHash: requestHash([
        request.method,
        route,
        spec.memberId,
        request.params ?? null,
        request.body ?? null,
      ]),
      correlationId: request.id,
      actor: principal.keyId,
      uniqueKeys: uniqueKeysOf(command, spec.normalizedPhone),
    },
    memberDecider(tenant, principal.keyId),
    command,
    {
      respond: spec.respond,
      explainUniqueKey: explainMemberUniqueKey,
      refusalResponse: (refusal) => {
        const body = rejectionProblem(refusal);
        return { status: body.status, body };
      },
      ...(spec.authorize === undefined ? {} : { authorize: spec.authorize }),
    },
  );
  // A command that throws is answered and counted by the error handler (plugins/errors.ts).
  const result = await withinDeadline(running, runtime.config.commandDeadlineMs, request);
  if (!result.ok) {
    runtime.metrics.commandOutcomes.labels(route, result.rejection.code).inc();
    return sendProblem(reply, rejectionProblem(result.rejection));
  }
  runtime.metrics.commandOutcomes.labels(route, result.replayed ? 'replayed' : 'ok').inc();
  if (result.replayed) void reply.header('Idempotent-Replayed', 'true');
  // A replayed refusal is the problem document it was the first time.
  if (result.response.status >= 400) void reply.type(PROBLEM_CONTENT_TYPE);
  return reply.code(result.response.status).send(result.response.body);
}

/**
 * A command that has not finished within its deadline: the request is answered 503 with Retry-After
 * (errors.ts). The command itself runs on, since stopping it halfway is not an option; it commits or writes
 * nothing, and a retry with the same Idempotency-Key waits behind it and answers what was recorded.
 */
export class CommandDeadlineError extends Error {
  override name = 'CommandDeadlineError';
  constructor(readonly deadlineMs: number) {
    super(`the command did not finish within ${deadlineMs} ms`);
  }
}

async function withinDeadline<T>(
  running: Promise<T>,
  deadlineMs: number,
  request: FastifyRequest,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      // What the command comes to after its answer went out is logged, never lost as an unhandled rejection.
      running.then(
        () => request.log.info({ deadlineMs }, 'command finished after its deadline answer'),
        (error: unknown) =>
          request.log.warn({ err: error, deadlineMs }, 'command failed after its deadline answer'),
      );
      reject(new CommandDeadlineError(deadlineMs));
    }, deadlineMs);
  });
  try {
    return await Promise.race([running, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** A hold's store must be one of a pos key's stores (captures and releases name no store in the body). */
export function holdStoreCheck(
  request: FastifyRequest,
  holdId: string,
): (state: MemberState) => Rejection | null {
  const principal = principalOf(request);
  return (state) => {
    if (!state.registered) return null;
    const hold = state.holds.find((h) => h.holdId === holdId);
    if (hold === undefined || mayActForStore(principal, hold.storeId)) return null;
    return applicationError('forbidden', `this key may not act for store ${hold.storeId}`);
  };
}

export type { TenantContext };
