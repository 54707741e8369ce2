/**
 * Error classes of the key store. Everything else it throws is a core error (`PolicyError` for
 * `PROVIDER_MISMATCH` / `INSECURE_PERMISSIONS` / `POLICY_VIOLATION`, `UnsupportedFormatError` for a newer schema,
 * `ConfigError`, `ProviderError` for `KEY_NOT_FOUND` / `UNAVAILABLE`).
 * @module
 */
import { KeyfoldError, ProviderError, UnsupportedFormatError, type KeyfoldErrorOptions } from '@keyfold/envelope-core';

/**
 * The store (or a backup of it) is damaged or was tampered with: a corrupted database file, an audit chain that
 * does not verify, a backup whose digest does not match. Code `INTEGRITY_FAILED` (CLI exit code 3).
 * @example
 * ```ts
 * try { await openSqliteKeyStore({ path }); } catch (err) { if (err instanceof IntegrityError) restoreFromBackup(); }
 * ```
 */
export class IntegrityError extends KeyfoldError {
  static override readonly code = 'INTEGRITY_FAILED' as const;
  constructor(message: string, options: KeyfoldErrorOptions = {}) {
    super('INTEGRITY_FAILED', message, options);
    this.name = 'IntegrityError';
  }
}

/** Why a key store refused access: see {@link StoreAccessError}. */
export type StoreAccessReason = 'password-missing' | 'login-refused' | 'permission-denied';

/**
 * The key store's server refused this process: it asks for a password and none was given (`password-missing`), it
 * refused the login (`login-refused`: a wrong password, an unknown role, no `pg_hba.conf` entry), or the login may
 * not use the store's tables (`permission-denied`). Code `ACCESS_DENIED` (CLI exit code 3). The message names the
 * store by its URL without the password; no password ever appears in it.
 * @example
 * ```ts
 * try { await openPostgresKeyStore({ connectionString }); }
 * catch (err) { if (err instanceof StoreAccessError && err.reason === 'password-missing') askForPassword(); }
 * ```
 */
export class StoreAccessError extends ProviderError {
  static override readonly code = 'ACCESS_DENIED' as const;
  readonly reason: StoreAccessReason;
  constructor(reason: StoreAccessReason, message: string, options: KeyfoldErrorOptions = {}) {
    super('ACCESS_DENIED', message, options);
    this.name = 'StoreAccessError';
    this.reason = reason;
  }
}

/**
 * A store opened with `readOnly` was written by an older schema: it must be opened for writing once, which
 * migrates it, before it can be read without writing. Code `FORMAT_UNSUPPORTED`; nothing was written.
 * @example
 * ```ts
 * try { store = await openSqliteKeyStore({ path, readOnly: true }); }
 * catch (err) { if (err instanceof StoreUpgradeRequiredError) store = await openSqliteKeyStore({ path }); else throw err; }
 * ```
 */
export class StoreUpgradeRequiredError extends UnsupportedFormatError {
  /** The schema version the store records. */
  readonly foundVersion: number;
  constructor(location: string, foundVersion: number, options: KeyfoldErrorOptions = {}) {
    super(
      `the key store ${location} has schema version ${foundVersion}, older than this version of @keyfold/keystore ` +
        'writes: open it for writing once (any command that changes it) to upgrade it. Nothing was written.',
      options,
    );
    this.name = 'StoreUpgradeRequiredError';
    this.foundVersion = foundVersion;
  }
}

/**
 * A tenant key version was destroyed (the whole tenant shredded, or that one version): what it sealed can never be
 * opened again. Code `KEY_NOT_FOUND` (as for any key that is not there), with the tenant and version named, so a
 * caller can tell "destroyed for good" from "never existed" (the CLI reports it as `KEY_DESTROYED`, exit 3).
 * @example
 * ```ts
 * try { await envelope.open(sealed); }
 * catch (err) { if (err instanceof TenantKeyDestroyedError) console.log(`${err.tenant} v${err.version} was shredded`); }
 * ```
 */
export class TenantKeyDestroyedError extends ProviderError {
  static override readonly code = 'KEY_NOT_FOUND' as const;
  readonly tenant: string;
  readonly version: number;
  constructor(tenant: string, version: number, options: KeyfoldErrorOptions = {}) {
    super('KEY_NOT_FOUND', `tenant ${tenant}: key version ${version} was destroyed (shredded) and can never be used again`, options);
    this.name = 'TenantKeyDestroyedError';
    this.tenant = tenant;
    this.version = version;
  }
}

/**
 * Another worker holds the lease of a rotation checkpoint and it has not expired: its run is respected, not taken
 * over. Code `UNAVAILABLE` (try again once `lease.expiresAt` has passed, or once that worker finished).
 * @example
 * ```ts
 * try { await store.claimCheckpoint({ name, owner, ttlMs: 30_000 }); }
 * catch (err) { if (err instanceof CheckpointLeasedError) console.log('busy until', err.lease.expiresAt); }
 * ```
 */
export class CheckpointLeasedError extends ProviderError {
  static override readonly code = 'UNAVAILABLE' as const;
  /** The checkpoint's name. */
  readonly checkpoint: string;
  /** The live lease (owner id, expiry). */
  readonly lease: { readonly owner: string; readonly expiresAt: string };
  constructor(checkpoint: string, lease: { readonly owner: string; readonly expiresAt: string }, options: KeyfoldErrorOptions = {}) {
    super(
      'UNAVAILABLE',
      `the checkpoint ${checkpoint} is held by another worker (${lease.owner}) until ${lease.expiresAt}: that run is still ` +
        'going; it is taken over (and resumed from its cursor) only once the lease expires',
      options,
    );
    this.name = 'CheckpointLeasedError';
    this.checkpoint = checkpoint;
    this.lease = lease;
  }
}
