import { migrate } from '../../db/migrate.ts';
import { openPool } from '../../db/pool.ts';
import { noArguments } from '../args.ts';
import type { Verb } from './verb.ts';

export const dbMigrate: Verb = {
  usage: 'db migrate',
  summary: 'create or upgrade the schema (idempotent)',
  async run(argv, config) {
    noArguments(argv);
    const pool = await openPool(config.databaseUrl, 2);
    try {
      const result = await migrate(pool);
      process.stdout.write(
        result.applied.length === 0
          ? `schema is current (version ${result.current})\n`
          : `applied migrations ${result.applied.join(', ')}; schema version ${result.current}\n`,
      );
      return 0;
    } finally {
      await pool.end();
    }
  },
};
