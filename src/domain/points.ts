/**
 * The one module for points and money (fen) arithmetic. Points and fen are integers; every operation
 * here either stays exact or crashes (a lost fraction of a point is lost money). Floating point never
 * touches a points path: products that could exceed 2^53 go through BigInt.
 */
import { fail } from './assert.ts';

// These run in every loop over lots and orders: check first, build the message only on failure.

/** Points may be negative (a balance in debt, a debit adjustment) but always a safe integer. */
export function assertPoints(n: number, what = 'points'): void {
  if (!Number.isSafeInteger(n)) fail(`${what} must be a safe integer, got ${n}`);
}

export function assertNonNegativePoints(n: number, what = 'points'): void {
  if (!(Number.isSafeInteger(n) && n >= 0)) fail(`${what} must be a non-negative safe integer, got ${n}`);
}

export function assertPositivePoints(n: number, what = 'points'): void {
  if (!(Number.isSafeInteger(n) && n > 0)) fail(`${what} must be a positive safe integer, got ${n}`);
}

/** Fen amounts are never negative. */
export function assertFen(n: number, what = 'amountFen'): void {
  if (!(Number.isSafeInteger(n) && n >= 0)) fail(`${what} must be a non-negative safe integer, got ${n}`);
}

/** floor(a x b / c), exact for any safe non-negative integers (the product may exceed 2^53). */
export function mulDivFloor(a: number, b: number, c: number): number {
  assertNonNegativePoints(a, 'mulDivFloor a');
  assertNonNegativePoints(b, 'mulDivFloor b');
  assertPositivePoints(c, 'mulDivFloor c');
  // BigInt division truncates toward zero, which is floor for non-negative operands.
  const result = Number((BigInt(a) * BigInt(b)) / BigInt(c));
  assertNonNegativePoints(result, 'mulDivFloor result');
  return result;
}

export function addPoints(a: number, b: number): number {
  assertPoints(a);
  assertPoints(b);
  const sum = a + b;
  assertPoints(sum, 'sum');
  return sum;
}

export function subtractPoints(a: number, b: number): number {
  assertPoints(a);
  assertPoints(b);
  const difference = a - b;
  assertPoints(difference, 'difference');
  return difference;
}

export function sumPoints(values: readonly number[]): number {
  let total = 0;
  for (const value of values) total = addPoints(total, value);
  return total;
}

export function sumBy<T>(items: readonly T[], points: (item: T) => number): number {
  let total = 0;
  for (const item of items) total = addPoints(total, points(item));
  return total;
}

export function minPoints(a: number, b: number): number {
  assertPoints(a);
  assertPoints(b);
  return a < b ? a : b;
}

export function maxPoints(a: number, b: number): number {
  assertPoints(a);
  assertPoints(b);
  return a > b ? a : b;
}

/** The part of a negative balance that is debt (0 when the balance is not negative). */
export function debtOf(balance: number): number {
  assertPoints(balance, 'balance');
  return balance < 0 ? -balance : 0;
}

/** Points in fen (liability, breakage): points x pointValueFen, exact; a debt gives negative fen. */
export function pointsToFen(points: number, pointValueFen: number): number {
  assertPoints(points);
  return points >= 0 ? mulDivFloor(points, pointValueFen, 1) : -mulDivFloor(-points, pointValueFen, 1);
}
