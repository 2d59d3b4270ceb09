/**
 * Field rules shared by the deciders, as zod schemas so the API can reuse the same limits in its
 * request schemas (and in the OpenAPI it generates). The deciders validate their commands themselves:
 * a command is checked where its rules live, whoever sends it.
 */
import { z } from 'zod';
import type { DomainErrorOf, ValidationIssue } from './errors.ts';
import { validationFailed } from './errors.ts';
import { ACTOR_CHARS_MAX, ID_CHARS_MAX, POINTS_PER_COMMAND_MAX } from './limits.ts';
import { normalizeIsoInstant } from './time.ts';

/** Ids chosen by callers (orderId, holdId, lotId, ...): 1-128 visible ASCII characters. */
export const idSchema = z
  .string()
  .min(1)
  .max(ID_CHARS_MAX)
  .regex(/^[\x21-\x7e]+$/, 'must be visible ASCII without spaces');

const CONTROL_CHARACTER_LAST = 0x1f;
const DELETE_CHARACTER = 0x7f;

function isControlCharacter(character: string): boolean {
  const code = character.codePointAt(0) ?? 0;
  return code <= CONTROL_CHARACTER_LAST || code === DELETE_CHARACTER;
}

/** Free text: no control characters, not blank. */
export function textSchema(charsMax: number) {
  return z
    .string()
    .min(1)
    .max(charsMax)
    .refine((text) => ![...text].some(isControlCharacter), 'must not contain control characters')
    .refine((text) => text.trim().length > 0, 'must not be blank');
}

/** Points named by a hold, capture or redemption. */
export const commandPointsSchema = z.int().min(1).max(POINTS_PER_COMMAND_MAX);

/** Any ISO-8601 instant with an offset; the decider stores it normalised to UTC. */
export const isoInstantInputSchema = z
  .string()
  .refine(
    (text) => normalizeIsoInstant(text) !== null,
    'must be an ISO-8601 instant with an offset, e.g. 2026-01-01T08:00:00Z',
  );

export const actorSchema = textSchema(ACTOR_CHARS_MAX);

export function issuesOf(error: z.ZodError): ValidationIssue[] {
  return error.issues.map((issue) => ({ path: issue.path.map(String).join('.'), message: issue.message }));
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: DomainErrorOf<'validation-failed'> };

export function parseWith<T>(schema: z.ZodType<T>, input: unknown, pathPrefix = ''): Parsed<T> {
  const result = schema.safeParse(input);
  if (result.success) return { ok: true, value: result.data };
  const issues = issuesOf(result.error).map((issue) => ({
    path: pathPrefix === '' ? issue.path : issue.path === '' ? pathPrefix : `${pathPrefix}.${issue.path}`,
    message: issue.message,
  }));
  return { ok: false, error: validationFailed(issues) };
}
