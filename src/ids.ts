import { hash } from 'node:crypto';
import { parse as uuidParse, stringify as uuidStringify, v4 as uuidv4, validate as uuidValidate } from 'uuid';

/** The one id source. Random ids for new things; deterministic ids where a retry must produce the same id. */

/** Namespace for ids derived from (tenant, command id): a retry after an unknown outcome yields the same ids. */
const LEDGER_NAMESPACE = '6f1d2a9e-4c0b-5b7e-9a55-3c1f0e2d8b41';
const LEDGER_NAMESPACE_BYTES = Buffer.from(uuidParse(LEDGER_NAMESPACE));

export function newId(): string {
  return uuidv4();
}

/**
 * A uuid v5 of its parts (RFC 9562 5.5: SHA-1 of namespace and name, version and variant bits set): the
 * same parts always give the same id. Written out rather than taken from the uuid package, which builds a
 * hash object per call; a command derives several ids (ids.test.ts pins the answers to the package's).
 */
export function derivedId(...parts: string[]): string {
  const name = Buffer.from(parts.join('\u001f'), 'utf8');
  const bytes = hash('sha1', Buffer.concat([LEDGER_NAMESPACE_BYTES, name]), 'buffer');
  bytes[6] = (bytes[6]! & 0x0f) | 0x50;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  return uuidStringify(bytes);
}

export function isUuid(value: string): boolean {
  return uuidValidate(value);
}
