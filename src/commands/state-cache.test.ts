import { describe, expect, it } from 'vitest';
import { StreamStateCache } from './state-cache.ts';

describe('StreamStateCache', () => {
  it('keeps the most recently used states within its byte budget', () => {
    const cache = new StreamStateCache(1_600);
    cache.set('a', 1, 'A', 100);
    cache.set('b', 1, 'B', 100);
    cache.set('c', 1, 'C', 100);
    expect(cache.get('a')).toEqual({ version: 1, state: 'A' }); // a is now the most recent
    cache.set('d', 1, 'D', 100);
    cache.set('b', 2, 'B2', 100); // replacing an entry does not count it twice
    expect(cache.size).toEqual({ entries: 4, bytes: 400 });
    cache.set('e', 1, 'E', 100);
    cache.set('f', 1, 'F', 100);
    cache.set('g', 1, 'G', 100);
    cache.set('h', 1, 'H', 100);
    cache.set('i', 1, 'I', 100);
    cache.set('j', 1, 'J', 100);
    cache.set('k', 1, 'K', 100);
    cache.set('l', 1, 'L', 100);
    cache.set('m', 1, 'M', 100);
    cache.set('n', 1, 'N', 100);
    cache.set('o', 1, 'O', 100);
    cache.set('p', 1, 'P', 100);
    cache.set('q', 1, 'Q', 100);
    // 17 entries of 100 bytes against 1,600: the least recently used (c) went first.
    expect(cache.size).toEqual({ entries: 16, bytes: 1_600 });
    expect(cache.get('c')).toBeUndefined();
    expect(cache.get('a')).toEqual({ version: 1, state: 'A' });
    expect(cache.get('b')).toEqual({ version: 2, state: 'B2' });
  });

  it('does not keep a state larger than a sixteenth of the budget, and drops what it replaced', () => {
    const cache = new StreamStateCache(1_600);
    cache.set('a', 1, 'small', 100);
    cache.set('a', 2, 'huge', 101);
    expect(cache.get('a')).toBeUndefined();
    expect(cache.size).toEqual({ entries: 0, bytes: 0 });
  });

  it('forgets a deleted stream', () => {
    const cache = new StreamStateCache(1_600);
    cache.set('a', 1, 'A', 10);
    cache.delete('a');
    cache.delete('missing');
    expect(cache.get('a')).toBeUndefined();
    expect(cache.size).toEqual({ entries: 0, bytes: 0 });
  });
});
