import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.ts';

describe('configuration from the environment', () => {
  it('takes the defaults of CONTRACT.md when nothing is set', () => {
    const config = loadConfig({});
    expect(config.databaseUrl).toBe('mysql://root@127.0.0.1:3306/points_ledger');
    expect(config.eventStore).toBe('sql');
    expect(config.port).toBe(3000);
    expect(config.commandDeadlineMs).toBe(2_000);
    expect(loadConfig({ LEDGER_COMMAND_DEADLINE_MS: '750' }).commandDeadlineMs).toBe(750);
  });

  it('refuses a bad value with a message naming the variable (the CLI exits 2 on it: cli.integration.test.ts)', () => {
    const cases: [Record<string, string>, string][] = [
      [{ LEDGER_DATABASE_URL: 'postgres://root@127.0.0.1/points' }, 'LEDGER_DATABASE_URL'],
      [{ LEDGER_DATABASE_URL: 'mysql://root@127.0.0.1:3306/bad-name' }, 'LEDGER_DATABASE_URL'],
      [{ LEDGER_DATABASE_URL: 'mysql://root@127.0.0.1:99999/points' }, 'LEDGER_DATABASE_URL'],
      [{ LEDGER_EVENT_STORE: 'mongodb://localhost' }, 'LEDGER_EVENT_STORE'],
      [{ PORT: '70000' }, 'PORT'],
      [{ PORT: '0' }, 'PORT'],
      [{ PORT: '1e3' }, 'PORT'],
      [{ PORT: '0x50' }, 'PORT'],
      [{ PORT: ' 80' }, 'PORT'],
      [{ LEDGER_CLOCK_START: 'yesterday' }, 'LEDGER_CLOCK_START'],
      [{ LEDGER_CLOCK_START: '2026-01-01' }, 'LEDGER_CLOCK_START'],
      [{ NODE_ENV: 'production', LEDGER_CLOCK_START: '2026-01-01T00:00:00Z' }, 'LEDGER_CLOCK_START'],
      [{ LEDGER_COMMAND_DEADLINE_MS: '99' }, 'LEDGER_COMMAND_DEADLINE_MS'],
      [{ LEDGER_COMMAND_DEADLINE_MS: '60001' }, 'LEDGER_COMMAND_DEADLINE_MS'],
      [{ LEDGER_COMMAND_DEADLINE_MS: 'soon' }, 'LEDGER_COMMAND_DEADLINE_MS'],
      [{ LEDGER_COMMAND_DEADLINE_MS: '1.5' }, 'LEDGER_COMMAND_DEADLINE_MS'],
    ];
    for (const [env, variable] of cases) {
      expect(() => loadConfig(env), JSON.stringify(env)).toThrow(ConfigError);
      expect(() => loadConfig(env), JSON.stringify(env)).toThrow(variable);
    }
    expect(loadConfig({ PORT: '8080' }).port).toBe(8080);
    expect(
      loadConfig({ LEDGER_DATABASE_URL: 'mysql://app:s%40cret@db.internal:4000/ledger' }).databaseUrl,
    ).toBe('mysql://app:s%40cret@db.internal:4000/ledger');
  });
});
