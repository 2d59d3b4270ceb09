/**
 * Assertions for invariants that can only fail through a bug (TigerBeetle style): they crash loudly
 * instead of letting a wrong balance reach the event store. Expected operating errors (insufficient
 * points, unknown order) are values, see errors.ts, never exceptions.
 */
export class InvariantViolation extends Error {
  override name = 'InvariantViolation';
}

/**
 * The message is built before the call, so loops over state use `if (!ok) fail(...)` instead and only
 * pay for the message when it is needed.
 */
export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new InvariantViolation(message);
}

export function fail(message: string): never {
  throw new InvariantViolation(message);
}

/** Exhaustiveness check for discriminated unions: the compiler proves this is never reached. */
export function assertNever(value: never, what: string): never {
  throw new InvariantViolation(`unexpected ${what}: ${JSON.stringify(value)}`);
}
