import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { MemberEvent } from '../../domain/member/events.ts';
import type { MemberState } from '../../domain/member/state.ts';
import { memberView } from '../../domain/member/view.ts';
import type { Runtime } from '../../runtime.ts';
import { holdStoreCheck, runMemberCommand } from '../member-command.ts';
import {
  adjustmentBody,
  adjustmentResponse,
  captureBody,
  commandHeaders,
  commandProblems,
  holdBody,
  holdParams,
  holdResponse,
  memberIdParams,
  problemResponses,
  purchaseBody,
  purchaseResponse,
  redeemedResponse,
  redemptionBody,
  refundBody,
  refundResponse,
  releaseBody,
  releaseResponse,
} from '../schemas.ts';

/** balance and available after the command, as every points response carries them. */
function balances(state: MemberState, now: string): { balance: number; available: number } {
  if (!state.registered) throw new Error('a points command succeeded on an unregistered member');
  const view = memberView(state, now);
  return { balance: view.balance, available: view.available };
}

function eventOf<T extends MemberEvent['type']>(
  events: readonly MemberEvent[],
  type: T,
): Extract<MemberEvent, { type: T }> {
  const found = events.find((event) => event.type === type);
  if (found === undefined) throw new Error(`the decision has no ${type} event`);
  return found as Extract<MemberEvent, { type: T }>;
}

export function registerPointsRoutes(parent: FastifyInstance, runtime: Runtime): void {
  const app = parent.withTypeProvider<ZodTypeProvider>();

  app.post(
    '/members/:memberId/purchases',
    {
      config: { roles: ['pos'] },
      schema: {
        tags: ['points'],
        summary: 'Record a purchase (earns points)',
        params: memberIdParams,
        headers: commandHeaders,
        body: purchaseBody,
        response: { 201: purchaseResponse, ...commandProblems },
      },
    },
    async (request, reply) => {
      const body = request.body;
      return runMemberCommand(runtime, request, reply, (idFor) => ({
        memberId: request.params.memberId,
        storeId: body.storeId,
        command: {
          type: 'RecordPurchase',
          data: {
            orderId: body.orderId,
            storeId: body.storeId,
            lines: body.lines.map(({ insuranceFen, ...line }) =>
              insuranceFen === undefined ? line : { ...line, insuranceFen },
            ),
            lotId: idFor('lot'),
            ...(body.occurredAt === undefined ? {} : { occurredAt: body.occurredAt }),
          },
        },
        respond: ({ events, state, now }) => {
          const purchase = eventOf(events, 'PurchaseRecorded').data;
          return {
            status: 201,
            body: { pointsEarned: purchase.points, ...balances(state, now), lot: purchase.lot },
          };
        },
      }));
    },
  );

  app.post(
    '/members/:memberId/holds',
    {
      config: { roles: ['pos'] },
      schema: {
        tags: ['points'],
        summary: 'Hold points at checkout',
        params: memberIdParams,
        headers: commandHeaders,
        body: holdBody,
        response: { 201: holdResponse, ...commandProblems, ...problemResponses([422]) },
      },
    },
    async (request, reply) => {
      const body = request.body;
      return runMemberCommand(runtime, request, reply, (idFor) => {
        const holdId = body.holdId ?? idFor('hold');
        return {
          memberId: request.params.memberId,
          storeId: body.storeId,
          command: {
            type: 'PlaceHold',
            data: {
              holdId,
              orderId: body.orderId,
              storeId: body.storeId,
              points: body.points,
              ...(body.ttlSeconds === undefined ? {} : { ttlSeconds: body.ttlSeconds }),
            },
          },
          respond: ({ events, state, now }) => {
            const held = eventOf(events, 'PointsHeld').data;
            return {
              status: 201,
              body: {
                holdId,
                points: held.points,
                expiresAt: held.expiresAt,
                available: balances(state, now).available,
              },
            };
          },
        };
      });
    },
  );

  app.post(
    '/members/:memberId/holds/:holdId/capture',
    {
      config: { roles: ['pos'] },
      schema: {
        tags: ['points'],
        summary: 'Capture a hold (redeems its points, in full or in part)',
        params: holdParams,
        headers: commandHeaders,
        body: captureBody,
        response: { 200: redeemedResponse, ...commandProblems, ...problemResponses([422]) },
      },
    },
    async (request, reply) => {
      const { memberId, holdId } = request.params;
      return runMemberCommand(runtime, request, reply, () => ({
        memberId,
        authorize: holdStoreCheck(request, holdId),
        command: {
          type: 'CaptureHold',
          data: { holdId, ...(request.body.points === undefined ? {} : { points: request.body.points }) },
        },
        respond: ({ events, state, now }) => ({
          status: 200,
          body: { pointsRedeemed: eventOf(events, 'HoldCaptured').data.points, ...balances(state, now) },
        }),
      }));
    },
  );

  app.post(
    '/members/:memberId/holds/:holdId/release',
    {
      config: { roles: ['pos'] },
      schema: {
        tags: ['points'],
        summary: 'Release a hold',
        params: holdParams,
        headers: commandHeaders,
        body: releaseBody,
        response: { 200: releaseResponse, ...commandProblems },
      },
    },
    async (request, reply) => {
      const { memberId, holdId } = request.params;
      return runMemberCommand(runtime, request, reply, () => ({
        memberId,
        authorize: holdStoreCheck(request, holdId),
        command: { type: 'ReleaseHold', data: { holdId } },
        respond: ({ state, now }) => ({ status: 200, body: { available: balances(state, now).available } }),
      }));
    },
  );

  app.post(
    '/members/:memberId/redemptions',
    {
      config: { roles: ['pos'] },
      schema: {
        tags: ['points'],
        summary: 'Redeem points directly',
        params: memberIdParams,
        headers: commandHeaders,
        body: redemptionBody,
        response: { 201: redeemedResponse, ...commandProblems, ...problemResponses([422]) },
      },
    },
    async (request, reply) => {
      const body = request.body;
      return runMemberCommand(runtime, request, reply, () => ({
        memberId: request.params.memberId,
        storeId: body.storeId,
        command: {
          type: 'RedeemPoints',
          data: { orderId: body.orderId, storeId: body.storeId, points: body.points },
        },
        respond: ({ events, state, now }) => ({
          status: 201,
          body: { pointsRedeemed: eventOf(events, 'PointsRedeemed').data.points, ...balances(state, now) },
        }),
      }));
    },
  );

  app.post(
    '/members/:memberId/refunds',
    {
      config: { roles: ['pos'] },
      schema: {
        tags: ['points'],
        summary: 'Refund (part of) an order: reverses earned points, restores redeemed ones',
        params: memberIdParams,
        headers: commandHeaders,
        body: refundBody,
        response: { 201: refundResponse, ...commandProblems, ...problemResponses([422]) },
      },
    },
    async (request, reply) => {
      const body = request.body;
      return runMemberCommand(runtime, request, reply, (idFor) => ({
        memberId: request.params.memberId,
        storeId: body.storeId,
        command: {
          type: 'RefundPurchase',
          data: {
            refundId: body.refundId,
            orderId: body.orderId,
            storeId: body.storeId,
            amountFen: body.amountFen,
            lotId: idFor('lot'),
          },
        },
        respond: ({ events, state, now }) => {
          const refund = eventOf(events, 'PurchaseRefunded').data;
          return {
            status: 201,
            body: {
              pointsReversed: refund.pointsReversed,
              pointsRestored: refund.pointsRestored,
              ...balances(state, now),
            },
          };
        },
      }));
    },
  );

  app.post(
    '/members/:memberId/adjustments',
    {
      config: { roles: ['support', 'admin'] },
      schema: {
        tags: ['points'],
        summary: 'Adjust points by hand (reason required; the key is recorded as actor)',
        params: memberIdParams,
        headers: commandHeaders,
        body: adjustmentBody,
        response: { 201: adjustmentResponse, ...commandProblems, ...problemResponses([422]) },
      },
    },
    async (request, reply) => {
      const body = request.body;
      return runMemberCommand(runtime, request, reply, (idFor) => ({
        memberId: request.params.memberId,
        command: {
          type: 'AdjustPoints',
          data: {
            adjustmentId: body.adjustmentId,
            points: body.points,
            reason: body.reason,
            actor: request.principal?.keyId ?? 'unknown',
            lotId: idFor('lot'),
            ...(body.ticket === undefined ? {} : { ticket: body.ticket }),
          },
        },
        respond: ({ state, now }) => ({ status: 201, body: balances(state, now) }),
      }));
    },
  );
}
