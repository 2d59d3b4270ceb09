// Node flags for every ledger process (the CLI, the server, the projectors, the audit's child processes).
// A young generation of 64 MiB semispaces instead of V8's 16: the API allocates per request, and with the
// default the scavenger ran often enough to take a tenth of the API process (BENCHMARKS.md, bench:api:
// about 20% fewer CPU-seconds per command, 64 better than 32 or 128). Costs up to ~150 MiB more heap.
export const LEDGER_NODE_ARGS = ['--max-semi-space-size=64'];
