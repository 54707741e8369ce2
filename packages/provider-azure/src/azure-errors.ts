/**
 * Maps Key Vault failures to Keyfold codes. The SDK throws `RestError` with `statusCode` and `code` (the `error.code`
 * of the body) and puts the parsed body in `details` (`{ error: { code, message, innerError } }`); connection
 * failures are RestError `REQUEST_SEND_ERROR` or system errors; credentials throw their own errors.
 * @module
 */
import { KeyfoldError, ProviderError, networkErrorCode, retryAfterFromHeaders, type KeyfoldErrorCode } from '@keyfold/envelope-core';

interface RestErrorLike {
  name?: unknown;
  message?: unknown;
  statusCode?: unknown;
  code?: unknown;
  details?: { error?: { code?: unknown; message?: unknown; innerError?: { code?: unknown } | null } | null } | null;
  cause?: unknown;
}

function innerCode(e: RestErrorLike): string | undefined {
  const inner = e.details?.error?.innerError?.code;
  return typeof inner === 'string' ? inner : undefined;
}

function make(code: KeyfoldErrorCode, message: string, cause: unknown, retryAfterMs?: number): ProviderError {
  return new ProviderError(code, message, { cause, retryAfterMs });
}

/**
 * The delay Key Vault asked for in its 429 / 503 answer: `Retry-After` in seconds ("Azure Key Vault throttling
 * guidance"), or the millisecond headers Azure services also send (`retry-after-ms`, `x-ms-retry-after-ms`).
 */
function retryAfterOf(err: unknown): number | undefined {
  const headers = (err as { response?: { headers?: { get?: unknown } } }).response?.headers;
  if (!headers || typeof headers.get !== 'function') return undefined;
  const get = headers.get.bind(headers) as (name: string) => string | undefined;
  return retryAfterFromHeaders((name) => get(name));
}

interface HeadersLike {
  delete?: (name: string) => void;
}

/**
 * Removes the bearer token from the request a RestError carries (`err.request.headers`, and the one inside
 * `err.response`), so the error kept as `cause` cannot leak it to a log that serialises errors deeply.
 */
function redactToken(err: unknown): void {
  const e = err as { request?: { headers?: HeadersLike }; response?: { request?: { headers?: HeadersLike } } };
  for (const headers of [e.request?.headers, e.response?.request?.headers]) {
    if (headers && typeof headers.delete === 'function') headers.delete('authorization');
  }
}

/**
 * The Keyfold error for a Key Vault failure, or `undefined` when the provider does not recognise it (the base class
 * then reports INTERNAL on wrap and the generic UNWRAP_FAILED on unwrap: a 400 BadParameter on unwrap is "this
 * ciphertext does not decrypt").
 */
export function mapAzureError(err: unknown, keyId: string): KeyfoldError | undefined {
  if (err instanceof KeyfoldError) return err;
  if (err === null || typeof err !== 'object') return undefined;
  const e = err as RestErrorLike;
  const name = typeof e.name === 'string' ? e.name : '';
  const message = typeof e.message === 'string' ? e.message : '';
  if (name === 'CredentialUnavailableError') {
    return make('CONFIG_INVALID', `no Azure credential is available for ${keyId}: configure DefaultAzureCredential (environment, managed identity or az login)`, err);
  }
  if (name === 'AuthenticationError' || name === 'AuthenticationRequiredError') {
    return make('ACCESS_DENIED', `Azure authentication failed for ${keyId}`, err);
  }
  redactToken(err);
  const status = typeof e.statusCode === 'number' ? e.statusCode : undefined;
  if (status !== undefined) {
    const inner = innerCode(e);
    if (status === 401) return make('ACCESS_DENIED', `Key Vault did not accept the token for ${keyId}: check the credential and the tenant`, err);
    if (status === 403) {
      if (inner === 'KeyDisabled' || /disabled/i.test(message)) {
        return make('KEY_DISABLED', `Key Vault key ${keyId}: the key version is disabled; enable it again or unwrap with another version`, err);
      }
      return make('ACCESS_DENIED', `Key Vault refused access to ${keyId}: grant wrapKey/unwrapKey/get (RBAC "Key Vault Crypto User" or an access policy)`, err);
    }
    if (status === 404) {
      return make('KEY_NOT_FOUND', `Key Vault key ${keyId} (or the version asked for) was not found: it was deleted or never existed; a soft-deleted key can be recovered (az keyvault key recover)`, err);
    }
    if (status === 409) return make('UNAVAILABLE', `Key Vault key ${keyId} is in a conflicting state (being deleted or recovered)`, err);
    if (status === 429) return make('THROTTLED', `Key Vault throttled a request on ${keyId}`, err, retryAfterOf(err));
    if (status === 408 || status >= 500) return make('UNAVAILABLE', `Key Vault is unavailable for ${keyId} (HTTP ${status})`, err, retryAfterOf(err));
    return undefined;
  }
  // The SDK's own code for a request it could not send; the system error under it, when there is one, says more.
  const net = networkErrorCode(err) ?? (e.code === 'REQUEST_SEND_ERROR' ? e.code : undefined);
  if (net !== undefined) return make('UNAVAILABLE', `Key Vault could not be reached for ${keyId} (${net})`, err);
  // Checks the SDK makes itself before calling the service.
  if (/expired at|can't be used before/.test(message)) {
    return make('KEY_DISABLED', `Key Vault key ${keyId} is outside its activation window (notBefore / expiresOn)`, err);
  }
  if (/^Operation \w+ is not supported on key/.test(message)) {
    return make('CONFIG_INVALID', `Key Vault key ${keyId} does not allow wrapKey/unwrapKey (key_ops)`, err);
  }
  return undefined;
}
