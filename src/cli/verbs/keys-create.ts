import { createKey } from '../../auth/keys.ts';
import { isRole, ROLES } from '../../auth/roles.ts';
import { openRuntime } from '../../runtime.ts';
import { noPositionals, onlyOptions, parseArgs, requiredOption, UsageError } from '../args.ts';
import type { Verb } from './verb.ts';

export const keysCreate: Verb = {
  usage: 'keys create --tenant T --role R [--store S]...',
  summary: 'create an API key; prints the key on stdout and nothing else (it is shown once)',
  async run(argv, config) {
    const args = parseArgs(argv);
    onlyOptions(args, ['tenant', 'role', 'store']);
    noPositionals(args);
    const tenantId = requiredOption(args, 'tenant');
    const role = requiredOption(args, 'role');
    if (!isRole(role)) throw new UsageError(`--role must be one of ${ROLES.join(', ')}`);
    const stores = args.options.get('store') ?? [];
    const runtime = await openRuntime(config);
    try {
      if ((await runtime.tenants.get(tenantId)) === null)
        throw new UsageError(`tenant ${tenantId} does not exist`);
      const created = await createKey(runtime.pool, runtime.clock, { tenantId, role, stores }).catch(
        (error: unknown) => {
          throw new UsageError(error instanceof Error ? error.message : String(error));
        },
      );
      process.stdout.write(`${created.key}\n`);
      return 0;
    } finally {
      await runtime.close();
    }
  },
};
