/**
 * `migrateProvider`: moves an installation to another KEK provider (file -> KMS -> HSM). Every data key is
 * re-wrapped from the old provider to the new one with the rotation engine; the install lock moves, atomically and
 * audited, only when no key is left under the old provider.
 * @module
 */
import { PolicyError, assertKeyProvider, type KeyProvider } from '@keyfold/envelope-core';
import { kekName, type InstallLock } from '@keyfold/keystore';
import { rotateKek, type RotateKekOptions, type RotationReport } from './rotate.js';

/**
 * Options of {@link migrateProvider}: those of {@link rotateKek}, with `from` the installation's current provider.
 * @example
 * ```ts
 * const options: MigrateProviderOptions = { store, from: fileProvider, to: kmsProvider, batchSize: 200 };
 * ```
 */
export interface MigrateProviderOptions extends Omit<RotateKekOptions, 'from' | 'allowProviderChange'> {
  /** The provider the store's install lock names (it unwraps the keys as they are now). */
  from: KeyProvider;
}

/**
 * What {@link migrateProvider} did: the rotation report, and whether the install lock moved.
 * @example
 * ```ts
 * const { lockChanged, lock, rewrapped } = await migrateProvider({ store, from, to });
 * ```
 */
export interface MigrationReport extends RotationReport {
  readonly lockChanged: boolean;
  readonly lock: InstallLock | undefined;
}

/**
 * Re-wraps every key from `from` to `to`, then moves the install lock to `to` in one audited transaction
 * (`install.migrate`) that first checks no live key is still wrapped under `from` and re-wraps the audit key under
 * `to`. When some keys failed (or the
 * run was aborted, or is a dry run) the lock stays and the report says so; run it again after fixing the cause.
 * Audited `install.migrate.start` at the start.
 * @throws PolicyError `PROVIDER_MISMATCH` when `from` is not the install lock's provider; the errors of
 *   {@link rotateKek}.
 * @example
 * ```ts
 * import { migrateProvider } from '@keyfold/rotation';
 *
 * const report = await migrateProvider({ store, from: await createFileProvider({ dir }), to: kmsProvider });
 * if (!report.lockChanged) console.error('migration incomplete', report.failed);
 * ```
 */
export async function migrateProvider(options: MigrateProviderOptions): Promise<MigrationReport> {
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  const { store, from, to } = options;
  if (!store || typeof store.changeInstallLock !== 'function') throw new TypeError('store must be a KeyStore');
  assertKeyProvider(from, 'from');
  assertKeyProvider(to, 'to');
  const actor = options.actor ?? 'rotation';
  const lock = await store.getInstallLock();
  if (lock && (lock.kind !== from.kind || lock.keyId !== from.keyId)) {
    throw new PolicyError(
      'PROVIDER_MISMATCH',
      `this store was installed with the ${lock.kind} provider "${lock.keyId}", not the ${from.kind} provider "${from.keyId}" given as from`,
    );
  }
  if (!lock && !options.dryRun) await store.ensureInstallLock(from, actor);
  // The audit key is open (under `from`) before the first entry; the lock change re-wraps it under `to`.
  await store.openAuditKey([from], { actor, create: !options.dryRun });
  if (!options.dryRun) {
    await store.appendAudit({ actor, event: 'install.migrate.start', subject: kekName(to), details: { from: kekName(from), to: kekName(to) } });
  }
  const report = await rotateKek({ ...options, from: [from], allowProviderChange: true });
  if (report.dryRun || report.aborted || report.failed.length > 0) {
    return { ...report, lockChanged: false, lock: await store.getInstallLock() };
  }
  const moved = await store.changeInstallLock(from, to, actor, { rewrapped: report.rewrapped });
  return { ...report, lockChanged: true, lock: moved };
}
