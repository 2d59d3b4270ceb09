import { describe, expect, it } from 'vitest';
import { decodeSnapshot, encodeSnapshot } from './snapshot-codec.ts';

describe('snapshot codec', () => {
  it('keeps small states as plain JSON', () => {
    const state = { balance: 10, lots: [] };
    expect(encodeSnapshot(state)).toBe(JSON.stringify(state));
    expect(decodeSnapshot(encodeSnapshot(state))).toEqual(state);
  });

  it('compresses large states and reads them back exactly', () => {
    const state = {
      balance: 123,
      orders: Array.from({ length: 300 }, (_, i) => ({
        orderId: `order-${i}`,
        refundedFen: i,
        refundIds: [],
        note: 'é"\u2028',
      })),
    };
    const encoded = encodeSnapshot(state);
    expect(encoded.startsWith('z:')).toBe(true);
    expect(encoded.length).toBeLessThan(JSON.stringify(state).length / 4);
    expect(decodeSnapshot(encoded)).toEqual(state);
  });
});
