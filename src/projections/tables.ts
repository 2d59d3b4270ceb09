/**
 * The read-model tables a projector writes, by role. A rebuild writes the same set under a suffix and
 * swaps it in with one RENAME TABLE, so the set below is exactly what moves together (checkpoints included:
 * progress always travels with the rows it describes).
 */
export const READ_MODEL_TABLES = [
  'member_accounts',
  'member_lots',
  'member_holds',
  'ledger_entries',
  'store_daily_totals',
  'tenant_totals',
  'member_category_purchases',
  'member_tags',
  'projection_checkpoints',
] as const;

export type ReadModelTable = (typeof READ_MODEL_TABLES)[number];

export type TableNames = Readonly<Record<ReadModelTable, string>>;

/** Suffix of the tables a rebuild fills while the live ones keep serving. */
export const REBUILD_SUFFIX = '_rebuild';
/** Suffix the live tables take during the swap, dropped right after. */
export const RETIRED_SUFFIX = '_old';

export function tableNames(suffix = ''): TableNames {
  if (!/^[a-z_]*$/.test(suffix)) throw new Error(`bad table suffix: ${suffix}`);
  return Object.fromEntries(READ_MODEL_TABLES.map((table) => [table, `${table}${suffix}`])) as TableNames;
}

export const LIVE_TABLES: TableNames = tableNames();

/**
 * ledger_entries' key and value columns, in the order the projector writes them (batch.ts). The audit
 * compares every value column against its replay (audit/member-pass.ts), so a column added here and not
 * to the audit's expectation shows up as a discrepancy, not as an unchecked field.
 */
export const LEDGER_ENTRY_KEY_COLUMNS = ['tenant_id', 'member_id', 'stream_version', 'movement_no'] as const;
export const LEDGER_ENTRY_VALUE_COLUMNS = [
  'entry_id',
  'partition_no',
  'position',
  'event_type',
  'at',
  'kind',
  'points',
  'balance_after',
  'order_id',
  'store_id',
  'reason',
] as const;
