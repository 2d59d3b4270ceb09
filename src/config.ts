import { z } from 'zod';
import { parseDatabaseUrl } from './db/pool.ts';

/**
 * A command's answer is due within this time (LEDGER_COMMAND_DEADLINE_MS). A till waits a few seconds at
 * most before it retries or gives up; a command waiting on a lock or a stalled database link is answered 503
 * with Retry-After before that, rather than leave the till guessing, and its retry learns what was recorded.
 */
export const COMMAND_DEADLINE_MS_DEFAULT = 2_000;
export const COMMAND_DEADLINE_MS_MIN = 100;
export const COMMAND_DEADLINE_MS_MAX = 60_000;

/**
 * The process configuration, read from the environment once at start-up (CONTRACT.md, "Configuration").
 * A bad value stops the process with a message naming the variable and what it expected.
 */
const configSchema = z.object({
  LEDGER_DATABASE_URL: z
    .string()
    .regex(/^mysql:\/\//, 'a mysql:// URL, e.g. mysql://root@127.0.0.1:3306/points_ledger')
    .superRefine((url, context) => {
      // Taken apart here, as the pool will take it, so a bad port or database name is refused at start-up.
      try {
        parseDatabaseUrl(url);
      } catch (error) {
        const reason =
          error instanceof Error ? error.message.replace(/^LEDGER_DATABASE_URL /, '') : String(error);
        context.addIssue({ code: 'custom', message: `not a usable mysql:// URL (${reason})` });
      }
    })
    .default('mysql://root@127.0.0.1:3306/points_ledger'),
  LEDGER_EVENT_STORE: z
    .string()
    .regex(
      /^(sql|(esdb|kurrentdb|esdb\+discover|kurrentdb\+discover):\/\/.+)$/,
      "'sql' or an esdb:// / kurrentdb:// connection string",
    )
    .default('sql'),
  PORT: z
    .string()
    .regex(/^[0-9]{1,5}$/, 'a port number, 1-65535')
    .transform(Number)
    .pipe(z.number().int().min(1).max(65_535))
    .default(3000),
  HOST: z.string().min(1).default('0.0.0.0'),
  LEDGER_CLOCK_START: z.iso.datetime({ offset: true }).optional(),
  NODE_ENV: z.string().optional(),
  LEDGER_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  LEDGER_DATABASE_WAIT_SECONDS: z.coerce.number().int().min(0).max(600).default(0),
  LEDGER_RATE_LIMIT_PER_MINUTE: z.coerce.number().int().min(1).max(10_000_000).default(6_000),
  LEDGER_COMMAND_DEADLINE_MS: z.coerce
    .number()
    .int()
    .min(COMMAND_DEADLINE_MS_MIN)
    .max(COMMAND_DEADLINE_MS_MAX)
    .default(COMMAND_DEADLINE_MS_DEFAULT),
});

export type Config = {
  databaseUrl: string;
  eventStore: string;
  port: number;
  host: string;
  clockStart: string | undefined;
  production: boolean;
  logLevel: z.infer<typeof configSchema>['LEDGER_LOG_LEVEL'];
  /** How long start/serve/project wait for the database to accept connections (containers start in any order). */
  databaseWaitSeconds: number;
  /** Requests per API key per minute before 429. */
  rateLimitPerMinute: number;
  /** How long a POS/support command may take before it is answered 503 (it runs on; a retry gets its outcome). */
  commandDeadlineMs: number;
};

export class ConfigError extends Error {}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = configSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => `  ${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  const value = parsed.data;
  const production = value.NODE_ENV === 'production';
  if (production && value.LEDGER_CLOCK_START !== undefined) {
    throw new ConfigError('invalid configuration:\n  LEDGER_CLOCK_START: refused when NODE_ENV=production');
  }
  return {
    databaseUrl: value.LEDGER_DATABASE_URL,
    eventStore: value.LEDGER_EVENT_STORE,
    port: value.PORT,
    host: value.HOST,
    clockStart: value.LEDGER_CLOCK_START,
    production,
    logLevel: value.LEDGER_LOG_LEVEL,
    databaseWaitSeconds: value.LEDGER_DATABASE_WAIT_SECONDS,
    rateLimitPerMinute: value.LEDGER_RATE_LIMIT_PER_MINUTE,
    commandDeadlineMs: value.LEDGER_COMMAND_DEADLINE_MS,
  };
}
