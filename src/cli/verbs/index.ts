import { dbMigrate } from './db-migrate.ts';
import { keysCreate } from './keys-create.ts';
import { project, serve, start } from './serve.ts';
import { tenantsCreate } from './tenants-create.ts';
import type { Verb } from './verb.ts';

/** Every CLI verb (CONTRACT.md, "CLI"), by the words that name it. */
export const VERBS: Readonly<Record<string, Verb>> = {
  'db migrate': dbMigrate,
  'tenants create': tenantsCreate,
  'keys create': keysCreate,
  start,
  serve,
  project,
};

export function usage(): string {
  const lines = Object.values(VERBS).map((verb) => `  ledger ${verb.usage}\n      ${verb.summary}`);
  return `usage:\n${lines.join('\n')}\n`;
}
