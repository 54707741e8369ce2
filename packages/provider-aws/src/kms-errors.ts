/**
 * Maps AWS SDK / KMS errors to Keyfold codes. The SDK names service errors by the `__type` KMS sent
 * (`NotFoundException`, `ThrottlingException`, ...); connection failures carry a Node `code`
 * (classified by the core's `networkErrorCode`). Ciphertext errors
 * (InvalidCiphertextException, IncorrectKeyException, ValidationException) are deliberately not mapped: on unwrap the
 * base class turns them into the one generic UNWRAP_FAILED.
 * @module
 */
import { ConfigError, ProviderError, networkErrorCode, parseRetryAfter, type KeyfoldError } from '@keyfold/envelope-core';

const THROTTLING = new Set(['ThrottlingException', 'LimitExceededException', 'TooManyRequestsException', 'RequestLimitExceeded']);
const UNAVAILABLE = new Set([
  'KMSInternalException',
  'KeyUnavailableException',
  'DependencyTimeoutException',
  'ServiceUnavailableException',
  'ServiceUnavailable',
  'InternalFailure',
  'CloudHsmClusterNotActiveException',
  'CustomKeyStoreInvalidStateException',
]);
const DENIED = new Set([
  'AccessDeniedException',
  'UnrecognizedClientException',
  'InvalidSignatureException',
  'IncompleteSignatureException',
  'SignatureDoesNotMatch',
  'ExpiredTokenException',
  'ExpiredToken',
  'InvalidClientTokenId',
  'MissingAuthenticationTokenException',
  'InvalidGrantTokenException',
]);
function statusOf(err: Error): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

/**
 * The delay the service asked for before a retry, read from the raw response the SDK keeps on the error
 * (`$response.headers`): `x-amz-retry-after` (ms) or `Retry-After`, the headers the SDK's own retry strategy honours
 * (@smithy/core retry `parseRetryAfterHeader`). KMS documents no such header; the provider reads it where it comes.
 */
function retryAfterOf(err: Error): number | undefined {
  const headers = (err as { $response?: { headers?: Record<string, string | undefined> } }).$response?.headers;
  if (!headers || typeof headers !== 'object') return undefined;
  let amz: string | undefined;
  let standard: string | undefined;
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    if (lower === 'x-amz-retry-after') amz = value;
    else if (lower === 'retry-after') standard = value;
  }
  if (typeof amz === 'string' && /^\d{1,9}$/.test(amz.trim())) return Number(amz.trim());
  return parseRetryAfter(standard);
}

/**
 * KMSInvalidStateException names the key's state in its message (`<arn> is pending deletion.`); each state of the
 * key state table ("Key states of AWS KMS keys", key-state.html) gets its code and what to do:
 * - PendingDeletion, PendingImport: the key cannot be used until an operator acts: KEY_DISABLED;
 * - Unavailable (a custom key store that is disconnected) and the transient multi-Region states Creating / Updating:
 *   the key is fine but out of reach for now: UNAVAILABLE (retried, counted by the circuit breaker);
 * - any other state: KEY_DISABLED with KMS's message.
 */
function invalidStateError(err: Error, arn: string): KeyfoldError {
  const cause = { cause: err };
  const m = err.message;
  if (/pending deletion/i.test(m) || /pending replica deletion/i.test(m)) {
    return new ProviderError('KEY_DISABLED', `AWS KMS key ${arn} is pending deletion (KMSInvalidStateException): cancel the deletion (aws kms cancel-key-deletion) and enable the key to use it`, cause);
  }
  if (/pending import/i.test(m)) {
    return new ProviderError('KEY_DISABLED', `AWS KMS key ${arn} has no key material (PendingImport, KMSInvalidStateException): import its key material again (aws kms import-key-material)`, cause);
  }
  if (/unavailable/i.test(m)) {
    return new ProviderError('UNAVAILABLE', `AWS KMS key ${arn} is unavailable (KMSInvalidStateException): its custom key store is disconnected; reconnect it (aws kms connect-custom-key-store)`, cause);
  }
  if (/\bis (creating|updating)\b/i.test(m)) {
    return new ProviderError('UNAVAILABLE', `AWS KMS key ${arn} is in a transient multi-Region state (KMSInvalidStateException: ${m}); retry shortly`, cause);
  }
  return new ProviderError('KEY_DISABLED', `AWS KMS key ${arn} is not usable in its current state (KMSInvalidStateException): ${m}`, cause);
}

/**
 * Maps one error of a KMS call for key `arn`; `undefined` for errors this function does not recognise.
 * @example
 * ```ts
 * mapKmsError(err, arn)?.code; // 'KEY_DISABLED' for a DisabledException
 * ```
 */
export function mapKmsError(err: unknown, arn: string): KeyfoldError | undefined {
  if (!(err instanceof Error)) return undefined;
  const name = err.name;
  const cause = { cause: err };
  if (name === 'NotFoundException') {
    return new ProviderError('KEY_NOT_FOUND', `AWS KMS key ${arn} was not found (NotFoundException): check the key id, the region and the account`, cause);
  }
  if (name === 'DisabledException') {
    return new ProviderError('KEY_DISABLED', `AWS KMS key ${arn} is disabled (DisabledException): enable it (aws kms enable-key) to use it`, cause);
  }
  if (name === 'KMSInvalidStateException') return invalidStateError(err, arn);
  if (THROTTLING.has(name) || statusOf(err) === 429) {
    return new ProviderError('THROTTLED', `AWS KMS throttled the request for ${arn} (${name})`, { ...cause, retryAfterMs: retryAfterOf(err) });
  }
  if (DENIED.has(name)) {
    return new ProviderError('ACCESS_DENIED', `AWS KMS refused the request for ${arn} (${name}): check the IAM policy, the key policy, grants and the credentials`, cause);
  }
  if (name === 'CredentialsProviderError') {
    return new ConfigError(`no AWS credentials: the SDK's default chain found none (${err.message}); set AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or an IAM role, or pass credentials`, cause);
  }
  if (name === 'InvalidKeyUsageException' || name === 'UnsupportedOperationException') {
    return new ConfigError(`AWS KMS key ${arn} cannot be used this way (${name}): it must be an ENCRYPT_DECRYPT key`, cause);
  }
  if (/region is missing/i.test(err.message)) {
    return new ConfigError('no AWS region: pass region, or set AWS_REGION', cause);
  }
  if (UNAVAILABLE.has(name) || (statusOf(err) ?? 0) >= 500) {
    return new ProviderError('UNAVAILABLE', `AWS KMS is unavailable for ${arn} (${name})`, { ...cause, retryAfterMs: retryAfterOf(err) });
  }
  // The SDK's request handler names its socket timeout TimeoutError; every other transport failure has a code.
  const net = networkErrorCode(err) ?? (name === 'TimeoutError' ? name : undefined);
  if (net !== undefined) {
    return new ProviderError('UNAVAILABLE', `AWS KMS could not be reached for ${arn} (${net})`, cause);
  }
  return undefined;
}
