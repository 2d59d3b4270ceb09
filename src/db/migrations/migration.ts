/** A schema migration: statements that each run on TiDB >= 7.5, MySQL 8.0 and MariaDB 10.11, and are idempotent. */
export interface Migration {
  version: number;
  name: string;
  statements: readonly string[];
}
