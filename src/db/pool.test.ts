import { describe, expect, it } from 'vitest';
import {
  databaseErrorCause,
  flavourOf,
  isTransientDatabaseError,
  isoToSqlTime,
  loggableError,
  parseDatabaseUrl,
  sessionSettings,
  sqlInt,
  sqlTimeToIso,
} from './pool.ts';

describe('database helpers', () => {
  it('tells an error the same request may not meet again from a bug', () => {
    const driverError = (code: string, message = code) => Object.assign(new Error(message), { code });
    for (const code of ['PROTOCOL_CONNECTION_LOST', 'ECONNREFUSED', 'ECONNRESET', 'ER_SERVER_SHUTDOWN']) {
      expect(isTransientDatabaseError(driverError(code)), code).toBe(true);
    }
    expect(isTransientDatabaseError(driverError('ER_LOCK_WAIT_TIMEOUT'))).toBe(true);
    expect(isTransientDatabaseError(driverError('ENOTFOUND', 'getaddrinfo ENOTFOUND db'))).toBe(true);
    expect(isTransientDatabaseError(new Error('Queue limit reached.'))).toBe(true);
    expect(
      isTransientDatabaseError(new Error("Can't add new command when connection is in closed state")),
    ).toBe(true);
    for (const code of ['ER_PARSE_ERROR', 'ER_DUP_ENTRY', 'ER_NO_SUCH_TABLE', 'ER_BAD_NULL_ERROR']) {
      expect(isTransientDatabaseError(driverError(code)), code).toBe(false);
    }
    expect(isTransientDatabaseError(new TypeError('x is undefined'))).toBe(false);
    expect(isTransientDatabaseError('ECONNRESET')).toBe(false);
    expect(isTransientDatabaseError(null)).toBe(false);
    expect(databaseErrorCause(driverError('ECONNRESET', 'read ECONNRESET'))).toBe('ECONNRESET');
    expect(databaseErrorCause(new Error('no code here'))).toBe('no code here');
  });

  it('tells TiDB, MariaDB and MySQL apart by VERSION()', () => {
    expect(flavourOf('8.0.11-TiDB-v7.5.1')).toBe('tidb');
    expect(flavourOf('10.11.19-MariaDB-0+deb12u1')).toBe('mariadb');
    expect(flavourOf('8.0.36')).toBe('mysql');
  });

  it('asks TiDB for pessimistic transactions, every server for READ COMMITTED, and MariaDB to end idle transactions', () => {
    expect(sessionSettings('tidb')).toContain("SET SESSION tidb_txn_mode = 'pessimistic'");
    for (const flavour of ['tidb', 'mariadb', 'mysql'] as const) {
      expect(sessionSettings(flavour)[0]).toBe('SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED');
    }
    expect(sessionSettings('mariadb')).toContain('SET SESSION idle_transaction_timeout = 30');
    expect(sessionSettings('mariadb', 2)).toContain('SET SESSION idle_transaction_timeout = 2');
    for (const flavour of ['tidb', 'mysql'] as const) {
      expect(sessionSettings(flavour).some((s) => s.includes('idle_transaction_timeout'))).toBe(false);
    }
    expect(() => sessionSettings('mariadb', 0)).toThrow(/idle transaction timeout/);
    expect(() => sessionSettings('mariadb', 1.5)).toThrow(/idle transaction timeout/);
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
