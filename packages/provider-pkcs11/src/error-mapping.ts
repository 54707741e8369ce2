/**
 * PKCS#11 failures mapped to Keyfold error codes, with the original error kept as `cause`.
 *
 * Rules, and why:
 * - `CKR_PIN_INCORRECT` is `ACCESS_DENIED` and is never retried: tokens count wrong PINs and lock the user PIN after
 *   a few (often 3), so one bad configuration retried in a loop would lock the HSM for every application using it.
 *   `ACCESS_DENIED` is not retryable for the core's resilience either.
 * - `CKR_PIN_LOCKED` is `ACCESS_DENIED` with a message that says the PIN is locked and who can unlock it.
 * - During unwrap, the errors a token gives for bad ciphertext (`CKR_GENERAL_ERROR` from an AES-GCM tag mismatch on
 *   SoftHSM2, `CKR_ENCRYPTED_DATA_INVALID`, `CKR_WRAPPED_KEY_INVALID`, ...) become the one generic
 *   `UNWRAP_FAILED`, so an attacker learns nothing about which check refused a modified wrapped key.
 * - Device and session trouble is `UNAVAILABLE` (retryable when resilience is on); a missing or disabled mechanism,
 *   or a key the token will not use that way, is `CONFIG_INVALID`; a key handle that no longer exists is
 *   `KEY_NOT_FOUND`.
 * Messages name the token and the CKR value, never the PIN or key bytes.
 * @module
 */
import { ConfigError, KeyfoldError, ProviderError, UnwrapFailedError } from '@keyfold/envelope-core';
import { pkcs11Failure } from './ckr.js';

/** What the failing call was doing; it decides how ambiguous codes such as CKR_GENERAL_ERROR are read. */
export type Pkcs11Operation = 'load' | 'login' | 'session' | 'find' | 'wrap' | 'unwrap' | 'generate' | 'describe' | 'logout';

/** Ciphertext-dependent failures: during unwrap they all mean "this wrapped key does not open". */
const BAD_CIPHERTEXT = new Set<string>([
  'CKR_GENERAL_ERROR',
  'CKR_FUNCTION_FAILED',
  'CKR_DATA_INVALID',
  'CKR_DATA_LEN_RANGE',
  'CKR_ENCRYPTED_DATA_INVALID',
  'CKR_ENCRYPTED_DATA_LEN_RANGE',
  'CKR_WRAPPED_KEY_INVALID',
  'CKR_WRAPPED_KEY_LEN_RANGE',
  'CKR_MECHANISM_PARAM_INVALID',
  'CKR_ARGUMENTS_BAD',
]);

/** The token, the session or the library is gone or busy: a later call may succeed. */
const UNAVAILABLE = new Set<string>([
  'CKR_HOST_MEMORY',
  'CKR_DEVICE_ERROR',
  'CKR_DEVICE_MEMORY',
  'CKR_DEVICE_REMOVED',
  'CKR_FUNCTION_FAILED',
  'CKR_FUNCTION_CANCELED',
  'CKR_SESSION_CLOSED',
  'CKR_SESSION_COUNT',
  'CKR_SESSION_HANDLE_INVALID',
  'CKR_TOKEN_NOT_PRESENT',
  'CKR_TOKEN_NOT_RECOGNIZED',
  'CKR_CRYPTOKI_NOT_INITIALIZED',
  'CKR_OPERATION_ACTIVE',
  'CKR_USER_NOT_LOGGED_IN',
]);

/** The token will not do what the configuration asks of it. */
const CONFIG = new Set<string>([
  'CKR_MECHANISM_INVALID',
  'CKR_MECHANISM_PARAM_INVALID',
  'CKR_FUNCTION_NOT_SUPPORTED',
  'CKR_KEY_TYPE_INCONSISTENT',
  'CKR_KEY_SIZE_RANGE',
  'CKR_KEY_FUNCTION_NOT_PERMITTED',
  'CKR_KEY_NOT_WRAPPABLE',
  'CKR_KEY_UNEXTRACTABLE',
  'CKR_TEMPLATE_INCOMPLETE',
  'CKR_TEMPLATE_INCONSISTENT',
  'CKR_ATTRIBUTE_VALUE_INVALID',
  'CKR_ATTRIBUTE_TYPE_INVALID',
  'CKR_ATTRIBUTE_SENSITIVE',
  'CKR_SLOT_ID_INVALID',
  'CKR_TOKEN_WRITE_PROTECTED',
  'CKR_SESSION_READ_ONLY',
  'CKR_USER_PIN_NOT_INITIALIZED',
]);

const KEY_GONE = new Set<string>([
  'CKR_KEY_HANDLE_INVALID',
  'CKR_OBJECT_HANDLE_INVALID',
  'CKR_WRAPPING_KEY_HANDLE_INVALID',
  'CKR_UNWRAPPING_KEY_HANDLE_INVALID',
]);

/** Where the failure happened, for messages: `token "kf" (slot 0x1a2b) key "payments.v2"`. */
export interface FailureSite {
  readonly token: string;
  readonly key?: string;
  /** Mechanism in use, for CONFIG_INVALID messages. */
  readonly mechanism?: string;
  /** Token flags read after a failed login, to warn that the next wrong PIN may lock the token. */
  readonly tokenFlags?: number;
}

function pinMessage(site: FailureSite): string {
  const flags = site.tokenFlags ?? 0;
  let warning = '';
  if (flags & 0x20000) warning = ' The token reports that one more wrong PIN will lock it.';
  else if (flags & 0x10000) warning = ' The token reports that wrong PINs were entered before (CKF_USER_PIN_COUNT_LOW).';
  return (
    `${site.token} refused the PIN (CKR_PIN_INCORRECT). Keyfold does not retry a wrong PIN, because repeated ` +
    `attempts lock the token; correct pin / pinEnv / pinFile and start again.${warning}`
  );
}

/**
 * Maps a PKCS#11 failure (or a pkcs11js NativeError, e.g. a library that does not load) to a KeyfoldError.
 * Returns `undefined` for errors that are neither.
 */
export function mapPkcs11Error(err: unknown, operation: Pkcs11Operation, site: FailureSite): KeyfoldError | undefined {
  const f = pkcs11Failure(err);
  if (!f) {
    if (err instanceof Error && err.name === 'NativeError') {
      if (operation === 'load') {
        return new ConfigError(`the PKCS#11 library could not be loaded: ${err.message}`, { cause: err });
      }
      return new ProviderError('UNAVAILABLE', `the PKCS#11 library failed during ${operation} on ${site.token}: ${err.message}`, {
        cause: err,
      });
    }
    return undefined;
  }
  const name = f.name;
  const on = site.key ? `${site.token}, key ${JSON.stringify(site.key)}` : site.token;
  if (name === 'CKR_PIN_INCORRECT') return new ProviderError('ACCESS_DENIED', pinMessage(site), { cause: err });
  if (name === 'CKR_PIN_LOCKED') {
    return new ProviderError(
      'ACCESS_DENIED',
      `the user PIN of ${site.token} is locked (CKR_PIN_LOCKED) after too many wrong attempts; the token's security ` +
        'officer must unlock or reset it (C_InitPIN, e.g. pkcs11-tool --login --login-type so --init-pin) before Keyfold can log in',
      { cause: err },
    );
  }
  if (name === 'CKR_PIN_EXPIRED') {
    return new ProviderError('ACCESS_DENIED', `the user PIN of ${site.token} has expired (CKR_PIN_EXPIRED); change it with C_SetPIN and update the configuration`, {
      cause: err,
    });
  }
  if (name === 'CKR_PIN_INVALID' || name === 'CKR_PIN_LEN_RANGE') {
    return new ProviderError('ACCESS_DENIED', `${site.token} refused the PIN as malformed (${name}); check its length and characters`, {
      cause: err,
    });
  }
  if (name === 'CKR_USER_ANOTHER_ALREADY_LOGGED_IN' || name === 'CKR_USER_TYPE_INVALID') {
    return new ProviderError('ACCESS_DENIED', `${site.token} has another user (the security officer) logged in (${name}); log it out and try again`, {
      cause: err,
    });
  }
  if (operation === 'unwrap' && BAD_CIPHERTEXT.has(name)) return new UnwrapFailedError({ cause: err });
  if (KEY_GONE.has(name)) {
    return new ProviderError('KEY_NOT_FOUND', `the KEK object on ${on} no longer exists (${name}); it may have been deleted`, { cause: err });
  }
  if (name === 'CKR_USER_PIN_NOT_INITIALIZED') {
    return new ConfigError(`${site.token} has no user PIN yet (CKR_USER_PIN_NOT_INITIALIZED); initialise it (softhsm2-util --init-token, or C_InitPIN as SO)`, {
      cause: err,
    });
  }
  if (CONFIG.has(name)) {
    const mech = site.mechanism ? ` for ${site.mechanism}` : '';
    return new ConfigError(
      `${on} refused the operation${mech} (${name}): the token's mechanism policy or the key's attributes ` +
        '(CKA_ENCRYPT/CKA_DECRYPT/CKA_WRAP/CKA_UNWRAP, CKA_ALLOWED_MECHANISMS) do not allow it',
      { cause: err },
    );
  }
  if (UNAVAILABLE.has(name)) {
    return new ProviderError('UNAVAILABLE', `${site.token} is unavailable during ${operation} (${name})`, { cause: err });
  }
  return new ProviderError('INTERNAL', `${on} failed during ${operation} with ${name}`, { cause: err });
}

/** Any error as a KeyfoldError (caller mistakes stay TypeError / RangeError). */
export function toKeyfoldError(err: unknown, operation: Pkcs11Operation, site: FailureSite): Error {
  if (err instanceof KeyfoldError || err instanceof TypeError || err instanceof RangeError) return err;
  const mapped = mapPkcs11Error(err, operation, site);
  if (mapped) return mapped;
  return new ProviderError('INTERNAL', `${site.token} failed during ${operation}: ${err instanceof Error ? err.message : String(err)}`, {
    cause: err,
  });
}
