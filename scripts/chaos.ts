/**
 * npm run chaos [-- --long] [-- --seed N] [-- --keep]
 *
 * Nothing lost under faults (docs/reliability.md): bounded POS clients against `ledger serve` processes
 * while API and projector processes are killed with SIGKILL, the run's own MariaDB is killed and restarted,
 * and a proxy cuts connections; then the projector drains, `ledger audit` must exit 0 and an oracle
 * checks every acknowledged command and every balance. Exit 0 when nothing is wrong, 1 on any
 * discrepancy or failed check, 2 when the run itself could not be carried out.
 */
import { formatReport, runChaos, type ChaosMode } from './chaos/harness.ts';

function parse(argv: readonly string[]): { mode: ChaosMode; seed?: number; keep: boolean } {
  let mode: ChaosMode = 'short';
  let seed: number | undefined;
  let keep = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--long') mode = 'long';
    else if (arg === '--short') mode = 'short';
    else if (arg === '--keep') keep = true;
    else if (arg === '--seed') {
      const value = Number(argv[++i]);
      if (!Number.isSafeInteger(value) || value < 0) throw new Error('--seed takes a non-negative integer');
      seed = value;
    } else throw new Error(`unknown argument ${arg}; usage: chaos [--long] [--seed N] [--keep]`);
  }
  return seed === undefined ? { mode, keep } : { mode, seed, keep };
}

async function main(): Promise<number> {
  const args = parse(process.argv.slice(2));
  const report = await runChaos(args);
  process.stdout.write(formatReport(report));
  return report.discrepancies.length === 0 && report.failedChecks.length === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(
      `chaos: could not run: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(2);
  },
);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  // process.exit runs the harness's exit hook, which kills every process the run started.
  process.on(signal, () => process.exit(130));
}
