export * from './commands.ts';
export * from './context.ts';
export * from './decider.ts';
export * from './events.ts';
export { maskPhone, normalizePhone } from './phone.ts';
export * from './movements.ts';
export * from './postings.ts';
export * from './schemas.ts';
export type {
  ActiveHold,
  MemberState,
  OpenLot,
  OrderPurchase,
  OrderSummary,
  RecentAdjustment,
  RegisteredMember,
  UnregisteredMember,
} from './state.ts';
export { assertMemberInvariants, availablePoints, heldPoints } from './state.ts';
export * from './view.ts';
