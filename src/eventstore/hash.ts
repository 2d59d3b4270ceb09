import { hash } from 'node:crypto';

/**
 * The hash chains (DESIGN.md invariant 6). Each event's streamHash covers its content and the previous
 * event's streamHash in the stream; each partitionHash covers the event's streamHash, its place in the log
 * and the previous partitionHash. Any change, removal, insertion or reordering breaks a chain; truncation
 * of a tail is caught against heads recorded elsewhere (stream and partition rows, read models, exports).
 */
export const GENESIS_HASH = '0'.repeat(64);

export interface StreamHashInput {
  tenantId: string;
  streamId: string;
  streamVersion: number;
  eventId: string;
  type: string;
  dataJson: string;
  metadataJson: string;
}

export function streamHash(previous: string, input: StreamHashInput): string {
  const content = JSON.stringify([
    input.tenantId,
    input.streamId,
    input.streamVersion,
    input.eventId,
    input.type,
    input.dataJson,
    input.metadataJson,
  ]);
  return hash('sha256', `${previous}\n${content}`, 'hex');
}

export function partitionHash(
  previous: string,
  partition: number,
  position: number,
  eventStreamHash: string,
): string {
  return hash('sha256', `${previous}\n${partition}|${position}|${eventStreamHash}`, 'hex');
}
