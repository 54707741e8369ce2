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

/**
 * Whether each code is *operational*: a problem with the backend or the setup (throttled, unreachable, denied, key
 * disabled, bad configuration, loose permissions, ...) that the operator can act on, as opposed to "this ciphertext
 * or wrapped key is bad". The one place this rule lives: an unwrap (`BaseKeyProvider.unwrapKey`) and an envelope
 * open (`open`, `openStream`, `rewrap`) surface an operational error as itself, and turn every other failure into
 * the one generic UNWRAP_FAILED / DECRYPT_FAILED, so nothing about the data leaks.
 *
 * Keyed by the whole {@link KeyfoldErrorCode} union: a new code does not compile until it is classified here.
 */
const OPERATIONAL_BY_CODE: { readonly [C in KeyfoldErrorCode]: boolean } = {
  DECRYPT_FAILED: false,
  UNWRAP_FAILED: false,
  CONTEXT_MISMATCH: false,
  FORMAT_INVALID: false,
  FORMAT_UNSUPPORTED: false,
  LIMIT_EXCEEDED: false,
  KEY_NOT_FOUND: true,
  KEY_DISABLED: true,
  KEY_VERSION_RETIRED: true,
  ACCESS_DENIED: true,
  // KMS refused the enclave's attestation document: a policy / enclave problem, not bad data.
  ATTESTATION_REFUSED: true,
  THROTTLED: true,
  UNAVAILABLE: true,
  TIMEOUT: true,
  PROVIDER_CLOSED: true,
  PROVIDER_MISMATCH: false,
  NO_PROVIDER: false,
  CONFIG_INVALID: true,
  INSECURE_PERMISSIONS: true,
  POLICY_VIOLATION: true,
  WRONG_PASSPHRASE: false,
  INTEGRITY_FAILED: false,
  ALREADY_EXISTS: false,
  INTERNAL: false,
};

export interface KeyfoldErrorOptions {
  cause?: unknown;
  /**
   * How long the backend asked the caller to wait before trying again (`Retry-After`, gRPC `RetryInfo`), in ms.
   * Set by providers on THROTTLED / UNAVAILABLE errors when the service said so; the shared resilience waits at least
   * this long before the next attempt (see `Resilience.run`). Ignored unless a finite number >= 0.
   */
  retryAfterMs?: number | undefined;
}

/** Base class of every coded Keyfold error. `code` is the stable identifier; `message` is for humans. */
export class KeyfoldError extends Error {
  static readonly code: KeyfoldErrorCode = 'INTERNAL';
  readonly code: KeyfoldErrorCode;
  /** The delay the backend asked for before a retry, in ms (`Retry-After`), when it named one. */
  readonly retryAfterMs: number | undefined;

  constructor(code: KeyfoldErrorCode, message: string, options: KeyfoldErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'KeyfoldError';
    this.code = code;
    const after = options.retryAfterMs;
    this.retryAfterMs = typeof after === 'number' && Number.isFinite(after) && after >= 0 ? after : undefined;
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

/**
 * True when `code` is operational: a backend or setup problem the operator can act on (`UNAVAILABLE`,
 * `ACCESS_DENIED`, `CONFIG_INVALID`, ...), so an error with it may surface from an unwrap or an envelope open as
 * itself; every other unwrap or decrypt failure must become the one generic `UNWRAP_FAILED` / `DECRYPT_FAILED`.
 * Unknown codes are not operational (fail closed).
 * @throws never
 * @example
 * ```ts
 * catch (err) {
 *   throw err instanceof KeyfoldError && isOperationalCode(err.code) ? err : new UnwrapFailedError({ cause: err });
 * }
 * ```
 */
export function isOperationalCode(code: KeyfoldErrorCode): boolean {
  return Object.hasOwn(OPERATIONAL_BY_CODE, code) && OPERATIONAL_BY_CODE[code];
}
