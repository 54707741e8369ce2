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

/**
 * The key under which every Keyfold error class carries its brand (the class's stable name). `Symbol.for` gives the
 * same symbol to every copy of this package loaded in one process — the ESM and the CJS build side by side, or two
 * versions installed by two dependants — so an error thrown by one copy is recognised by another, where the
 * prototype chain (`instanceof`) alone would say no. The brand is an explicit string, not `constructor.name`, so a
 * bundler that renames classes does not change it.
 */
const ERROR_CLASS_BRAND = Symbol.for('@keyfold/envelope-core/error-class');

/** Marks `cls` as the Keyfold error class called `name` in every copy of this package. */
function brandErrorClass(cls: object, name: string): void {
  Object.defineProperty(cls, ERROR_CLASS_BRAND, { value: name, enumerable: false, writable: false, configurable: false });
}

/** The brand `cls` declares itself (not one inherited from a parent class), if any. */
function ownErrorClassBrand(cls: unknown): string | undefined {
  if (typeof cls !== 'function') return undefined;
  const brand: unknown = Object.getOwnPropertyDescriptor(cls, ERROR_CLASS_BRAND)?.value;
  return typeof brand === 'string' ? brand : undefined;
}

/**
 * True when `value` was made by a class, from any copy of this package, whose class chain includes the class branded
 * `name`. Walks the prototype chain by own `constructor` properties only; never calls user getters (a Proxy whose
 * traps throw is simply not an error of ours).
 */
function hasErrorClassBrand(value: unknown, name: string): boolean {
  if (typeof value !== 'object' || value === null) return false;
  try {
    for (let proto: unknown = Object.getPrototypeOf(value); proto !== null; proto = Object.getPrototypeOf(proto)) {
      const ctor: unknown = Object.getOwnPropertyDescriptor(proto, 'constructor')?.value;
      if (ownErrorClassBrand(ctor) === name) return true;
    }
  } catch {
    return false;
  }
  return false;
}

/**
 * Base class of every coded Keyfold error. `code` is the stable identifier; `message` is for humans.
 *
 * `err instanceof KeyfoldError` (and `instanceof` any subclass below) also holds for an error made by another copy
 * of `@keyfold/envelope-core` in the same process (ESM next to CJS, two installed versions): the classes carry a
 * `Symbol.for` brand that `Symbol.hasInstance` checks when the prototype chain does not match. A subclass you define
 * yourself is matched by its prototype chain only.
 */
export class KeyfoldError extends Error {
  static {
    brandErrorClass(this, 'KeyfoldError');
  }

  /**
   * `instanceof` that also recognises instances of the same class from another copy of this package (see the class
   * comment). Classes without their own brand (yours) use the ordinary prototype check.
   * @throws never
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    try {
      if (Function.prototype[Symbol.hasInstance].call(this, value)) return true;
    } catch {
      return false; // a Proxy whose getPrototypeOf trap throws: not one of ours
    }
    const brand = ownErrorClassBrand(this);
    return brand !== undefined && hasErrorClassBrand(value, brand);
  }

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
  static {
    brandErrorClass(this, 'DecryptFailedError');
  }
  static override readonly code = 'DECRYPT_FAILED' as const;
  static readonly MESSAGE = 'decryption failed';
  constructor(options: KeyfoldErrorOptions = {}) {
    super('DECRYPT_FAILED', DecryptFailedError.MESSAGE, options);
    this.name = 'DecryptFailedError';
  }
}

/** The one error for every failure to unwrap a data key. Its message never says which check failed. */
export class UnwrapFailedError extends KeyfoldError {
  static {
    brandErrorClass(this, 'UnwrapFailedError');
  }
  static override readonly code = 'UNWRAP_FAILED' as const;
  static readonly MESSAGE = 'unwrapping the data key failed';
  constructor(options: KeyfoldErrorOptions = {}) {
    super('UNWRAP_FAILED', UnwrapFailedError.MESSAGE, options);
    this.name = 'UnwrapFailedError';
  }
}

/** The envelope's stored encryption context differs from the one the caller expected. */
export class ContextMismatchError extends KeyfoldError {
  static {
    brandErrorClass(this, 'ContextMismatchError');
  }
  static override readonly code = 'CONTEXT_MISMATCH' as const;
  constructor(message: string, options: KeyfoldErrorOptions = {}) {
    super('CONTEXT_MISMATCH', message, options);
    this.name = 'ContextMismatchError';
  }
}

/** The bytes are not a well-formed Keyfold envelope (bad magic, truncated, malformed header). */
export class FormatError extends KeyfoldError {
  static {
    brandErrorClass(this, 'FormatError');
  }
  static override readonly code = 'FORMAT_INVALID' as const;
  constructor(message: string, options: KeyfoldErrorOptions = {}) {
    super('FORMAT_INVALID', message, options);
    this.name = 'FormatError';
  }
}

/** A well-formed envelope of a format version or algorithm suite this build does not support. */
export class UnsupportedFormatError extends KeyfoldError {
  static {
    brandErrorClass(this, 'UnsupportedFormatError');
  }
  static override readonly code = 'FORMAT_UNSUPPORTED' as const;
  constructor(message: string, options: KeyfoldErrorOptions = {}) {
    super('FORMAT_UNSUPPORTED', message, options);
    this.name = 'UnsupportedFormatError';
  }
}

/** A count or size in the input exceeds a configured limit; refused before anything is allocated for it. */
export class LimitExceededError extends KeyfoldError {
  static {
    brandErrorClass(this, 'LimitExceededError');
  }
  static override readonly code = 'LIMIT_EXCEEDED' as const;
  constructor(message: string, options: KeyfoldErrorOptions = {}) {
    super('LIMIT_EXCEEDED', message, options);
    this.name = 'LimitExceededError';
  }
}

/** A backend failure mapped to a code (`KEY_NOT_FOUND`, `ACCESS_DENIED`, `THROTTLED`, `UNAVAILABLE`, ...). */
export class ProviderError extends KeyfoldError {
  static {
    brandErrorClass(this, 'ProviderError');
  }
  constructor(code: KeyfoldErrorCode, message: string, options: KeyfoldErrorOptions = {}) {
    super(code, message, options);
    this.name = 'ProviderError';
  }
}

/** A call did not finish within its deadline. Retryable as UNAVAILABLE is not: the deadline covers retries. */
export class TimeoutError extends KeyfoldError {
  static {
    brandErrorClass(this, 'TimeoutError');
  }
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
  static {
    brandErrorClass(this, 'CircuitOpenError');
  }
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
  static {
    brandErrorClass(this, 'ConfigError');
  }
  static override readonly code = 'CONFIG_INVALID' as const;
  constructor(message: string, options: KeyfoldErrorOptions = {}) {
    super('CONFIG_INVALID', message, options);
    this.name = 'ConfigError';
  }
}

/** The security policy refused something (memory provider in production, loose file permissions, ...). */
export class PolicyError extends KeyfoldError {
  static {
    brandErrorClass(this, 'PolicyError');
  }
  constructor(code: 'POLICY_VIOLATION' | 'INSECURE_PERMISSIONS' | 'PROVIDER_MISMATCH', message: string, options: KeyfoldErrorOptions = {}) {
    super(code, message, options);
    this.name = 'PolicyError';
  }
}

/**
 * True when `err` is a {@link KeyfoldError}, optionally with the given code. Recognises errors from any copy of
 * `@keyfold/envelope-core` in the process (ESM and CJS builds, other versions), by the class brand, not by identity.
 * @throws never
 * @example
 * ```ts
 * try { await envelope.open(sealed); } catch (err) {
 *   if (isKeyfoldError(err, 'THROTTLED')) scheduleRetry();
 *   else throw err;
 * }
 * ```
 */
export function isKeyfoldError(err: unknown, code?: KeyfoldErrorCode): err is KeyfoldError {
  return err instanceof KeyfoldError && typeof err.code === 'string' && (code === undefined || err.code === code);
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
