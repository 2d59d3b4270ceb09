import { describe, expect, it } from 'vitest';
import {
  flavourOf,
  isoToSqlTime,
  loggableError,
  parseDatabaseUrl,
  sessionSettings,
  sqlInt,
  sqlTimeToIso,
} from './pool.ts';

describe('database helpers', () => {
  it('tells TiDB, MariaDB and MySQL apart by VERSION()', () => {
    expect(flavourOf('8.0.11-TiDB-v7.5.1')).toBe('tidb');
    expect(flavourOf('10.11.19-MariaDB-0+deb12u1')).toBe('mariadb');
    expect(flavourOf('8.0.36')).toBe('mysql');
  });

  it('asks TiDB for pessimistic transactions, and every server for READ COMMITTED', () => {
    expect(sessionSettings('tidb')).toContain("SET SESSION tidb_txn_mode = 'pessimistic'");
    for (const flavour of ['tidb', 'mariadb', 'mysql'] as const) {
      expect(sessionSettings(flavour)[0]).toBe('SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED');
    }
    expect(sessionSettings('mariadb')).toHaveLength(1);
  });

  it('parses database URLs and refuses odd database names', () => {
    expect(parseDatabaseUrl('mysql://u:p%40ss@db:4000/ledger')).toEqual({
      host: 'db',
      port: 4000,
      user: 'u',
      password: 'p@ss',
      database: 'ledger',
    });
    expect(() => parseDatabaseUrl('mysql://root@db/led`ger')).toThrow(/letters, digits/);
    expect(() => parseDatabaseUrl('postgres://root@db/x')).toThrow(/mysql:\/\//);
  });

  it('round-trips instants through DATETIME(3) text, and refuses unsafe integers', () => {
    expect(sqlTimeToIso(isoToSqlTime('2026-12-31T16:00:00.123Z'))).toBe('2026-12-31T16:00:00.123Z');
    expect(sqlInt('42')).toBe(42);
    expect(() => sqlInt('9007199254740993')).toThrow(/safe integer/);
  });

  it('logs a driver error without the statement and its values, keeping what tells what went wrong', () => {
    const error = Object.assign(new Error("Table 'x' doesn't exist"), {
      code: 'ER_NO_SUCH_TABLE',
      errno: 1146,
      sqlState: '42S02',
      sql: "SELECT * FROM x WHERE phone = '13912345678'",
    });
    const logged = loggableError(error) as Error & Record<string, unknown>;
    expect(logged).toBeInstanceOf(Error);
    expect(logged.message).toBe("Table 'x' doesn't exist");
    expect(logged.stack).toBe(error.stack);
    expect(logged).toMatchObject({ code: 'ER_NO_SUCH_TABLE', errno: 1146, sqlState: '42S02' });
    expect('sql' in logged).toBe(false);
    expect(JSON.stringify({ ...logged })).not.toMatch(/13912345678/);
    expect(error.sql).toMatch(/13912345678/);
    const plain = new Error('not from the driver');
    expect(loggableError(plain)).toBe(plain);
  });
});
