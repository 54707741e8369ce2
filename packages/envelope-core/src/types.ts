/**
 * The one interface every backend implements, and the values that cross it.
 * @module
 */

/**
 * Authenticated, non-secret key/value pairs bound to a wrapped key and to an envelope. Stored in clear inside the
 * envelope header: never put secrets in it. Key order is irrelevant (the canonical form sorts by key).
 */
export type EncryptionContext = Readonly<Record<string, string>>;

/** How well a KEK is protected; reported by `describe()` and shown by `keyfold status`. */
export type Protection = 'hsm' | 'kms' | 'software' | 'memory';

/** A data key encrypted under one version of one KEK. Everything but `ciphertext` is stored in clear. */
export interface WrappedKey {
  /** Provider kind that made it (`env`, `file`, `aws-kms`, ...). */
  readonly kind: string;
  /** Identity of the KEK across its versions (ARN, resource name, HSM label, env prefix, tenant id). */
  readonly keyId: string;
  /** The KEK version that wrapped it. */
  readonly keyVersion: string;
  /** Opaque provider output. */
  readonly ciphertext: Uint8Array;
}

/** What `describe()` returns. */
export interface ProviderDescription {
  readonly kind: string;
  readonly keyId: string;
  readonly protection: Protection;
  /** The version new wraps use. */
  readonly activeVersion: string;
  /** Every version that still unwraps, oldest first. */
  readonly versions: readonly string[];
  readonly capabilities: ProviderCapabilities;
  /** Provider-specific, non-secret details (paths, regions, mechanisms). */
  readonly details?: Readonly<Record<string, string | number | boolean>>;
}

export interface ProviderCapabilities {
  readonly generateDataKey: boolean;
  readonly rewrapKey: boolean;
  readonly rotate: boolean;
  /**
   * True when `withWriteVersion` can write under any version the provider has loaded (or the service can address);
   * false or absent when it can only write under its own active version (AWS KMS: a mismatch refuses to write).
   */
  readonly writeVersion?: boolean;
}

/** What `probe()` returns. `probe()` reports problems in `ok`/`error`; it never throws for an unhealthy backend. */
export interface ProbeResult {
  readonly ok: boolean;
  readonly kind: string;
  readonly keyId: string;
  /** Round trip time of the check (a wrap + unwrap of a throwaway key, or the backend's cheapest call), in ms. */
  readonly latencyMs: number;
  readonly activeVersion?: string;
  readonly capabilities?: ProviderCapabilities;
  /** Set when `ok` is false: the code and an operator-facing message (never key material). */
  readonly error?: { readonly code: string; readonly message: string };
  readonly details?: Readonly<Record<string, string | number | boolean>>;
}

/**
 * A key-encryption key (KEK) backend. Implementations usually extend `BaseKeyProvider`, which checks
 * preconditions, enforces `close()`, maps errors, and applies the shared retry / deadline / circuit breaker.
 *
 * Rules (checked by `@keyfold/conformance`): the context is bound; a tampered or foreign ciphertext fails with
 * `UNWRAP_FAILED`; caller buffers are neither retained nor mutated; returned data keys are fresh buffers the
 * caller may wipe; every non-retired version unwraps after a rotation; `probe()` never throws for "unhealthy";
 * `close()` is idempotent; backend errors are mapped to codes with the original as `cause`.
 */
export interface KeyProvider {
  readonly kind: string;
  readonly keyId: string;
  readonly protection: Protection;
  wrapKey(dataKey: Uint8Array, context: EncryptionContext): Promise<WrappedKey>;
  unwrapKey(wrapped: WrappedKey, context: EncryptionContext): Promise<Uint8Array>;
  generateDataKey?(context: EncryptionContext): Promise<{ dataKey: Uint8Array; wrapped: WrappedKey }>;
  /** Server-side re-encrypt to the active version, without exposing the plaintext key where possible. */
  rewrapKey?(wrapped: WrappedKey, context: EncryptionContext): Promise<WrappedKey>;
  describe(): Promise<ProviderDescription>;
  probe(): Promise<ProbeResult>;
  /** Idempotent. Later calls of other methods fail with `PROVIDER_CLOSED`. */
  close(): Promise<void>;
  /**
   * Optional capability: a view of this provider whose `wrapKey`, `generateDataKey` and `rewrapKey` write under
   * exactly `version` (the key store's active version, not the provider's own choice), and whose `describe()` reports
   * it as the active version. Everything else (unwrap of every version the provider has, kind, keyId) is the
   * provider's. The view shares the provider's keys and connections: closing the view only closes the view; closing
   * the provider closes every view of it.
   *
   * Rules (checked by `@keyfold/conformance`): a version the provider has not loaded, or cannot address, is not an
   * error here; the view's writes fail with `KEY_NOT_FOUND` naming what to add (a variable, a token label, a KEK file
   * version), and its unwraps keep working. A write never lands under another version than `version`.
   * Use `writeUnderVersion(provider, version)`, which also covers providers without this method.
   * @throws TypeError for a version that is not a non-empty string.
   */
  withWriteVersion?(version: string): KeyProvider;
}

/** Data keys are AES-256 keys: always 32 bytes. */
export const DATA_KEY_LENGTH = 32;
