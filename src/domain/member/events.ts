/**
 * Everything that can happen to a member, as facts. Every event's data carries `at`, the ledger's
 * recording time (canonical ISO UTC); finance periods and expiry follow `at`, never a POS clock.
 * Events that move points carry `balanceAfter`, so a ledger page needs no fold, and evolve asserts
 * the balance it recomputes equals it.
 */
import type { Event } from '../event.ts';
import type { IsoInstant } from '../time.ts';

export const CHANNELS = ['store', 'wechat', 'app', 'o2o', 'b2c'] as const;
export type Channel = (typeof CHANNELS)[number];

/** A lot created by a credit. `points` is the credited amount; the part that repaid debt is not in the lot. */
export type LotCredit = Readonly<{ lotId: string; points: number; expiresAt: IsoInstant }>;

/** Points taken from one lot by a debit, in consumption order (soonest-expiring first, then lotId). */
export type LotDebit = Readonly<{ lotId: string; points: number }>;

export type MemberRegistered = Event<
  'MemberRegistered',
  {
    memberId: string;
    /** Normalised (normalizePhone), unmasked; the view masks it. */
    phone: string;
    name?: string;
    storeId: string;
    channel: Channel;
    /** The programme's first tier at registration, so evolve needs no programme. */
    tier: string;
    at: IsoInstant;
  }
>;

export type MemberProfileUpdated = Event<
  'MemberProfileUpdated',
  { name?: string; phone?: string; at: IsoInstant }
>;

export type PurchaseRecorded = Event<
  'PurchaseRecorded',
  {
    orderId: string;
    storeId: string;
    /** The POS's own time of sale, normalised to UTC; informational only. */
    occurredAt?: IsoInstant;
    totalFen: number;
    eligibleFen: number;
    /** Distinct, sorted categories of all lines (excluded ones too). */
    categories: readonly string[];
    /** The tier held before the purchase, whose multiplier applied. */
    tier: string;
    multiplierPermille: number;
    pointsPerYuan: number;
    programmeVersion: number;
    /** The refund window in force at the purchase; it governs refunds of this order. */
    refundWindowDays: number;
    points: number;
    /** Null iff points is 0. */
    lot: LotCredit | null;
    debtRepaid: number;
    balanceAfter: number;
    at: IsoInstant;
  }
>;

export type TierChanged = Event<
  'TierChanged',
  { from: string; to: string; spendFen: number; at: IsoInstant }
>;

export type PointsHeld = Event<
  'PointsHeld',
  { holdId: string; orderId: string; storeId: string; points: number; expiresAt: IsoInstant; at: IsoInstant }
>;

export type HoldCaptured = Event<
  'HoldCaptured',
  {
    holdId: string;
    orderId: string;
    storeId: string;
    points: number;
    /** Held points not captured, available again. */
    releasedPoints: number;
    consumed: readonly LotDebit[];
    balanceAfter: number;
    at: IsoInstant;
  }
>;

export type HoldReleaseReason = 'released' | 'expired';

export type HoldReleased = Event<
  'HoldReleased',
  { holdId: string; points: number; reason: HoldReleaseReason; at: IsoInstant }
>;

export type PointsRedeemed = Event<
  'PointsRedeemed',
  {
    orderId: string;
    storeId: string;
    points: number;
    consumed: readonly LotDebit[];
    balanceAfter: number;
    at: IsoInstant;
  }
>;

export type PurchaseRefunded = Event<
  'PurchaseRefunded',
  {
    refundId: string;
    orderId: string;
    /** The refunding store (where finance counts the refund). */
    storeId: string;
    amountFen: number;
    /** Cumulative refunded fen of the order including this refund (F). */
    refundedFenTotal: number;
    /** Points actually taken from the member by this refund. */
    pointsReversed: number;
    reversedConsumed: readonly LotDebit[];
    /** Part of pointsReversed not covered by lots (balance went that far below the lots). */
    debtIncurred: number;
    /**
     * Reversal due under the formula but not taken because the programme's clawback is 'cap-at-zero'
     * and neither lots nor this refund's restore could cover it. Always 0 with clawback 'debt'.
     */
    waivedPoints: number;
    pointsRestored: number;
    /** Null iff pointsRestored is 0. Expires at the latest expiry of the lots the redemption used. */
    restoredLot: LotCredit | null;
    debtRepaid: number;
    balanceAfter: number;
    at: IsoInstant;
  }
>;

export type PointsAdjusted = Event<
  'PointsAdjusted',
  {
    adjustmentId: string;
    /** Signed, non-zero: credit > 0, debit < 0. */
    points: number;
    reason: string;
    ticket?: string;
    actor: string;
    /** Lots a debit consumed (empty for a credit). */
    consumed: readonly LotDebit[];
    /** The lot a credit created (null for a debit). */
    lot: LotCredit | null;
    debtRepaid: number;
    balanceAfter: number;
    at: IsoInstant;
  }
>;

export type LotsExpired = Event<
  'LotsExpired',
  { asOf: IsoInstant; lots: readonly LotDebit[]; points: number; balanceAfter: number; at: IsoInstant }
>;

export type MemberEvent =
  | MemberRegistered
  | MemberProfileUpdated
  | PurchaseRecorded
  | TierChanged
  | PointsHeld
  | HoldCaptured
  | HoldReleased
  | PointsRedeemed
  | PurchaseRefunded
  | PointsAdjusted
  | LotsExpired;

export type MemberEventType = MemberEvent['type'];

export const MEMBER_EVENT_TYPES: readonly MemberEventType[] = [
  'MemberRegistered',
  'MemberProfileUpdated',
  'PurchaseRecorded',
  'TierChanged',
  'PointsHeld',
  'HoldCaptured',
  'HoldReleased',
  'PointsRedeemed',
  'PurchaseRefunded',
  'PointsAdjusted',
  'LotsExpired',
];
