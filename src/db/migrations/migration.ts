/**
 * A schema migration: statements that each run on TiDB >= 7.5, MySQL 8.0 and MariaDB 10.11, and are
 * idempotent. A statement that cannot say so itself (MySQL 8 has no ADD INDEX IF NOT EXISTS) is guarded:
 * it is skipped when its `skipWhen` query returns a row, i.e. when its change is already in place.
 */
export interface Migration {
  version: number;
  name: string;
  statements: readonly MigrationStatement[];
}

export type MigrationStatement = string | GuardedStatement;

export interface GuardedStatement {
  sql: string;
  /** A query that returns a row when `sql` has already been applied. */
  skipWhen: string;
}

/** The text a statement is checksummed by: a guard is part of what was applied. */
export function statementText(statement: MigrationStatement): string {
  return typeof statement === 'string'
    ? statement
    : `${statement.sql}\n-- skipped when: ${statement.skipWhen}`;
}

/** A guard for index changes: a row when `table` in the current database has (or lacks) index `index`. */
export function indexExists(table: string, index: string): string {
  return `SELECT 1 FROM information_schema.statistics
    WHERE table_schema = DATABASE() AND table_name = '${table}' AND index_name = '${index}' LIMIT 1`;
}

export function indexMissing(table: string, index: string): string {
  return `SELECT 1 FROM DUAL WHERE NOT EXISTS (${indexExists(table, index)})`;
}
