import { readFile } from 'node:fs/promises';
import { openRuntime } from '../../runtime.ts';
import { onlyOptions, option, parseArgs, UsageError } from '../args.ts';
import type { Verb } from './verb.ts';

export const tenantsCreate: Verb = {
  usage: 'tenants create <tenantId> [--name N] [--time-zone TZ] [--programme FILE]',
  summary: 'create a tenant (time zone defaults to Asia/Shanghai, programme to the default programme)',
  async run(argv, config) {
    const args = parseArgs(argv);
    onlyOptions(args, ['name', 'time-zone', 'programme']);
    const [tenantId, ...extra] = args.positionals;
    if (tenantId === undefined || extra.length > 0) throw new UsageError('give exactly one tenant id');
    const programmeFile = option(args, 'programme');
    let programme: unknown;
    if (programmeFile !== undefined) {
      try {
        programme = JSON.parse(await readFile(programmeFile, 'utf8'));
      } catch (error) {
        throw new UsageError(
          `--programme ${programmeFile}: ${error instanceof Error ? error.message : String(error)}`,
        );
      }
    }
    const name = option(args, 'name');
    const timeZone = option(args, 'time-zone');
    const runtime = await openRuntime(config, { migrate: true });
    try {
      const result = await runtime.tenants.create({
        tenantId,
        ...(name === undefined ? {} : { name }),
        ...(timeZone === undefined ? {} : { timeZone }),
        ...(programme === undefined ? {} : { programme: programme as never }),
      });
      if (!result.ok) {
        process.stderr.write(`ledger: ${result.rejection.code}: ${result.rejection.detail}\n`);
        // Input the domain refuses could not run, like a usage error (2); an existing tenant is a finding (1).
        return result.rejection.code === 'validation-failed' ? 2 : 1;
      }
      process.stdout.write(`created tenant ${tenantId}\n`);
      return 0;
    } finally {
      await runtime.close();
    }
  },
};
