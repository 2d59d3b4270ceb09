import { audit } from './audit.ts';
import { dbMigrate } from './db-migrate.ts';
import { expire } from './expire.ts';
import { exportVerb } from './export.ts';
import { keysCreate } from './keys-create.ts';
import { projectionsRebuild } from './projections-rebuild.ts';
import { replay } from './replay.ts';
import { project, serve, start } from './serve.ts';
import { status } from './status.ts';
import { tagsSet } from './tags-set.ts';
import { tenantsCreate } from './tenants-create.ts';
import type { Verb } from './verb.ts';

/** Every CLI verb (CONTRACT.md, "CLI"), by the words that name it. */
export const VERBS: Readonly<Record<string, Verb>> = {
  'db migrate': dbMigrate,
  'tenants create': tenantsCreate,
  'keys create': keysCreate,
  'tags set': tagsSet,
  start,
  serve,
  project,
  expire,
  audit,
  replay,
  export: exportVerb,
  status,
  'projections rebuild': projectionsRebuild,
};

export function usage(): string {
  const lines = Object.values(VERBS).map((verb) => `  ledger ${verb.usage}\n      ${verb.summary}`);
  return `usage:\n${lines.join('\n')}\n`;
}
