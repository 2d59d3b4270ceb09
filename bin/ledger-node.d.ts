export declare const LEDGER_NODE_ARGS: readonly string[];
export declare function ledgerNodeArgs(): string[];
export declare function runTypeScript(entry: string, args: readonly string[]): void;
