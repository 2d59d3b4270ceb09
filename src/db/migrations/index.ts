import { migration001 } from './001-event-store.ts';
import { migration002 } from './002-api-keys.ts';
import { migration003 } from './003-read-models.ts';
import { migration004 } from './004-exports.ts';
import { migration005 } from './005-export-carries.ts';
import { migration006 } from './006-ledger-entries-by-time-store.ts';
import type { Migration } from './migration.ts';

/** Every migration, in order. Append only: an applied migration is never edited (its checksum is checked). */
export const migrations: readonly Migration[] = [
  migration001,
  migration002,
  migration003,
  migration004,
  migration005,
  migration006,
];
