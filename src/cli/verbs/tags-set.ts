import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { setTagRules } from '../../projections/tags.ts';
import { openRuntime } from '../../runtime.ts';
import { noPositionals, onlyOptions, parseArgs, requiredOption, UsageError } from '../args.ts';
import type { Verb } from './verb.ts';

const rulesFile = z.array(
  z.strictObject({
    category: z.string(),
    minPurchases: z.int(),
    windowDays: z.int(),
    tagPattern: z.string(),
  }),
);

export const tagsSet: Verb = {
  usage: 'tags set --tenant T --file RULES.json',
  summary:
    'replace a tenant\'s tag rules, e.g. [{"category":"chronic-cardio","minPurchases":2,"windowDays":90,"tagPattern":"chronic:{category}"}]',
  async run(argv, config) {
    const args = parseArgs(argv);
    onlyOptions(args, ['tenant', 'file']);
    noPositionals(args);
    const tenantId = requiredOption(args, 'tenant');
    const file = requiredOption(args, 'file');
    let rules: z.infer<typeof rulesFile>;
    try {
      rules = rulesFile.parse(JSON.parse(await readFile(file, 'utf8')));
    } catch (error) {
      throw new UsageError(`--file ${file}: ${error instanceof Error ? error.message : String(error)}`);
    }
    const runtime = await openRuntime(config);
    try {
      if ((await runtime.tenants.get(tenantId)) === null)
        throw new UsageError(`tenant ${tenantId} does not exist`);
      const version = await setTagRules(runtime.pool, tenantId, rules).catch((error: unknown) => {
        throw new UsageError(error instanceof Error ? error.message : String(error));
      });
      process.stdout.write(`tag rules of ${tenantId} are now version ${version} (${rules.length} rules)\n`);
      return 0;
    } finally {
      await runtime.close();
    }
  },
};
