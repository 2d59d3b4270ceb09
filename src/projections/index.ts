/** The projections' public surface: the projector the CLI runs, status for /metrics and `ledger status`, rebuild, tags and reads. */
export {
  Projector,
  PROJECTION_IDLE_SLEEP_MS_DEFAULT,
  type ProjectorOptions,
  type RunOnceResult,
} from './runtime.ts';
export { PROJECTION_BATCH_EVENTS_MAX } from './engine.ts';
export { CheckpointMovedError, LeaseLostError, type CommittedBatch, type ProjectionHooks } from './batch.ts';
export {
  projectionStatus,
  updateProjectionLagGauge,
  type PartitionStatus,
  type ProjectionStatus,
} from './status.ts';
export {
  rebuildProjections,
  RebuildInProgressError,
  type RebuildOptions,
  type RebuildResult,
} from './rebuild.ts';
export {
  getTagRules,
  memberTags,
  membersWithTag,
  setTagRules,
  type TagRule,
  type TagRuleSet,
} from './tags.ts';
export { readStoreTotals, readTenantTotals, type StoreTotals } from './read.ts';
export { READ_MODEL_TABLES } from './tables.ts';
