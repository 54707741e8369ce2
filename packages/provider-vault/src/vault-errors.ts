/**
 * Maps Vault answers to Keyfold codes: 403 ACCESS_DENIED, 503 (sealed) UNAVAILABLE, 429 THROTTLED, 473 / 5xx /
 * no answer UNAVAILABLE (except a 500 that names a ciphertext that does not decrypt: older Vault's answer to bad
 * data, left unmapped), "encryption key not found" KEY_NOT_FOUND, "disallowed by policy (too old)"
 * KEY_VERSION_RETIRED. Other 400s (a bad or inauthentic ciphertext, "message authentication failed") are deliberately
 * not mapped: on unwrap the base class turns them into the one generic UNWRAP_FAILED.
 * @module
 */
import { ConfigError, ProviderError, networkErrorCode, type KeyfoldError } from '@keyfold/envelope-core';
import { VaultApiError, VaultConnectionError } from './vault-http.js';

/** Vault error texts that name a ciphertext that does not decrypt (Go's AEAD / RSA errors, keysutil's own). */
const CIPHERTEXT_PROBLEM = /message authentication failed|invalid ciphertext|failed to (?:RSA )?decrypt|decryption error/i;

/**
 * Maps an error of a call on the key `keyId`; `undefined` for errors it does not recognise.
 * @example
 * ```ts
 * mapVaultError(new VaultApiError(503, ['Vault is sealed'], 'transit/encrypt/k'), 'transit/keys/k')?.code; // 'UNAVAILABLE'
 * ```
 */
export function mapVaultError(err: unknown, keyId: string): KeyfoldError | undefined {
  const cause = { cause: err };
  if (err instanceof VaultConnectionError) {
    const net = networkErrorCode(err.cause);
    return new ProviderError('UNAVAILABLE', `Vault could not be reached for ${keyId} (${err.path}${net === undefined ? '' : `: ${net}`})`, cause);
  }
  if (!(err instanceof VaultApiError)) return undefined;
  const text = err.errors.join('; ');
  switch (err.status) {
    case 403:
      return new ProviderError('ACCESS_DENIED', `Vault denied ${err.path} for ${keyId} (403 permission denied): check that the token is valid and its policy allows the path`, cause);
    case 429:
      // A rate limit quota says how long to wait (Retry-After, hashicorp/vault vault/quotas/quotas_rate_limit.go).
      return new ProviderError('THROTTLED', `Vault throttled ${err.path} for ${keyId} (429${text ? `: ${text}` : ''})`, { ...cause, retryAfterMs: err.retryAfterMs });
    case 503:
      return new ProviderError(
        'UNAVAILABLE',
        /sealed/i.test(text) ? `Vault is sealed (503): unseal it to use ${keyId}` : `Vault is unavailable for ${keyId} (503${text ? `: ${text}` : ''})`,
        cause,
      );
    case 404:
      if (/keys\//.test(err.path)) return new ProviderError('KEY_NOT_FOUND', `Vault transit key ${keyId} does not exist (404)`, cause);
      return new ConfigError(`Vault has no route ${err.path} (404): check the endpoint, the mount and the namespace`, cause);
    default:
      break;
  }
  if (err.status >= 300 && err.status < 400) {
    return new ConfigError(
      `Vault ${text} for ${err.path}: the provider does not follow redirects with the token; set endpoint to the active node or a load balancer`,
      cause,
    );
  }
  // Older Vault versions (and RSA transit keys today) answer a ciphertext that does not decrypt with a 500: keysutil
  // returned an InternalError for a failed `aead.Open` / `rsa.DecryptOAEP` (hashicorp/vault sdk/helper/keysutil/
  // policy.go, Policy.Decrypt). That is bad data, not an outage: left unmapped, so it is never retried and an unwrap
  // reports the one generic UNWRAP_FAILED.
  if (err.status === 500 && CIPHERTEXT_PROBLEM.test(text)) return undefined;
  if (err.status === 473 || err.status === 412 || err.status >= 500) {
    return new ProviderError('UNAVAILABLE', `Vault is unavailable for ${keyId} (${err.status}${text ? `: ${text}` : ''})`, cause);
  }
  if (err.status === 400) {
    if (/encryption key not found|^key not found|^policy not found/i.test(text)) return new ProviderError('KEY_NOT_FOUND', `Vault transit key ${keyId} does not exist`, cause);
    if (/too old/i.test(text)) {
      return new ProviderError('KEY_VERSION_RETIRED', `the key version is below min_decryption_version of ${keyId}: it was retired in Vault and no longer decrypts`, cause);
    }
    if (/invalid role or secret id|invalid role id|invalid secret id/i.test(text)) {
      return new ProviderError('ACCESS_DENIED', `Vault AppRole login was refused (${text}): check role_id and secret_id`, cause);
    }
    if (/missing 'context' for key derivation/i.test(text)) {
      return new ConfigError(`Vault transit key ${keyId} is a derived key but the provider sent no context: create the provider with derived: true`, cause);
    }
  }
  return undefined;
}
