/**
 * @keyfold/rotation: KEK rotation for a Keyfold key store. `rotateKek` re-wraps data keys (never data) with
 * compare-and-swap, checkpoints and resume, alone or as one of several PostgreSQL workers; `rewrapEnvelopes` does the
 * same for envelopes in your own tables; `reencryptTenant` rotates one tenant's key, moves its envelopes to the new
 * version and destroys the old one; `verifyKek`, `retireKekVersion`, the rotation policy (`isDue`, `runIfDue`)
 * and `migrateProvider` are built on it.
 * @packageDocumentation
 */
export { checkpointName, rotateKek } from './rotate.js';
export type { RotateKekOptions, RotationFailure, RotationProgress, RotationReport } from './rotate.js';
export { RotationNotReadyError, checkReadiness, notReadyReason } from './readiness.js';
export type { ReadinessOptions, ReadinessProbeMethod, ReadinessReport } from './readiness.js';
export { verifyKek } from './verify.js';
export type { VerifyKekOptions, VerifyKekReport } from './verify.js';
export { retireKekVersion } from './retire.js';
export type { RetireKekVersionOptions } from './retire.js';
export { DEFAULT_GRACE_PERIOD_MS, DEFAULT_MAX_AGE_MS, isDue, runIfDue } from './policy.js';
export type { DueStatus, IsDueOptions, RotationPolicy, RunIfDueOptions, RunIfDueResult } from './policy.js';
export { migrateProvider } from './migrate.js';
export type { MigrateProviderOptions, MigrationReport } from './migrate.js';
export { checkEnvelopes, envelopeStanding } from './envelope-check.js';
export type { CheckEnvelopesOptions, CheckEnvelopesReport, EnvelopeStanding } from './envelope-check.js';
export { postgresTableSource, rewrapEnvelopes, sqliteTableSource } from './table-source.js';
export { DEFAULT_SETTLE_MS, reencryptCheckpointName, reencryptTenant } from './tenant-reencrypt.js';
export type { ReencryptTenantOptions, ReencryptTenantReport, TenantSourceReport } from './tenant-reencrypt.js';
export type {
  EnvelopeReplacement,
  EnvelopeRow,
  EnvelopeSource,
  PgQueryable,
  PostgresTableSourceOptions,
  RewrapEnvelopesOptions,
  RewrapEnvelopesReport,
  SqliteDatabaseLike,
  SqliteTableSourceOptions,
} from './table-source.js';
