/**
 * What a provider package hands to the conformance suite.
 * @module
 */
import type { EncryptionContext, KeyfoldErrorCode, KeyProvider, WrappedKey } from '@keyfold/envelope-core';

/**
 * A provider whose backend fails, for the `backend errors` check.
 * @example
 * ```ts
 * const failing: FailingBackend = { provider: makeProvider({ endpoint: emulator.outageUrl }), expectCode: 'UNAVAILABLE' };
 * ```
 */
export interface FailingBackend {
  /** A provider wired to a backend that fails every call (an emulator in outage mode, a stub SDK client). */
  readonly provider: KeyProvider;
  /** The code the failure must surface as (`UNAVAILABLE`, `ACCESS_DENIED`, `KEY_NOT_FOUND`, ...). */
  readonly expectCode: KeyfoldErrorCode;
  /** A wrapped key for `provider`, so `unwrapKey` reaches the failing backend too. Without it only `wrapKey` runs. */
  readonly wrapped?: WrappedKey;
  /** The context `wrapped` was made with. Default `{}`. */
  readonly context?: EncryptionContext;
}

/**
 * The provider under test: how to make one, and the optional hooks that unlock more checks.
 * @example
 * ```ts
 * const target: ConformanceTarget = { makeProvider: () => createMemoryProvider({ securityMode: 'development' }) };
 * ```
 */
export interface ConformanceTarget {
  /**
   * Makes a ready provider. Every call must return a provider with a **fresh, independent KEK** (a new key, a
   * new random env value, a new KEK file): the `foreign KEK` check wraps under one and unwraps under another,
   * and a provider that shares its KEK across calls fails it.
   */
  readonly makeProvider: () => Promise<KeyProvider> | KeyProvider;
  /**
   * Rotates `provider` to a new KEK version and returns a provider whose active version is that new one: the same
   * object (a provider with `rotate()`), or a new one (an env provider made with one more variable). Without it,
   * the `rotation` check asserts that the provider does not claim `capabilities.rotate`.
   */
  readonly rotate?: (provider: KeyProvider) => Promise<KeyProvider> | KeyProvider;
  /** Makes a provider whose backend fails; enables the `backend errors` check. */
  readonly makeFailingProvider?: () => Promise<FailingBackend> | FailingBackend;
  /** Concurrent calls in the `concurrency` check. Default 200. */
  readonly concurrency?: number;
}
