export * from './commands.ts';
export * from './decider.ts';
export * from './events.ts';
export type { CreatedTenant, TenantState, UncreatedTenant } from './state.ts';
