/**
 * Expected operating errors are values, not exceptions: the decider returns them and the API maps
 * them to problem+json in one place. Each code carries its HTTP status here so that mapping is a
 * lookup, not a second list to keep in step.
 */

export const DOMAIN_ERROR_STATUS = {
  'validation-failed': 400,
  'order-not-found': 404,
  'member-not-found': 404,
  'tenant-not-found': 404,
  'hold-not-active': 409,
  'order-already-recorded': 409,
  'member-exists': 409,
  'hold-already-exists': 409,
  'refund-already-recorded': 409,
  'adjustment-already-recorded': 409,
  'tenant-exists': 409,
  'insufficient-points': 422,
  'refund-exceeds-order': 422,
  'too-many-holds': 422,
} as const;

export type DomainErrorCode = keyof typeof DOMAIN_ERROR_STATUS;

/** One offending field: `path` is dot-separated from the command's data (`lines.0.insuranceFen`). */
export type ValidationIssue = Readonly<{ path: string; message: string }>;

/** Codes whose `extra` has a fixed shape the API relies on. */
type DomainErrorExtra = {
  'member-exists': Readonly<{ memberId: string }>;
  'validation-failed': Readonly<{ errors: readonly ValidationIssue[] }>;
};

export type DomainError = {
  [C in DomainErrorCode]: Readonly<
    { code: C; status: (typeof DOMAIN_ERROR_STATUS)[C]; detail: string } & (C extends keyof DomainErrorExtra
      ? { extra: DomainErrorExtra[C] }
      : { extra?: Readonly<Record<string, string | number>> })
  >;
}[DomainErrorCode];

export type DomainErrorOf<C extends DomainErrorCode> = Extract<DomainError, { code: C }>;

type PlainCode = Exclude<DomainErrorCode, keyof DomainErrorExtra>;

export function domainError<C extends PlainCode>(
  code: C,
  detail: string,
  extra?: Readonly<Record<string, string | number>>,
): DomainErrorOf<C> {
  const status = DOMAIN_ERROR_STATUS[code];
  return (
    extra === undefined ? { code, status, detail } : { code, status, detail, extra }
  ) as DomainErrorOf<C>;
}

export function memberExists(memberId: string): DomainErrorOf<'member-exists'> {
  return {
    code: 'member-exists',
    status: DOMAIN_ERROR_STATUS['member-exists'],
    detail: `member ${memberId} is already registered`,
    extra: { memberId },
  };
}

export function validationFailed(errors: readonly ValidationIssue[]): DomainErrorOf<'validation-failed'> {
  const first = errors[0];
  return {
    code: 'validation-failed',
    status: DOMAIN_ERROR_STATUS['validation-failed'],
    detail: first === undefined ? 'invalid command' : `${first.path || '(root)'}: ${first.message}`,
    extra: { errors },
  };
}

/** Shorthand for one offending field. */
export function invalidField(path: string, message: string): DomainErrorOf<'validation-failed'> {
  return validationFailed([{ path, message }]);
}
