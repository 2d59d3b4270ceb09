import type { DomainError } from '../domain/errors.ts';

/** Errors of command handling itself (not of the programme's rules), with their HTTP meaning. */
export const APPLICATION_ERROR_STATUS = {
  'idempotency-key-reused': 409,
  'concurrency-conflict': 409,
  'not-found': 404,
  forbidden: 403,
} as const;

export type ApplicationErrorCode = keyof typeof APPLICATION_ERROR_STATUS;

export interface ApplicationError {
  code: ApplicationErrorCode;
  status: (typeof APPLICATION_ERROR_STATUS)[ApplicationErrorCode];
  detail: string;
  extra?: Readonly<Record<string, unknown>>;
}

export function applicationError(code: ApplicationErrorCode, detail: string): ApplicationError {
  return { code, status: APPLICATION_ERROR_STATUS[code], detail };
}

/** Why a command changed nothing. */
export type Rejection = DomainError | ApplicationError;
