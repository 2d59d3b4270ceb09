/** Roles (CONTRACT.md, "Tenancy, keys and roles"). What each may do is declared on each route. */
export const ROLES = ['pos', 'support', 'auditor', 'finance', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export function isRole(value: string): value is Role {
  return (ROLES as readonly string[]).includes(value);
}

/** Who is calling: resolved from the API key on every request. */
export interface Principal {
  tenantId: string;
  keyId: string;
  role: Role;
  /** Stores a pos key may act for; empty for other roles (they are not store-bound). */
  stores: readonly string[];
}
