/**
 * IFRS 15 breakage: the share of outstanding points the tenant expects never to be redeemed, estimated
 * from its own history (docs/finance.md, "Breakage"). Integer arithmetic only.
 *
 * Rate = points that expired / points put into lots whose expiry date has passed by the end of the period
 * (matured lots: every such point has had its full chance to be redeemed, so the ratio is not diluted by
 * recent earnings that simply have not had time to expire). Expected breakage = floor(outstanding x rate).
 */
import { mulDivFloor, pointsToFen } from '../domain/points.ts';

export const BREAKAGE_METHOD =
  'historical expiry ratio over matured lots: rate = points expired (LotsExpired recorded before the end of the period) / ' +
  'points credited to lots whose expiry instant is at or before the end of the period (credits net of debt repaid); ' +
  'expectedBreakagePoints = floor(outstandingPoints x rate), outstandingPoints = sum of positive closing balances; ' +
  'no matured lot yet: rate 0 (no breakage recognised). Integer arithmetic, rounded down.';

export interface BreakageEstimate {
  method: string;
  maturedCreditedPoints: number;
  expiredPoints: number;
  /** The rate in parts per million, rounded down, for display; the estimate uses the exact ratio. */
  ratePpm: number;
  outstandingPoints: number;
  expectedBreakagePoints: number;
  expectedBreakageFen: number;
  liabilityNetOfBreakageFen: number;
}

export function estimateBreakage(input: {
  maturedCreditedPoints: number;
  expiredPoints: number;
  outstandingPoints: number;
  pointValueFen: number;
  liabilityFen: number;
}): BreakageEstimate {
  const { maturedCreditedPoints, expiredPoints, outstandingPoints, pointValueFen } = input;
  // Expired points can only come from matured lots, so the ratio is at most 1 (min() guards bad data).
  const expired = Math.min(expiredPoints, maturedCreditedPoints);
  const ratePpm = maturedCreditedPoints === 0 ? 0 : mulDivFloor(expired, 1_000_000, maturedCreditedPoints);
  const expectedBreakagePoints =
    maturedCreditedPoints === 0
      ? 0
      : mulDivFloor(Math.max(0, outstandingPoints), expired, maturedCreditedPoints);
  const expectedBreakageFen = pointsToFen(expectedBreakagePoints, pointValueFen);
  return {
    method: BREAKAGE_METHOD,
    maturedCreditedPoints,
    expiredPoints,
    ratePpm,
    outstandingPoints,
    expectedBreakagePoints,
    expectedBreakageFen,
    liabilityNetOfBreakageFen: input.liabilityFen - expectedBreakageFen,
  };
}
