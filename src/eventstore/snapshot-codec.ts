import { deflateRawSync, inflateRawSync } from 'node:zlib';

/**
 * How a snapshot is stored in `streams.snapshot`. Small states stay plain JSON; larger ones are deflated
 * (level 1) and base64-encoded behind a `z:` prefix. A member's state repeats its field names for every
 * lot and order, so it shrinks about tenfold, and stays inside the row instead of spilling to overflow
 * pages that the database must write on every command. Plain JSON never starts with `z`, so both forms
 * read back without a flag.
 */
const COMPRESS_FROM_BYTES = 2_048;
const COMPRESSED_PREFIX = 'z:';

export function encodeSnapshot(state: unknown): string {
  const json = JSON.stringify(state);
  if (json.length < COMPRESS_FROM_BYTES) return json;
  return COMPRESSED_PREFIX + deflateRawSync(json, { level: 1 }).toString('base64');
}

export function decodeSnapshot(text: string): unknown {
  if (!text.startsWith(COMPRESSED_PREFIX)) return JSON.parse(text) as unknown;
  return JSON.parse(
    inflateRawSync(Buffer.from(text.slice(COMPRESSED_PREFIX.length), 'base64')).toString('utf8'),
  ) as unknown;
}
