import fc from 'fast-check';
import { v5 as uuidv5 } from 'uuid';
import { describe, expect, it } from 'vitest';
import { derivedId, isUuid } from './ids.ts';

const LEDGER_NAMESPACE = '6f1d2a9e-4c0b-5b7e-9a55-3c1f0e2d8b41';

/** Derived ids are stored (member, hold and lot ids of retried commands): they may never change. */
describe('derivedId', () => {
  it('gives the ids it always gave', () => {
    expect(derivedId('acme', 'key-1', 'hold')).toBe('2561d1d7-26f9-5a94-bbc9-0aad5d41a5fa');
    expect(derivedId('ü€')).toBe('8b384f8e-c359-5a90-b526-003a768ddeb4');
  });

  it('equals the uuid package v5 of the joined parts, for any parts', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: 'binary' }), { minLength: 1, maxLength: 4 }), (parts) => {
        const id = derivedId(...parts);
        expect(id).toBe(uuidv5(parts.join('\u001f'), LEDGER_NAMESPACE));
        expect(isUuid(id)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});
