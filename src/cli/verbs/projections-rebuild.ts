import { rebuildProjections } from '../../projections/rebuild.ts';
import { openRuntime } from '../../runtime.ts';
import { onlyOptions, parseArgs, UsageError } from '../args.ts';
import type { Verb } from './verb.ts';

export const projectionsRebuild: Verb = {
  usage: 'projections rebuild',
  summary: 'rebuild every read model from position zero beside the live ones, then swap them in atomically',
  async run(argv, config) {
    const args = parseArgs(argv);
    onlyOptions(args, []);
    if (args.positionals.length > 0) throw new UsageError('the read models are rebuilt together; name none');
    const runtime = await openRuntime(config);
    try {
      const result = await rebuildProjections(runtime.pool, runtime.store);
      process.stdout.write(`${JSON.stringify(result)}\n`);
      return 0;
    } finally {
      await runtime.close();
    }
  },
};
