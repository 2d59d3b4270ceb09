#!/usr/bin/env node
// The installed `ledger` command: runs the TypeScript CLI through tsx, so there is no build step to forget,
// with the V8 settings the ledger is measured with (docs/operations.md). The CLI runs in a child process
// because those settings must be given when a process starts; this one only forwards signals and the exit.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { constants } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { LEDGER_NODE_ARGS } from './node-args.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
// tsx as a loader of this node, not its CLI: the CLI would start yet another process without our flags.
const tsxLoader = pathToFileURL(require.resolve('tsx')).href;
// Flags given to this node (a profiler, say) reach the CLI's node too.
const child = spawn(
  process.execPath,
  [
    ...LEDGER_NODE_ARGS,
    ...process.execArgv,
    '--import',
    tsxLoader,
    join(root, 'src/cli/main.ts'),
    ...process.argv.slice(2),
  ],
  { stdio: 'inherit' },
);
// A container's stop signal goes to this process (PID 1 there): the CLI shuts down gracefully on it.
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP']) {
  process.on(signal, () => child.kill(signal));
}
// The CLI's exit code, or 128 + the signal's number when a signal ended it (as a shell reports it).
child.on('exit', (code, signal) =>
  process.exit(signal === null ? (code ?? 1) : 128 + constants.signals[signal]),
);
