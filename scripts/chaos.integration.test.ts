import { describe, expect, it } from 'vitest';
import { formatReport, runChaos } from './chaos/harness.ts';

/**
 * `npm run chaos` in CI: the short mode (about a minute of load and faults against the run's own MariaDB,
 * never the shared server). Nothing acknowledged may be lost or applied twice, every balance must equal the
 * oracle's, and `ledger audit` must exit 0. The report is printed either way, so a failure says what and where.
 */
describe('chaos (short mode)', () => {
  it('loses nothing and doubles nothing under kills, a database restart and cut connections', async () => {
    const lines: string[] = [];
    const report = await runChaos({ mode: 'short', log: (line) => lines.push(line) });
    const printed = formatReport(report);
    process.stdout.write(printed);
    expect(report.commands.acknowledged, printed).toBeGreaterThan(0);
    expect(report.discrepancies, `${lines.join('\n')}\n${printed}`).toEqual([]);
    expect(report.failedChecks, `${lines.join('\n')}\n${printed}`).toEqual([]);
    expect(report.audit.exitCode).toBe(0);
  }, 240_000);
});
