/**
 * The public types of the envelope API: what `createEnvelope` takes and returns, and what `inspect` and `stats`
 * report.
 * @module
 */
import type { Transform } from 'node:stream';
import type { CacheCounters, CacheOptions } from './cache.js';
import type { FormatLimits } from './format.js';
import type { SecurityMode } from './policy.js';
import type { ResilienceStats } from './resilience.js';
import type { EncryptionContext, KeyProvider } from './types.js';

export interface EnvelopePolicy {
  /** `production` (default) or `development`; see {@link resolveSecurityMode}. */
  securityMode?: SecurityMode;
  /** Parser limits (wrapped keys per envelope, header bytes, frame size). */
  limits?: Partial<FormatLimits>;
}

export interface EnvelopeOptions {
  /** KEK providers. `providers[0]` is primary; the data key is wrapped under every one and any one opens. */
  providers: readonly KeyProvider[];
  /** Data key cache: `true` for defaults, options, or `false`/absent for none. */
  cache?: CacheOptions | boolean;
  policy?: EnvelopePolicy;
  /** Plaintext bytes per frame for `sealStream`. Default 65,536. */
  frameSize?: number;
}

export interface OpenOptions {
  /** When given, the envelope's stored context must equal it exactly (order irrelevant), else CONTEXT_MISMATCH. */
  context?: EncryptionContext;
}

export interface RewrapOptions {
  /** Providers to wrap the data key under (default: this envelope's providers). */
  to?: readonly KeyProvider[];
}

/** What `inspect` shows: header fields only, no key access. */
export interface EnvelopeInfo {
  formatVersion: number;
  suiteId: number;
  suite: string;
  framed: boolean;
  frameSize: number;
  context: EncryptionContext;
  wrappedKeys: { kind: string; keyId: string; keyVersion: string; ciphertextLength: number }[];
  headerLength: number;
  bodyLength: number;
}

export interface EnvelopeStats {
  sealed: number;
  opened: number;
  rewrapped: number;
  providerCalls: { generateDataKey: number; wrap: number; unwrap: number; total: number };
  cache: (CacheCounters & { encryptEntries: number; decryptEntries: number }) | undefined;
  /**
   * Retry, throttling and rate-limit counters of each of the envelope's providers that runs under the shared
   * resilience (`BaseKeyProvider`; local providers without it are left out): throttled attempts, retries, the
   * current client-side rate (`ratePerSecond`), the circuit state. The counters are the provider's own, so a provider
   * shared by several envelopes reports all their calls.
   */
  resilience: ProviderResilienceStats[];
}

/** {@link ResilienceStats} of one provider, named by its kind and keyId. */
export interface ProviderResilienceStats extends ResilienceStats {
  kind: string;
  keyId: string;
}

/** The object `createEnvelope` returns. */
export interface Envelope {
  /**
   * Seals `plaintext` (bytes, or a string encoded as UTF-8) bound to `context`. Returns the binary envelope.
   * @throws TypeError for bad arguments; KeyfoldError (provider codes) when wrapping fails.
   */
  seal(plaintext: Uint8Array | string, context?: EncryptionContext): Promise<Uint8Array>;
  /** Like `seal`, returning the `kf1.<base64url>` text armor. */
  sealToString(plaintext: Uint8Array | string, context?: EncryptionContext): Promise<string>;
  /**
   * Opens a binary or armored envelope. Returns a fresh buffer the caller owns (and may wipe).
   * @throws DecryptFailedError (DECRYPT_FAILED) for every cryptographic failure; ContextMismatchError;
   *   FormatError / UnsupportedFormatError / LimitExceededError for a malformed header; KeyfoldError NO_PROVIDER
   *   when no configured provider matches a wrapped key; operational provider codes (UNAVAILABLE, ...).
   */
  open(envelope: Uint8Array | string, options?: OpenOptions): Promise<Uint8Array>;
  /** A Transform: plaintext in, framed envelope out. */
  sealStream(context?: EncryptionContext): Transform;
  /** A Transform: envelope in, plaintext out; a frame's plaintext is pushed only after its tag verified. */
  openStream(options?: OpenOptions): Transform;
  /**
   * Wraps the envelope's data key under `to` (default: this envelope's providers) and returns the envelope with
   * the new header; the body bytes are identical (no data re-encryption). Same representation as the input.
   */
  rewrap(envelope: Uint8Array, options?: RewrapOptions): Promise<Uint8Array>;
  rewrap(envelope: string, options?: RewrapOptions): Promise<string>;
  /** Header fields; no key access. @throws FormatError / UnsupportedFormatError / LimitExceededError */
  inspect(envelope: Uint8Array | string): EnvelopeInfo;
  stats(): EnvelopeStats;
  /** Wipes and drops cached data keys. Providers are the caller's and stay open. Idempotent. */
  close(): Promise<void>;
}
