/**
 * Error classes of the key store. Everything else it throws is a core error (`PolicyError` for
 * `PROVIDER_MISMATCH` / `INSECURE_PERMISSIONS` / `POLICY_VIOLATION`, `UnsupportedFormatError` for a newer schema,
 * `ConfigError`, `ProviderError` for `KEY_NOT_FOUND` / `UNAVAILABLE`).
 * @module
 */
import { KeyfoldError, type KeyfoldErrorOptions } from '@keyfold/envelope-core';

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
