/**
 * Error classes of the key store. Everything else it throws is a core error (`PolicyError` for
 * `PROVIDER_MISMATCH` / `INSECURE_PERMISSIONS` / `POLICY_VIOLATION`, `UnsupportedFormatError` for a newer schema,
 * `ConfigError`, `ProviderError` for `KEY_NOT_FOUND` / `UNAVAILABLE`).
 * @module
 */
import { KeyfoldError, ProviderError, type KeyfoldErrorOptions } from '@keyfold/envelope-core';

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
