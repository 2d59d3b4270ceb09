import { describe, expect, it } from 'vitest';
import { partitionOf } from './partition.ts';

/**
 * A stream's partition is part of the stored data (DESIGN.md, "Ordering without a global lock"): a
 * different answer for a stored stream would split its history over two logs. These values were computed
 * with createHash('sha256').update(streamId).digest().readUInt32BE(0) % partitions, the first implementation.
 */
describe('partitionOf keeps its answers', () => {
  it.each([
    ['member-0b4f1c9e-2d7a-4c55-9e61-3f0a8d2b7c14', 9, 2],
    ['member-m1', 14, 5],
    ['tenant-acme', 15, 6],
    // Non-ASCII ids are hashed as UTF-8.
    ['member-ü€', 11, 1],
  ])('%s', (streamId, of16, of7) => {
    expect(partitionOf(streamId)).toBe(of16);
    expect(partitionOf(streamId, 7)).toBe(of7);
  });
});
