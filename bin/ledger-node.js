// How every ledger process is started: node with the flags below, TypeScript through tsx's loader (no
// build step), signals handed on, the exit code passed back. Used by bin/ledger.js (the CLI) and
// scripts/run.js (benchmarks and tools, so they measure the ledger as it runs).
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { constants } from 'node:os';
import { pathToFileURL } from 'node:url';

/**
 * Node flags for every ledger process (the CLI, the server, the projectors, the audit's unit processes).
 * A young generation of 64 MiB semispaces instead of V8's 16: the API allocates per request, and with the
 * default the scavenger took about a tenth of the API process. In alternated bench:api runs the API used
 * 365-390 us of CPU per command with it and 425-451 us without (BENCHMARKS.md); 32 and 128 did worse
 * than 64. Costs up to ~150 MiB more heap per process.
 */
export const LEDGER_NODE_ARGS = ['--max-semi-space-size=64'];

/**
 * The arguments that start a node as a ledger process: LEDGER_NODE_ARGS, then tsx as a loader of that
 * node (not tsx's CLI, which would start yet another process). Put the entry point and its arguments after.
 */
export function ledgerNodeArgs() {
  const require = createRequire(import.meta.url);
  return [...LEDGER_NODE_ARGS, '--import', pathToFileURL(require.resolve('tsx')).href];
}

/**
 * Runs a TypeScript entry point in a child node with LEDGER_NODE_ARGS (they must be given when a process
 * starts) and exits with its code, or 128 + the signal's number when a signal ended it. SIGTERM, SIGINT and
 * SIGHUP sent to this process reach the child: in a container this process is PID 1 and gets the stop
 * signal. Flags given to this node (a profiler, say) reach the child too.
 */
export function runTypeScript(entry, args) {
  const child = spawn(process.execPath, [...ledgerNodeArgs(), ...process.execArgv, entry, ...args], {
    stdio: 'inherit',
  });
  child.on('error', (error) => {
    process.stderr.write(`ledger: could not start ${process.execPath}: ${error.message}\n`);
    process.exit(2);
  });
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP']) {
    process.on(signal, () => child.kill(signal));
  }
  child.on('exit', (code, signal) =>
    process.exit(signal === null ? (code ?? 1) : 128 + constants.signals[signal]),
  );
}
