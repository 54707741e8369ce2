/**
 * Error classes of `@keyfold/secrets`. Every failure is a `KeyfoldError` with a stable `code`:
 * - `DECRYPT_FAILED` ({@link DecryptFailedError}): a data key or a value would not open (wrong provider, wrong key,
 *   tampered ciphertext). One fixed message whatever step failed, so nothing tells an attacker which check refused.
 * - `INTEGRITY_FAILED` ({@link IntegrityFailedError}): the file MAC does not match (a value was removed, added,
 *   reordered, swapped or truncated). Also one fixed message.
 * - `FORMAT_INVALID` ({@link FormatError}): the file is not well-formed for its format or its `keyfold` metadata
 *   is malformed.
 * @module
 */
import { KeyfoldError, type KeyfoldErrorOptions } from '@keyfold/envelope-core';

export { DecryptFailedError, FormatError, KeyfoldError, isKeyfoldError } from '@keyfold/envelope-core';
export type { KeyfoldErrorCode, KeyfoldErrorOptions } from '@keyfold/envelope-core';

/**
 * The file MAC did not verify. Fixed message: it never says which value or which check failed.
 * @example
 * ```ts
 * try { await loadSecrets(path, { providers }); } catch (e) { if (isKeyfoldError(e, 'INTEGRITY_FAILED')) process.exit(3); }
 * ```
 */
export class IntegrityFailedError extends KeyfoldError {
  static override readonly code = 'INTEGRITY_FAILED' as const;
  static readonly MESSAGE = 'the secrets file failed its integrity check (MAC mismatch); it was modified outside keyfold';
  constructor(options: KeyfoldErrorOptions = {}) {
    super('INTEGRITY_FAILED', IntegrityFailedError.MESSAGE, options);
    this.name = 'IntegrityFailedError';
  }
}
