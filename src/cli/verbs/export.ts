import { schemaMismatch } from '../../db/migrate.ts';
import { ExportRefusedError, runExport } from '../../export/export.ts';
import { ExportInputError } from '../../export/period.ts';
import { openRuntime } from '../../runtime.ts';
import { flag, noPositionals, onlyOptions, parseArgs, requiredOption, UsageError } from '../args.ts';
import type { Verb } from './verb.ts';

/**
 * Exit 0: the files are in DIR and reconcile. Exit 1: the export ran and does not reconcile (the failed
 * checks are printed; nothing is written). Exit 2: it could not run: bad arguments, unknown tenant, a
 * period not yet closed by the ledger's clock, DIR not empty, read models behind, database down.
 */
export const exportVerb: Verb = {
  usage: 'export --tenant T --from DATE --to DATE --out DIR [--full-recompute]',
  summary:
    'the reconciled finance export of the closed period [from, to) in the tenant time zone; non-zero exit if it does not reconcile',
  async run(argv, config) {
    const args = parseArgs(argv, ['full-recompute']);
    onlyOptions(args, ['tenant', 'from', 'to', 'out', 'full-recompute']);
    noPositionals(args);
    const options = {
      tenantId: requiredOption(args, 'tenant'),
      from: requiredOption(args, 'from'),
      to: requiredOption(args, 'to'),
      outDir: requiredOption(args, 'out'),
      // The independent pass from the log's first event, not from the previous export's carry.
      fullRecompute: flag(args, 'full-recompute'),
    };
    const runtime = await openRuntime(config);
    try {
      const mismatch = await schemaMismatch(runtime.pool);
      if (mismatch !== null) {
        process.stderr.write(`ledger: export: ${mismatch}\n`);
        return 2;
      }
      const result = await runExport(runtime, options);
      const { summary } = result;
      const totals = summary.totals.balances;
      process.stdout.write(
        [
          `exported ${summary.tenantId} [${summary.period.from}, ${summary.period.to}) ${summary.period.timeZone} to ${result.outDir}`,
          `  ${summary.members} members, ${summary.stores} stores; opening ${totals['opening_points']} + movements = closing ${totals['closing_points']} points`,
          `  liability ${summary.liabilityFen} fen; expected breakage ${summary.breakage.expectedBreakageFen} fen (${summary.breakage.ratePpm} ppm)`,
          `  as of ${summary.asOf.events} events; member rows read ${summary.memberRows.plan}; independent pass read ${summary.independentPass.eventsRead} events, ${summary.independentPass.reason}`,
          `  reconciled: ${summary.checks.map((c) => c.name).join(', ')}`,
          ...result.manifest.files.map((f) => `  ${f.name} ${f.rows} rows sha256 ${f.sha256}`),
          '',
        ].join('\n'),
      );
      return 0;
    } catch (error) {
      if (error instanceof ExportInputError) throw new UsageError(error.message);
      if (error instanceof ExportRefusedError) {
        process.stderr.write(`ledger: export refused (${error.reason}): ${error.message}\n`);
        for (const check of error.checks.filter((c) => !c.passed))
          process.stderr.write(`  failed ${check.name}: ${check.detail}\n`);
        return error.reason === 'not-reconciled' ? 1 : 2;
      }
      throw error;
    } finally {
      await runtime.close();
    }
  },
};
