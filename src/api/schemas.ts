import { z } from 'zod';
import { CHANNELS } from '../domain/member/events.ts';
import { HOLD_TTL_SECONDS_MAX, ORDER_LINES_MAX } from '../domain/limits.ts';
import {
  adjustPointsSchema,
  memberNameSchema,
  phoneSchema,
  purchaseLineSchema,
  refundPurchaseSchema,
} from '../domain/member/schemas.ts';
import { commandPointsSchema, idSchema, isoInstantInputSchema } from '../domain/validation.ts';
import { PROBLEM_CONTENT_TYPE } from './problem.ts';

/**
 * Request and response schemas of /v1 (CONTRACT.md). They validate requests, type the handlers and
 * generate /openapi.json. Field rules come from the domain's schemas so both layers hold the same limits.
 * Objects are strict: a misspelt field is refused rather than silently ignored, on a path that moves money.
 */
export const memberIdParams = z.strictObject({ memberId: z.uuid() });

/**
 * Every POST names its attempt (CONTRACT.md): declared on each command route, so a missing or malformed key
 * is a 400 `validation-failed` like any other field, and /openapi.json documents the header. Only this
 * header is declared; the others pass through.
 */
export const commandHeaders = z.object({
  'idempotency-key': idSchema.describe(
    'Scoped to the tenant: the same key with the same body answers the first response again ' +
      '(with `Idempotent-Replayed: true`); with another body, 409 `idempotency-key-reused`.',
  ),
});
export const holdParams = z.strictObject({ memberId: z.uuid(), holdId: idSchema });

export const registerBody = z.strictObject({
  memberId: z.uuid().optional(),
  phone: phoneSchema,
  name: memberNameSchema.optional(),
  storeId: idSchema,
  channel: z.enum(CHANNELS),
});

export const purchaseBody = z.strictObject({
  orderId: idSchema,
  storeId: idSchema,
  occurredAt: isoInstantInputSchema.optional(),
  // Strict like the rest: the domain's line schema strips unknown keys, so a misspelt `insurance_fen`
  // would silently earn points on the insured part of the line.
  lines: z.array(purchaseLineSchema.strict()).min(1).max(ORDER_LINES_MAX),
});

export const holdBody = z.strictObject({
  holdId: z.uuid().optional(),
  orderId: idSchema,
  storeId: idSchema,
  points: commandPointsSchema,
  ttlSeconds: z.int().min(1).max(HOLD_TTL_SECONDS_MAX).optional(),
});

export const captureBody = z.strictObject({ points: commandPointsSchema.optional() });
export const releaseBody = z.strictObject({});

export const redemptionBody = z.strictObject({
  orderId: idSchema,
  storeId: idSchema,
  points: commandPointsSchema,
});

export const refundBody = z.strictObject({
  refundId: refundPurchaseSchema.shape.refundId,
  orderId: refundPurchaseSchema.shape.orderId,
  storeId: refundPurchaseSchema.shape.storeId,
  amountFen: refundPurchaseSchema.shape.amountFen,
});

export const adjustmentBody = z.strictObject({
  adjustmentId: adjustPointsSchema.shape.adjustmentId,
  points: adjustPointsSchema.shape.points,
  reason: adjustPointsSchema.shape.reason,
  ticket: adjustPointsSchema.shape.ticket,
});

/** Ledger pages: at most this many entries. */
export const LEDGER_PAGE_ENTRIES_MAX = 500;
export const LEDGER_PAGE_ENTRIES_DEFAULT = 50;

export const ledgerQuery = z.strictObject({
  from: isoInstantInputSchema.optional(),
  to: isoInstantInputSchema.optional(),
  // Digits only: z.coerce would also take '0x10', '1e2' and ' 5' (Number() does).
  limit: z
    .preprocess(
      (value) => (typeof value === 'string' && /^[0-9]{1,9}$/.test(value) ? Number(value) : value),
      z.number().int().min(1).max(LEDGER_PAGE_ENTRIES_MAX),
    )
    .default(LEDGER_PAGE_ENTRIES_DEFAULT),
  cursor: z
    .string()
    .max(64)
    .regex(/^[A-Za-z0-9_-]+$/)
    .optional(),
});

export const lookupQuery = z.strictObject({ phone: phoneSchema });
export const balanceQuery = z.strictObject({ asOf: isoInstantInputSchema.optional() });

export const memberView = z.object({
  memberId: z.string(),
  tenantId: z.string(),
  phone: z.string(),
  tier: z.string(),
  points: z.object({ balance: z.int(), held: z.int(), available: z.int() }),
  expiring: z.array(z.object({ points: z.int(), expiresAt: z.string() })),
  tags: z.array(z.string()),
  version: z.int(),
});

export const lotView = z.object({ lotId: z.string(), points: z.int(), expiresAt: z.string() });

export const purchaseResponse = z.object({
  pointsEarned: z.int(),
  balance: z.int(),
  available: z.int(),
  lot: lotView.nullable(),
});
export const holdResponse = z.object({
  holdId: z.string(),
  points: z.int(),
  expiresAt: z.string(),
  available: z.int(),
});
export const redeemedResponse = z.object({ pointsRedeemed: z.int(), balance: z.int(), available: z.int() });
export const releaseResponse = z.object({ available: z.int() });
export const refundResponse = z.object({
  pointsReversed: z.int(),
  pointsRestored: z.int(),
  balance: z.int(),
  available: z.int(),
});
export const adjustmentResponse = z.object({ balance: z.int(), available: z.int() });

export const ledgerEntry = z.object({
  entryId: z.string(),
  at: z.string(),
  kind: z.string(),
  points: z.int(),
  balanceAfter: z.int(),
  orderId: z.string().optional(),
  storeId: z.string().optional(),
  reason: z.string().optional(),
});
export const ledgerResponse = z.object({ entries: z.array(ledgerEntry), nextCursor: z.string().nullable() });
export const balanceResponse = z.object({ asOf: z.string(), balance: z.int(), held: z.int() });

/** RFC 9457 problem details: every error answers one (src/api/problem.ts builds them). */
export const problemSchema = z
  .looseObject({
    type: z.string(),
    title: z.string(),
    status: z.int(),
    detail: z.string(),
    code: z.string().describe('stable machine code, e.g. `insufficient-points`'),
    errors: z
      .array(z.object({ path: z.string(), message: z.string() }))
      .optional()
      .describe('`validation-failed`: every offending field'),
    memberId: z.string().optional().describe('`member-exists`: the member holding the phone'),
  })
  .meta({ id: 'Problem' });

const PROBLEM_DESCRIPTIONS = {
  400: '`validation-failed`: the request is malformed (`errors` names each offending field)',
  401: '`unauthorized`: no key, or not a valid one',
  403: '`forbidden`: a role or store the key lacks',
  404: "`not-found`: no such member (or order) in the key's tenant",
  409: "`idempotency-key-reused`, `concurrency-conflict`, or the route's own conflict (see `code`)",
  413: '`payload-too-large`',
  415: '`unsupported-media-type`: the body is not `application/json`',
  422: "refused by the programme's rules (see `code`)",
  429: "`rate-limited`: the key's rate limit",
  500: '`internal-error`: a bug; quote the request id it names',
} as const;

interface ProblemResponse {
  description: string;
  content: { [PROBLEM_CONTENT_TYPE]: { schema: typeof problemSchema } };
}

/** Error responses of a route, each problem+json, for its schema's `response` (and so for /openapi.json). */
export function problemResponses<S extends keyof typeof PROBLEM_DESCRIPTIONS>(
  statuses: readonly S[],
): Record<S, ProblemResponse> {
  const responses = {} as Record<S, ProblemResponse>;
  for (const status of statuses) {
    responses[status] = {
      description: PROBLEM_DESCRIPTIONS[status],
      content: { [PROBLEM_CONTENT_TYPE]: { schema: problemSchema } },
    };
  }
  return responses;
}

const READ_PROBLEM_STATUSES = [400, 401, 403, 404, 429, 500] as const;
/** What every /v1 route may answer besides its success. */
export const readProblems = problemResponses(READ_PROBLEM_STATUSES);
/** A command (every POST) may also answer a conflict, a body too large, or a body that is not JSON. */
export const commandProblems = problemResponses([...READ_PROBLEM_STATUSES, 409, 413, 415]);
