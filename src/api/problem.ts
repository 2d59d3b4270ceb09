import type { FastifyReply } from 'fastify';
import { STATUS_CODES } from 'node:http';
import type { z } from 'zod';
import type { Rejection } from '../commands/errors.ts';
import type { problemSchema } from './schemas.ts';

/**
 * RFC 9457 problem details. The ONE place where errors become HTTP: domain errors and command-handling
 * errors carry their status; everything the HTTP layer itself refuses is named here. The shape is the
 * zod schema that also documents every error response in /openapi.json.
 */
export type Problem = z.output<typeof problemSchema>;

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

const TITLES: Record<string, string> = {
  'validation-failed': 'The request is not valid',
  'not-found': 'Not found',
  unauthorized: 'Missing or invalid API key',
  forbidden: 'Not allowed for this key',
  'concurrency-conflict': 'Concurrent change',
  'idempotency-key-reused': 'Idempotency-Key reused with a different request',
  'idempotency-key-missing': 'Idempotency-Key header required',
  'payload-too-large': 'Request body too large',
  'unsupported-media-type': 'Unsupported content type',
  'rate-limited': 'Too many requests',
  'request-timeout': 'Request timed out',
  'request-headers-too-large': 'Request headers too large',
  'service-unavailable': 'Service unavailable',
  'internal-error': 'Internal error',
  'insufficient-points': 'Insufficient points',
  'hold-not-active': 'Hold is not active',
  'order-already-recorded': 'Order already recorded',
  'refund-exceeds-order': 'Refund exceeds the order',
  'order-not-found': 'Order not found',
  'member-exists': 'Member already exists',
  'member-not-found': 'Member not found',
  'hold-already-exists': 'Hold already exists',
  'refund-already-recorded': 'Refund already recorded',
  'adjustment-already-recorded': 'Adjustment already recorded',
  'too-many-holds': 'Too many active holds',
  'tenant-exists': 'Tenant already exists',
  'tenant-not-found': 'Tenant not found',
};

export const PROBLEM_TYPE_BASE = 'https://points-ledger.dev/problems/';

export function problem(
  status: number,
  code: string,
  detail: string,
  extra: Record<string, unknown> = {},
): Problem {
  return { type: `${PROBLEM_TYPE_BASE}${code}`, title: TITLES[code] ?? code, status, detail, code, ...extra };
}

/** A domain or command-handling rejection as a problem. Unknown members answer not-found (CONTRACT.md). */
export function rejectionProblem(rejection: Rejection): Problem {
  const extra: Record<string, unknown> = {};
  let detail = rejection.detail;
  // The domain names a field of the command; the request's schema names it where it was sent (body.points).
  // Both reach a client as validation-failed, so both say body, in the list and in the detail.
  if (rejection.code === 'validation-failed') {
    const errors = rejection.extra.errors.map((error) => ({
      ...error,
      path: error.path === '' ? 'body' : `body.${error.path}`,
    }));
    extra['errors'] = errors;
    if (errors[0] !== undefined) detail = `${errors[0].path}: ${errors[0].message}`;
  } else if (rejection.code === 'member-exists') extra['memberId'] = rejection.extra.memberId;
  else if (rejection.extra !== undefined) Object.assign(extra, rejection.extra);
  // Not finding a member or an order is the generic not-found of the contract, with the domain's detail.
  const code =
    rejection.code === 'member-not-found' || rejection.code === 'order-not-found'
      ? 'not-found'
      : rejection.code;
  return problem(rejection.status, code, detail, extra);
}

export function sendProblem(reply: FastifyReply, value: Problem): FastifyReply {
  return reply.code(value.status).type(PROBLEM_CONTENT_TYPE).send(value);
}

/**
 * A problem as a whole HTTP/1.1 response, for an error Node's HTTP server raises on the connection itself
 * (a request not received in time, or not HTTP), which no fastify reply can carry; the connection closes
 * after it.
 */
export function problemHttpResponse(value: Problem): string {
  const body = JSON.stringify(value);
  return [
    `HTTP/1.1 ${value.status} ${STATUS_CODES[value.status] ?? ''}`,
    `Content-Type: ${PROBLEM_CONTENT_TYPE}`,
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Connection: close',
    '',
    body,
  ].join('\r\n');
}
