import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { memberStreamId } from '../../commands/streams.ts';
import { memberView } from '../../domain/member/view.ts';
import { normalizeIsoInstant } from '../../domain/time.ts';
import { readLedgerPage, replayMemberAsOf } from '../../queries/members.ts';
import type { Runtime } from '../../runtime.ts';
import { principalOf } from '../plugins/auth.ts';
import { problem, sendProblem } from '../problem.ts';
import {
  balanceQuery,
  balanceResponse,
  ledgerQuery,
  ledgerResponse,
  memberIdParams,
  readProblems,
} from '../schemas.ts';

/** Opaque to clients: the stream version to continue after. */
function encodeCursor(version: number): string {
  return Buffer.from(`v1:${version}`).toString('base64url');
}

function decodeCursor(cursor: string): number | null {
  const match = /^v1:(\d{1,15})$/.exec(Buffer.from(cursor, 'base64url').toString());
  return match ? Number(match[1]) : null;
}

export function registerReadRoutes(parent: FastifyInstance, runtime: Runtime): void {
  const app = parent.withTypeProvider<ZodTypeProvider>();

  app.get(
    '/members/:memberId/ledger',
    {
      config: { roles: ['pos', 'support', 'auditor'] },
      schema: {
        tags: ['reads'],
        summary: "A member's ledger, oldest first, read from the events",
        params: memberIdParams,
        querystring: ledgerQuery,
        response: { 200: ledgerResponse, ...readProblems },
      },
    },
    async (request, reply) => {
      const { tenantId } = principalOf(request);
      const { memberId } = request.params;
      const query = request.query;
      const afterVersion = query.cursor === undefined ? 0 : decodeCursor(query.cursor);
      const unknownCursor = () =>
        sendProblem(
          reply,
          problem(400, 'validation-failed', 'cursor is not one this server issued', {
            errors: [{ path: 'querystring.cursor', message: 'unknown cursor' }],
          }),
        );
      if (afterVersion === null) return unknownCursor();
      const head = await runtime.store.streamHead(tenantId, memberStreamId(memberId));
      if (head === null)
        return sendProblem(reply, problem(404, 'not-found', 'no such member in this tenant'));
      // Streams only grow: a cursor past the member's last event was never issued for this member (an
      // edited cursor, or another member's). An empty last page would tell the client it has read it all.
      if (afterVersion > head.version) return unknownCursor();
      const from = query.from === undefined ? undefined : (normalizeIsoInstant(query.from) ?? undefined);
      const to = query.to === undefined ? undefined : (normalizeIsoInstant(query.to) ?? undefined);
      const page = await readLedgerPage(runtime.store, tenantId, memberId, {
        ...(from === undefined ? {} : { from }),
        ...(to === undefined ? {} : { to }),
        limit: query.limit,
        afterVersion,
      });
      return {
        entries: page.entries,
        nextCursor: page.nextVersion === null ? null : encodeCursor(page.nextVersion),
      };
    },
  );

  app.get(
    '/members/:memberId/balance',
    {
      config: { roles: ['support', 'auditor'] },
      schema: {
        tags: ['reads'],
        summary: 'Balance and held points as of an instant, folded from the events',
        params: memberIdParams,
        querystring: balanceQuery,
        response: { 200: balanceResponse, ...readProblems },
      },
    },
    async (request, reply) => {
      const { tenantId } = principalOf(request);
      const now = runtime.clock.nowIso();
      const asOf = request.query.asOf === undefined ? now : normalizeIsoInstant(request.query.asOf);
      if (asOf === null || asOf > now) {
        return sendProblem(
          reply,
          problem(400, 'validation-failed', 'asOf must be an instant not after now', {
            errors: [{ path: 'querystring.asOf', message: 'not after now' }],
          }),
        );
      }
      const replayed = await replayMemberAsOf(runtime.store, tenantId, request.params.memberId, asOf);
      if (replayed === null || !replayed.state.registered) {
        return sendProblem(reply, problem(404, 'not-found', 'no such member in this tenant at that time'));
      }
      const view = memberView(replayed.state, asOf);
      return { asOf, balance: view.balance, held: view.held };
    },
  );
}
