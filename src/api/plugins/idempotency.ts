import type { FastifyRequest } from 'fastify';
import { problem, type Problem } from '../problem.ts';

/** CONTRACT.md: 1-128 visible ASCII characters, scoped to the tenant. */
const IDEMPOTENCY_KEY_PATTERN = /^[\x21-\x7e]{1,128}$/;

/** The request's Idempotency-Key, or the problem to answer with. */
export function idempotencyKeyOf(request: FastifyRequest): { key: string } | { problem: Problem } {
  const value = request.headers['idempotency-key'];
  if (typeof value !== 'string' || value.length === 0) {
    return {
      problem: problem(400, 'validation-failed', 'every POST carries an Idempotency-Key header', {
        errors: [{ path: 'headers.idempotency-key', message: 'required' }],
      }),
    };
  }
  if (!IDEMPOTENCY_KEY_PATTERN.test(value)) {
    return {
      problem: problem(400, 'validation-failed', 'Idempotency-Key must be 1-128 visible ASCII characters', {
        errors: [{ path: 'headers.idempotency-key', message: '1-128 visible ASCII characters' }],
      }),
    };
  }
  return { key: value };
}
