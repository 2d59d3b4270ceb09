/**
 * Field rules of each member command's data, as zod schemas (the API may compose its request schemas
 * from these so both layers enforce the same limits). Rules that need the state or the clock live in
 * the decider files, not here.
 */
import { z } from 'zod';
import {
  CATEGORY_CHARS_MAX,
  HOLD_TTL_SECONDS_MAX,
  LINE_QUANTITY_MAX,
  MEMBER_NAME_CHARS_MAX,
  ORDER_AMOUNT_FEN_MAX,
  ORDER_LINES_MAX,
  POINTS_PER_COMMAND_MAX,
  REASON_CHARS_MAX,
  SKU_CHARS_MAX,
  TICKET_CHARS_MAX,
} from '../limits.ts';
import {
  actorSchema,
  commandPointsSchema,
  idSchema,
  isoInstantInputSchema,
  textSchema,
} from '../validation.ts';
import { CHANNELS } from './events.ts';
import { normalizePhone } from './phone.ts';

export const phoneSchema = z
  .string()
  .refine(
    (phone) => normalizePhone(phone) !== null,
    'must be an 11-digit mainland mobile number or + and 8 to 15 digits',
  );

export const memberNameSchema = textSchema(MEMBER_NAME_CHARS_MAX);

export const registerMemberSchema = z.object({
  memberId: idSchema,
  phone: phoneSchema,
  name: memberNameSchema.optional(),
  storeId: idSchema,
  channel: z.enum(CHANNELS),
});

export const updateProfileSchema = z
  .object({ name: memberNameSchema.optional(), phone: phoneSchema.optional() })
  .refine((data) => data.name !== undefined || data.phone !== undefined, 'name or phone is required');

export const purchaseLineSchema = z
  .object({
    sku: textSchema(SKU_CHARS_MAX),
    category: textSchema(CATEGORY_CHARS_MAX),
    quantity: z.int().min(1).max(LINE_QUANTITY_MAX),
    amountFen: z.int().min(0).max(ORDER_AMOUNT_FEN_MAX),
    insuranceFen: z.int().min(0).max(ORDER_AMOUNT_FEN_MAX).optional(),
  })
  // An absent insuranceFen is never the error, even when amountFen itself failed (the refine still runs).
  .refine((line) => line.insuranceFen === undefined || line.insuranceFen <= line.amountFen, {
    path: ['insuranceFen'],
    message: 'must not exceed amountFen',
  });

export const recordPurchaseSchema = z.object({
  orderId: idSchema,
  storeId: idSchema,
  occurredAt: isoInstantInputSchema.optional(),
  lines: z
    .array(purchaseLineSchema)
    .min(1)
    .max(ORDER_LINES_MAX)
    // Each line is bounded, so this sum of at most ORDER_LINES_MAX lines stays far inside 2^53.
    .refine(
      (lines) => lines.reduce((total, line) => total + line.amountFen, 0) <= ORDER_AMOUNT_FEN_MAX,
      `the order total must not exceed ${ORDER_AMOUNT_FEN_MAX} fen`,
    ),
  lotId: idSchema,
});

export const placeHoldSchema = z.object({
  holdId: idSchema,
  orderId: idSchema,
  storeId: idSchema,
  points: commandPointsSchema,
  ttlSeconds: z.int().min(1).max(HOLD_TTL_SECONDS_MAX).optional(),
});

export const captureHoldSchema = z.object({ holdId: idSchema, points: commandPointsSchema.optional() });

export const releaseHoldSchema = z.object({ holdId: idSchema });

export const redeemPointsSchema = z.object({
  orderId: idSchema,
  storeId: idSchema,
  points: commandPointsSchema,
});

export const refundPurchaseSchema = z.object({
  refundId: idSchema,
  orderId: idSchema,
  storeId: idSchema,
  amountFen: z.int().min(1).max(ORDER_AMOUNT_FEN_MAX),
  lotId: idSchema,
});

export const adjustPointsSchema = z.object({
  adjustmentId: idSchema,
  points: z
    .int()
    .min(-POINTS_PER_COMMAND_MAX)
    .max(POINTS_PER_COMMAND_MAX)
    .refine((points) => points !== 0, 'must not be zero'),
  reason: textSchema(REASON_CHARS_MAX),
  ticket: textSchema(TICKET_CHARS_MAX).optional(),
  actor: actorSchema,
  lotId: idSchema,
});

export const expireLotsSchema = z.object({ asOf: isoInstantInputSchema });
