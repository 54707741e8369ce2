/**
 * @keyfold/conformance: the shared test suite every Keyfold `KeyProvider` passes. Framework-agnostic: checks throw
 * `ConformanceError`; `runProviderConformance` registers them with the caller's `describe` / `it`.
 * @packageDocumentation
 */
export { runProviderConformance, runProviderCheck, applicableChecks } from './run.js';
export type { DescribeFunction, ItFunction, ProviderConformanceOptions, TestFunction } from './run.js';
export { providerChecks } from './provider-checks.js';
export type { ProviderCheck, ProviderCheckName } from './provider-checks.js';
export type { ConformanceTarget, FailingBackend } from './target.js';
export {
  ConformanceError,
  ensureNoKeyMaterial,
  expectCallerError,
  expectKeyfoldError,
  isKeyfoldErrorLike,
} from './assert.js';
export type { KeyfoldErrorLike } from './assert.js';
export { inPool, keyfoldRejectionOf, rejectionOf, sealAndOpenMany } from './test-helpers.js';
export { keyStoreChecks, runKeyStoreCheck, runKeyStoreConformance, type ConformanceAuditEntry, type ConformanceDataKey, type ConformanceKeyStore, type KeyStoreCheck, type KeyStoreCheckName, type KeyStoreConformanceOptions, type KeyStoreConformanceTarget } from './keystore-checks.js';
