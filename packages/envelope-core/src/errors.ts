/**
 * Error classes of Keyfold. Every failure a caller can act on is a {@link KeyfoldError} with a stable `code`;
 * caller mistakes (wrong argument types or sizes) are `TypeError` / `RangeError`.
 *
 * Security rule: every failure to decrypt data or unwrap a key surfaces as {@link DecryptFailedError} or
 * {@link UnwrapFailedError} with one fixed message, whatever step failed, so that an attacker who feeds modified
 * ciphertexts learns nothing about which check refused them (the "decryption oracle" rule of jose's
 * `JWEDecryptionFailed`). The original error, if any, is kept as `cause` for the operator's debugger but never
 * put into the message.
 *
 * @module
 */

/** Every code a {@link KeyfoldError} can carry. Stable: scripts and the CLI map them to exit codes. */
export type KeyfoldErrorCode =
  | 'DECRYPT_FAILED'
  | 'UNWRAP_FAILED'
  | 'CONTEXT_MISMATCH'
  | 'FORMAT_INVALID'
  | 'FORMAT_UNSUPPORTED'
  | 'LIMIT_EXCEEDED'
  | 'KEY_NOT_FOUND'
  | 'KEY_DISABLED'
  | 'KEY_VERSION_RETIRED'
  | 'ACCESS_DENIED'
  /** The key service refused an enclave's attestation document (untrusted, or not matching the key policy). */
  | 'ATTESTATION_REFUSED'
  | 'THROTTLED'
  | 'UNAVAILABLE'
  | 'TIMEOUT'
  | 'PROVIDER_CLOSED'
  | 'PROVIDER_MISMATCH'
  | 'NO_PROVIDER'
  | 'CONFIG_INVALID'
  | 'INSECURE_PERMISSIONS'
  | 'POLICY_VIOLATION'
  | 'WRONG_PASSPHRASE'
  | 'INTEGRITY_FAILED'
  | 'ALREADY_EXISTS'
  | 'INTERNAL';

export interface KeyfoldErrorOptions {
  cause?: unknown;
}

/** Base class of every coded Keyfold error. `code` is the stable identifier; `message` is for humans. */
export class KeyfoldError extends Error {
  static readonly code: KeyfoldErrorCode = 'INTERNAL';
  readonly code: KeyfoldErrorCode;

  constructor(code: KeyfoldErrorCode, message: string, options: KeyfoldErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'KeyfoldError';
    this.code = code;
  }

  /** True for errors that a retry may cure (the backend was busy or unreachable). */
  get retryable(): boolean {
    return this.code === 'THROTTLED' || this.code === 'UNAVAILABLE';
  }
}

/** The one error for every failure to open an envelope. Its message never says which check failed. */
export class DecryptFailedError extends KeyfoldError {
  static override readonly code = 'DECRYPT_FAILED' as const;
  static readonly MESSAGE = 'decryption failed';
  constructor(options: KeyfoldErrorOptions = {}) {
    super('DECRYPT_FAILED', DecryptFailedError.MESSAGE, options);
    this.name = 'DecryptFailedError';
  }
}

/** The one error for every failure to unwrap a data key. Its message never says which check failed. */
export class UnwrapFailedError extends KeyfoldError {
  static override readonly code = 'UNWRAP_FAILED' as const;
  static readonly MESSAGE = 'unwrapping the data key failed';
  constructor(options: KeyfoldErrorOptions = {}) {
    super('UNWRAP_FAILED', UnwrapFailedError.MESSAGE, options);
    this.name = 'UnwrapFailedError';
  }
}

/** The envelope's stored encryption context differs from the one the caller expected. */
export class ContextMismatchError extends KeyfoldError {
  static override readonly code = 'CONTEXT_MISMATCH' as const;
  constructor(message: string, options: KeyfoldErrorOptions = {}) {
    super('CONTEXT_MISMATCH', message, options);
    this.name = 'ContextMismatchError';
  }
}

/** The bytes are not a well-formed Keyfold envelope (bad magic, truncated, malformed header). */
export class FormatError extends KeyfoldError {
  static override readonly code = 'FORMAT_INVALID' as const;
  constructor(message: string, options: KeyfoldErrorOptions = {}) {
    super('FORMAT_INVALID', message, options);
    this.name = 'FormatError';
  }
}

/** A well-formed envelope of a format version or algorithm suite this build does not support. */
export class UnsupportedFormatError extends KeyfoldError {
  static override readonly code = 'FORMAT_UNSUPPORTED' as const;
  constructor(message: string, options: KeyfoldErrorOptions = {}) {
    super('FORMAT_UNSUPPORTED', message, options);
    this.name = 'UnsupportedFormatError';
  }
}

/** A count or size in the input exceeds a configured limit; refused before anything is allocated for it. */
export class LimitExceededError extends KeyfoldError {
  static override readonly code = 'LIMIT_EXCEEDED' as const;
  constructor(message: string, options: KeyfoldErrorOptions = {}) {
    super('LIMIT_EXCEEDED', message, options);
    this.name = 'LimitExceededError';
  }
}

/** A backend failure mapped to a code (`KEY_NOT_FOUND`, `ACCESS_DENIED`, `THROTTLED`, `UNAVAILABLE`, ...). */
export class ProviderError extends KeyfoldError {
  constructor(code: KeyfoldErrorCode, message: string, options: KeyfoldErrorOptions = {}) {
    super(code, message, options);
    this.name = 'ProviderError';
  }
}

/** A call did not finish within its deadline. Retryable as UNAVAILABLE is not: the deadline covers retries. */
export class TimeoutError extends KeyfoldError {
  static override readonly code = 'TIMEOUT' as const;
  constructor(message: string, options: KeyfoldErrorOptions = {}) {
    super('TIMEOUT', message, options);
    this.name = 'TimeoutError';
  }
}

/**
 * The circuit breaker is open after repeated backend failures: the call failed fast, without reaching the
 * backend. Its code is `UNAVAILABLE` (to a caller the backend is unavailable), but it is not retried.
 */
export class CircuitOpenError extends KeyfoldError {
  static override readonly code = 'UNAVAILABLE' as const;
  readonly circuitOpen = true;
  constructor(message: string, options: KeyfoldErrorOptions = {}) {
    super('UNAVAILABLE', message, options);
    this.name = 'CircuitOpenError';
  }

  override get retryable(): boolean {
    return false;
  }
}

/** Configuration is invalid (bad environment key, missing passphrase variable, unknown option value). */
export class ConfigError extends KeyfoldError {
  static override readonly code = 'CONFIG_INVALID' as const;
  constructor(message: string, options: KeyfoldErrorOptions = {}) {
    super('CONFIG_INVALID', message, options);
    this.name = 'ConfigError';
  }
}

/** The security policy refused something (memory provider in production, loose file permissions, ...). */
export class PolicyError extends KeyfoldError {
  constructor(code: 'POLICY_VIOLATION' | 'INSECURE_PERMISSIONS' | 'PROVIDER_MISMATCH', message: string, options: KeyfoldErrorOptions = {}) {
    super(code, message, options);
    this.name = 'PolicyError';
  }
}

/** True when `err` is a {@link KeyfoldError}, optionally with the given code. */
export function isKeyfoldError(err: unknown, code?: KeyfoldErrorCode): err is KeyfoldError {
  return err instanceof KeyfoldError && (code === undefined || err.code === code);
}
