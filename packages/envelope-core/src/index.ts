/**
 * @keyfold/envelope-core: the envelope format and API, the KeyProvider interface, the data key cache,
 * shared resilience, the security policy and the errors. No runtime dependencies; loads no vendor SDK.
 * @packageDocumentation
 */
export type {
  EncryptionContext,
  KeyProvider,
  ProbeResult,
  Protection,
  ProviderCapabilities,
  ProviderDescription,
  WrappedKey,
} from './types.js';
export { DATA_KEY_LENGTH } from './types.js';
export {
  ConfigError,
  ContextMismatchError,
  CircuitOpenError,
  DecryptFailedError,
  FormatError,
  KeyfoldError,
  LimitExceededError,
  PolicyError,
  ProviderError,
  TimeoutError,
  UnsupportedFormatError,
  UnwrapFailedError,
  isKeyfoldError,
  isOperationalCode,
} from './errors.js';
export type { KeyfoldErrorCode, KeyfoldErrorOptions } from './errors.js';
export {
  assertBytes,
  assertOwnedKey,
  concatBytes,
  constantTimeEqual,
  copyBytes,
  fromBase64Url,
  lengthPrefixed,
  toBase64Url,
  wipe,
} from './bytes.js';
export { assertContext, contextsEqual, encodeContext, MAX_CONTEXT_ENTRIES, MAX_CONTEXT_FIELD } from './context.js';
export {
  gcmOpen,
  gcmOpenWithIv,
  gcmSeal,
  gcmSealWithRandomIv,
  localUnwrap,
  localWrap,
  localWrapAad,
  randomOwnedBytes,
} from './aead.js';
export { Resilience } from './resilience.js';
export { networkErrorCode } from './network-errors.js';
export { parseRetryAfter, retryAfterFromHeaders } from './retry-after.js';
export type { CircuitBreakerOptions, CircuitState, RateLimitOptions, ResilienceOptions, ResilienceStats, RetryOptions } from './resilience.js';
export { BaseKeyProvider, assertWrappedKey } from './provider-base.js';
export { assertKeyProvider, isKeyProvider } from './provider-shape.js';
export { WriteVersionView, writeUnderVersion } from './write-version.js';
export type { BaseProviderOptions } from './provider-base.js';
export { assertPrivatePath, assertProvidersAllowed, resolveSecurityMode, SECURITY_MODE_ENV } from './policy.js';
export type { PermissionCheck, SecurityMode } from './policy.js';
export { createEnvelope, DEFAULT_FRAME_SIZE } from './envelope.js';
export { inspectEnvelope } from './inspect.js';
export type {
  Envelope,
  EnvelopeInfo,
  EnvelopeOptions,
  EnvelopePolicy,
  EnvelopeStats,
  ProviderResilienceStats,
  OpenOptions,
  RewrapOptions,
} from './envelope-types.js';
export { armor, dearmor, isArmored, DEFAULT_LIMITS, FORMAT_VERSION, ARMOR_PREFIX } from './format.js';
export { canDetectArmor, looksArmored, skipAsciiWhitespace } from './armor-detect.js';
export type { FormatLimits } from './format.js';
export type { CacheOptions, CacheCounters } from './cache.js';
export { RefreshingValue } from './refreshing-value.js';
export { ATOMIC_TEMP_SUFFIX, atomicTempPath, syncDirectory, writeFileAtomic } from './atomic-write.js';
export type { AtomicWriteOptions } from './atomic-write.js';
