import { hash } from 'node:crypto';

/**
 * Log partitions per tenant. Fixed for the life of a tenant's log: a stream's partition is a pure function
 * of its id, and changing the count would move streams between logs. 16 lets 16 appends of one tenant
 * commit in parallel, and up to 16 projector processes share one tenant's log.
 */
export const LOG_PARTITIONS = 16;

export function partitionOf(streamId: string, partitions: number = LOG_PARTITIONS): number {
  const digest = hash('sha256', streamId, 'buffer');
  return digest.readUInt32BE(0) % partitions;
}
