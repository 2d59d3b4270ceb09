import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { normalizePhone } from '../../domain/member/phone.ts';
import { findMemberIdByPhone, memberViewBody, readMemberView } from '../../queries/members.ts';
import type { Runtime } from '../../runtime.ts';
import { runMemberCommand } from '../member-command.ts';
import { principalOf } from '../plugins/auth.ts';
import { problem, sendProblem } from '../problem.ts';
import {
  commandHeaders,
  commandProblems,
  lookupQuery,
  memberIdParams,
  memberView,
  readProblems,
  registerBody,
} from '../schemas.ts';

const NOT_FOUND_DETAIL = 'no such member in this tenant';

export function registerMemberRoutes(parent: FastifyInstance, runtime: Runtime): void {
  const app = parent.withTypeProvider<ZodTypeProvider>();

  app.post(
    '/members',
    {
      config: { roles: ['pos'] },
      schema: {
        tags: ['members'],
        summary: 'Register a member',
        headers: commandHeaders,
        body: registerBody,
        response: { 201: memberView, ...commandProblems },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const phone = normalizePhone(body.phone);
      const principal = principalOf(request);
      return runMemberCommand(runtime, request, reply, (idFor) => {
        const memberId = body.memberId ?? idFor('member');
        return {
          memberId,
          storeId: body.storeId,
          ...(phone === null ? {} : { normalizedPhone: phone }),
          command: {
            type: 'RegisterMember',
            data: {
              memberId,
              phone: body.phone,
              storeId: body.storeId,
              channel: body.channel,
              ...(body.name === undefined ? {} : { name: body.name }),
            },
          },
          respond: ({ state, version, now }) => ({
            status: 201,
            body: memberViewBody(principal.tenantId, state, version, now, []),
          }),
        };
      });
    },
  );

  app.get(
    '/members/:memberId',
    {
      config: { roles: ['pos', 'support', 'auditor'] },
      schema: {
        tags: ['members'],
        summary: 'A member view',
        params: memberIdParams,
        response: { 200: memberView, ...readProblems },
      },
    },
    async (request, reply) => {
      const { tenantId } = principalOf(request);
      const view = await readMemberView(
        runtime.store,
        runtime.pool,
        tenantId,
        request.params.memberId,
        runtime.clock.nowIso(),
      );
      return view === null ? sendProblem(reply, problem(404, 'not-found', NOT_FOUND_DETAIL)) : view;
    },
  );

  app.get(
    '/members',
    {
      config: { roles: ['pos', 'support', 'auditor'] },
      schema: {
        tags: ['members'],
        summary: 'Find a member by phone',
        querystring: lookupQuery,
        response: { 200: memberView, ...readProblems },
      },
    },
    async (request, reply) => {
      const { tenantId } = principalOf(request);
      const phone = normalizePhone(request.query.phone);
      const memberId = phone === null ? null : await findMemberIdByPhone(runtime.store, tenantId, phone);
      const view =
        memberId === null
          ? null
          : await readMemberView(runtime.store, runtime.pool, tenantId, memberId, runtime.clock.nowIso());
      return view === null ? sendProblem(reply, problem(404, 'not-found', NOT_FOUND_DETAIL)) : view;
    },
  );
}
