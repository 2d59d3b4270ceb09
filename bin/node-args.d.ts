export declare const LEDGER_NODE_ARGS: readonly string[];
