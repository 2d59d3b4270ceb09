/**
 * What a till sees of a member's points. `held` counts only holds still active at `now`, so an
 * expired hold's points are available again without waiting for any event.
 */
import { addPoints } from '../points.ts';
import type { IsoInstant } from '../time.ts';
import type { RegisteredMember } from './state.ts';
import { heldPoints } from './state.ts';

export type ExpiringPoints = Readonly<{ points: number; expiresAt: IsoInstant }>;

export type MemberPointsView = Readonly<{
  balance: number;
  held: number;
  available: number;
  tier: string;
  /** Open lots' remaining points grouped by expiry, soonest first. */
  expiring: readonly ExpiringPoints[];
}>;

export function memberView(state: RegisteredMember, now: IsoInstant): MemberPointsView {
  const held = heldPoints(state, now);
  const expiring: { points: number; expiresAt: IsoInstant }[] = [];
  // Lots are sorted by expiresAt, so equal expiries are adjacent.
  for (const lot of state.lots) {
    const last = expiring[expiring.length - 1];
    if (last !== undefined && last.expiresAt === lot.expiresAt)
      last.points = addPoints(last.points, lot.remaining);
    else expiring.push({ points: lot.remaining, expiresAt: lot.expiresAt });
  }
  return { balance: state.balance, held, available: state.balance - held, tier: state.tier, expiring };
}
