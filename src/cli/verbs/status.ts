import { projectionStatus } from '../../projections/status.ts';
import { openRuntime } from '../../runtime.ts';
import { flag, noPositionals, onlyOptions, parseArgs } from '../args.ts';
import type { Verb } from './verb.ts';

export const status: Verb = {
  usage: 'status [--json]',
  summary: 'projection lag per tenant and partition (head, checkpoint, owner)',
  async run(argv, config) {
    const args = parseArgs(argv, ['json']);
    onlyOptions(args, ['json']);
    noPositionals(args);
    const runtime = await openRuntime(config);
    try {
      const report = await projectionStatus(runtime.pool, runtime.store);
      if (flag(args, 'json')) {
        process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
        return 0;
      }
      process.stdout.write('tenant               partition       head  checkpoint        lag  owner\n');
      for (const p of report.partitions) {
        process.stdout.write(
          `${p.tenantId.padEnd(20)} ${String(p.partition).padStart(9)} ${String(p.head).padStart(10)} ` +
            `${String(p.checkpoint).padStart(11)} ${String(p.lag).padStart(10)}  ${p.owner ?? '-'}\n`,
        );
      }
      process.stdout.write(`total lag ${report.totalLag} events, worst partition ${report.maxLag}\n`);
      return 0;
    } finally {
      await runtime.close();
    }
  },
};
