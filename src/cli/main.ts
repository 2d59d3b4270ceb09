import { ConfigError, loadConfig } from '../config.ts';
import { UsageError } from './args.ts';
import { VERBS, usage } from './verbs/index.ts';

/**
 * `ledger <verb> ...`: exit 0 on success, 1 when the verb ran and found a problem (audit discrepancies,
 * an export that does not reconcile), 2 when it could not run (bad usage, configuration, database down).
 */
async function main(argv: readonly string[]): Promise<number> {
  const [first, second] = argv;
  if (first === undefined || first === '--help' || first === 'help') {
    process.stdout.write(usage());
    return first === undefined ? 2 : 0;
  }
  const twoWord = second === undefined ? undefined : VERBS[`${first} ${second}`];
  const verb = twoWord ?? VERBS[first];
  const rest = argv.slice(twoWord ? 2 : 1);
  if (verb === undefined) {
    process.stderr.write(`ledger: unknown verb '${argv.join(' ')}'\n\n${usage()}`);
    return 2;
  }
  try {
    const config = loadConfig();
    return await verb.run(rest, config);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`ledger: ${error.message}\nusage: ledger ${verb.usage}\n`);
      return 2;
    }
    if (error instanceof ConfigError) {
      process.stderr.write(`ledger: ${error.message}\n`);
      return 2;
    }
    process.stderr.write(`ledger: ${error instanceof Error ? error.message : String(error)}\n`);
    return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    // Long-running verbs (start, serve, project) never resolve; the others exit with their code.
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`ledger: ${String(error)}\n`);
    process.exitCode = 2;
  },
);
