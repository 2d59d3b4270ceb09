import { describe, expect, it } from 'vitest';
import { maskPhone, normalizePhone } from './phone.ts';

describe('normalizePhone', () => {
  it('turns a mainland mobile into E.164', () => {
    expect(normalizePhone('13812345678')).toBe('+8613812345678');
    expect(normalizePhone('138 1234 5678')).toBe('+8613812345678');
    expect(normalizePhone('138-1234-5678')).toBe('+8613812345678');
    expect(normalizePhone('+86 138 1234 5678')).toBe('+8613812345678');
  });

  it('keeps other E.164 numbers', () => {
    expect(normalizePhone('+44 20 7946 0958')).toBe('+442079460958');
    expect(normalizePhone('+85291234567')).toBe('+85291234567');
    expect(normalizePhone('+12125550123')).toBe('+12125550123');
  });

  it('rejects anything else', () => {
    for (const raw of [
      '',
      '1381234567', // 10 digits
      '23812345678', // not starting with 1
      '8613812345678', // country code without +
      '+0123456789',
      '+1234567', // 7 digits
      '+1234567890123456', // 16 digits
      '(138) 1234 5678',
      '138.1234.5678',
      '+86 138 1234 5678 ext 1',
    ]) {
      expect(normalizePhone(raw), raw).toBeNull();
    }
  });
});

describe('maskPhone', () => {
  it('keeps the country code, the first 3 and last 4 national digits', () => {
    expect(maskPhone('+8613812345678')).toBe('+86138****5678');
    expect(maskPhone('+8615900001111')).toBe('+86159****1111');
  });

  it('masks at least 4 digits of short numbers', () => {
    expect(maskPhone('+85291234567')).toBe('+852****4567');
    expect(maskPhone('+442079460958')).toBe('+4420****0958');
    expect(maskPhone('+12125550123')).toBe('+121****0123');
  });
});
