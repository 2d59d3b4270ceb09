import { runAudit, type AuditProgress } from '../../audit/audit.ts';
import { formatAuditSummary } from '../../audit/report.ts';
import { schemaMismatch } from '../../db/migrate.ts';
import { openRuntime } from '../../runtime.ts';
import { flag, noPositionals, onlyOptions, option, parseArgs } from '../args.ts';
import type { Verb } from './verb.ts';

/** A progress line at most this often (stderr, and only when it is a terminal). */
const PROGRESS_INTERVAL_MS = 250;

function progressReporter(): { update(progress: AuditProgress): void; done(): void } {
  if (!process.stderr.isTTY) return { update: () => undefined, done: () => undefined };
  const startedMs = Date.now();
  let lastMs = 0;
  let shown = false;
  return {
    update(progress) {
      const now = Date.now();
      if (now - lastMs < PROGRESS_INTERVAL_MS) return;
      lastMs = now;
      shown = true;
      const seconds = Math.max(0.001, (now - startedMs) / 1000);
      const total = Math.max(1, progress.totalEvents);
      process.stderr.write(
        `\raudit ${progress.tenantId}: chains ${progress.chainEvents}/${total}, members ${progress.memberEvents}/${total} events, ` +
          `${Math.round(Math.min(progress.chainEvents, progress.memberEvents) / seconds)} events/s   `,
      );
    },
    done() {
      if (shown) process.stderr.write('\r\u001b[2K');
    },
  };
}

export const audit: Verb = {
  usage: 'audit [--tenant T] [--json]',
  summary:
    'replay every stream and prove the hash chains and the read models; exit 0 clean, 1 discrepancies, 2 could not run',
  async run(argv, config) {
    const args = parseArgs(argv, ['json']);
    onlyOptions(args, ['tenant', 'json']);
    noPositionals(args);
    const tenantId = option(args, 'tenant');
    const json = flag(args, 'json');
    const runtime = await openRuntime(config);
    const progress = progressReporter();
    try {
      const mismatch = await schemaMismatch(runtime.pool);
      if (mismatch !== null) {
        process.stderr.write(`ledger: audit: ${mismatch}\n`);
        return 2;
      }
      const report = await runAudit(runtime.pool, runtime.store, {
        ...(tenantId === undefined ? {} : { tenantId }),
        databaseUrl: config.databaseUrl,
        onProgress: (p) => progress.update(p),
      });
      progress.done();
      process.stdout.write(json ? `${JSON.stringify(report, null, 2)}\n` : formatAuditSummary(report));
      return report.clean ? 0 : 1;
    } catch (error) {
      progress.done();
      process.stderr.write(
        `ledger: audit could not run: ${error instanceof Error ? error.message : String(error)}\n`,
      );
      return 2;
    } finally {
      await runtime.close();
    }
  },
};
