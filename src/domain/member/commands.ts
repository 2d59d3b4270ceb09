/**
 * What callers ask of a member stream. Optional fields also accept `undefined` (what zod produces for
 * an absent field), unlike events, where an absent field is absent. Ids (including the lotId of any lot a command might create) are
 * chosen by the caller, so the decider stays deterministic and a retry names the same ids.
 */
import type { Command } from '../event.ts';
import type { Channel } from './events.ts';

export type RegisterMember = Command<
  'RegisterMember',
  { memberId: string; phone: string; name?: string | undefined; storeId: string; channel: Channel }
>;

/** At least one field; unchanged fields are ignored, and nothing changed means no event. */
export type UpdateProfile = Command<
  'UpdateProfile',
  { name?: string | undefined; phone?: string | undefined }
>;

export type PurchaseLine = Readonly<{
  sku: string;
  category: string;
  quantity: number;
  /** What the line cost in total (not per unit). */
  amountFen: number;
  /** Part of amountFen paid by insurance; it earns nothing. At most amountFen. */
  insuranceFen?: number | undefined;
}>;

export type RecordPurchase = Command<
  'RecordPurchase',
  {
    orderId: string;
    storeId: string;
    occurredAt?: string | undefined;
    lines: readonly PurchaseLine[];
    lotId: string;
  }
>;

/** ttlSeconds defaults to HOLD_TTL_SECONDS_DEFAULT. */
export type PlaceHold = Command<
  'PlaceHold',
  { holdId: string; orderId: string; storeId: string; points: number; ttlSeconds?: number | undefined }
>;

/** points defaults to all held points. */
export type CaptureHold = Command<'CaptureHold', { holdId: string; points?: number | undefined }>;

export type ReleaseHold = Command<'ReleaseHold', { holdId: string }>;

export type RedeemPoints = Command<'RedeemPoints', { orderId: string; storeId: string; points: number }>;

export type RefundPurchase = Command<
  'RefundPurchase',
  { refundId: string; orderId: string; storeId: string; amountFen: number; lotId: string }
>;

export type AdjustPoints = Command<
  'AdjustPoints',
  {
    adjustmentId: string;
    points: number;
    reason: string;
    ticket?: string | undefined;
    actor: string;
    lotId: string;
  }
>;

/** asOf may be any ISO instant not after ctx.now. */
export type ExpireLots = Command<'ExpireLots', { asOf: string }>;

export type MemberCommand =
  | RegisterMember
  | UpdateProfile
  | RecordPurchase
  | PlaceHold
  | CaptureHold
  | ReleaseHold
  | RedeemPoints
  | RefundPurchase
  | AdjustPoints
  | ExpireLots;

export type MemberCommandType = MemberCommand['type'];
