// `node scripts/run.js scripts/bench-api.ts [args]`: a script in a node started as the ledger's own
// processes are (bin/ledger-node.js), so a benchmark that runs ledger code in-process measures it as it runs.
import { runTypeScript } from '../bin/ledger-node.js';

const [entry, ...args] = process.argv.slice(2);
if (entry === undefined) {
  process.stderr.write('usage: node scripts/run.js <script.ts> [args]\n');
  process.exit(2);
}
runTypeScript(entry, args);
