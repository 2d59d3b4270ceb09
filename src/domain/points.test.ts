import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvariantViolation, assert } from './assert.ts';
import { addPoints, assertPoints, debtOf, mulDivFloor, subtractPoints, sumPoints } from './points.ts';

describe('mulDivFloor', () => {
  it('is exact where floating point is not', () => {
    // 9007199254740991 x 3 / 3 overflows 2^53 in the middle.
    expect(mulDivFloor(Number.MAX_SAFE_INTEGER, 3, 3)).toBe(Number.MAX_SAFE_INTEGER);
    expect(mulDivFloor(1_000_000_000, 1_000_000, 100_000)).toBe(10_000_000_000);
    expect(mulDivFloor(7, 2, 3)).toBe(4);
    expect(mulDivFloor(0, 5, 7)).toBe(0);
  });

  it('equals floor(a x b / c) computed in BigInt for any safe inputs', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
        fc.integer({ min: 0, max: 1_000_000 }),
        fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
        (a, b, c) => {
          const expected = (BigInt(a) * BigInt(b)) / BigInt(c);
          fc.pre(expected <= BigInt(Number.MAX_SAFE_INTEGER));
          expect(mulDivFloor(a, b, c)).toBe(Number(expected));
        },
      ),
    );
  });

  it('crashes on inputs that are a bug', () => {
    expect(() => mulDivFloor(1, 1, 0)).toThrow(InvariantViolation);
    expect(() => mulDivFloor(-1, 1, 1)).toThrow(InvariantViolation);
    expect(() => mulDivFloor(1.5, 1, 1)).toThrow(InvariantViolation);
    expect(() => mulDivFloor(Number.MAX_SAFE_INTEGER + 1, 1, 1)).toThrow(InvariantViolation);
    expect(() => mulDivFloor(Number.MAX_SAFE_INTEGER, 2, 1)).toThrow(InvariantViolation);
    expect(() => mulDivFloor(Number.NaN, 1, 1)).toThrow(InvariantViolation);
  });
});

describe('points arithmetic', () => {
  it('adds, subtracts and sums safe integers only', () => {
    expect(addPoints(2, -5)).toBe(-3);
    expect(subtractPoints(2, 5)).toBe(-3);
    expect(sumPoints([1, 2, 3])).toBe(6);
    expect(() => addPoints(Number.MAX_SAFE_INTEGER, 1)).toThrow(InvariantViolation);
    expect(() => sumPoints([0.1, 0.2])).toThrow(InvariantViolation);
    expect(() => assertPoints(Number.POSITIVE_INFINITY)).toThrow(InvariantViolation);
  });

  it('reads debt off a negative balance', () => {
    expect(debtOf(-30)).toBe(30);
    expect(debtOf(0)).toBe(0);
    expect(debtOf(12)).toBe(0);
  });

  it('assert throws InvariantViolation with the message', () => {
    expect(() => assert(false, 'boom')).toThrow(new InvariantViolation('boom'));
    expect(() => assert(true, 'fine')).not.toThrow();
  });
});
