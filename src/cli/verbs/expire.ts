import { sweepExpiredLots } from '../../commands/expiry-sweep.ts';
import { normalizeIsoInstant } from '../../domain/time.ts';
import { openRuntime } from '../../runtime.ts';
import { noPositionals, onlyOptions, option, parseArgs, requiredOption, UsageError } from '../args.ts';
import type { Verb } from './verb.ts';

export const expire: Verb = {
  usage: 'expire --as-of ISO [--tenant T]',
  summary: 'expire lots due by then (every tenant unless --tenant); running it twice changes nothing',
  async run(argv, config) {
    const args = parseArgs(argv);
    onlyOptions(args, ['as-of', 'tenant']);
    noPositionals(args);
    const asOf = normalizeIsoInstant(requiredOption(args, 'as-of'));
    if (asOf === null) throw new UsageError('--as-of must be an ISO-8601 instant with an offset');
    const runtime = await openRuntime(config);
    try {
      if (asOf > runtime.clock.nowIso())
        throw new UsageError(`--as-of ${asOf} is in the future by the ledger's clock`);
      const only = option(args, 'tenant');
      const tenants = only === undefined ? await runtime.store.listTenants() : [only];
      for (const tenantId of tenants) {
        const result = await sweepExpiredLots(runtime, tenantId, asOf);
        process.stdout.write(
          `${tenantId}: expired ${result.points} points in ${result.lots} lots of ${result.membersExpired} members ` +
            `(${result.membersChecked} members had lots due by ${asOf})\n`,
        );
      }
      return 0;
    } finally {
      await runtime.close();
    }
  },
};
