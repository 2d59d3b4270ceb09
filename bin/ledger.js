#!/usr/bin/env node
// The installed `ledger` command: the TypeScript CLI in a node started as every ledger process is
// (bin/ledger-node.js: its flags, tsx, signals handed on, the exit code passed back).
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runTypeScript } from './ledger-node.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
runTypeScript(join(root, 'src/cli/main.ts'), process.argv.slice(2));
