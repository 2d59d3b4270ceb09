import { v4 as uuidv4, v5 as uuidv5, validate as uuidValidate } from 'uuid';

/** The one id source. Random ids for new things; deterministic ids where a retry must produce the same id. */

/** Namespace for ids derived from (tenant, command id): a retry after an unknown outcome yields the same ids. */
const LEDGER_NAMESPACE = '6f1d2a9e-4c0b-5b7e-9a55-3c1f0e2d8b41';

export function newId(): string {
  return uuidv4();
}

/** A uuid v5 of its parts: the same parts always give the same id. */
export function derivedId(...parts: string[]): string {
  return uuidv5(parts.join('\u001f'), LEDGER_NAMESPACE);
}

export function isUuid(value: string): boolean {
  return uuidValidate(value);
}
