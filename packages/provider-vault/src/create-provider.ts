/**
 * `createVaultTransitProvider`: resolves the address, namespace and credentials (options, else the Vault CLI's
 * environment variables), reads the key once to learn whether it is derived and that it can encrypt, and returns the
 * provider.
 * @module
 */
import { ConfigError, KeyfoldError, ProviderError, resolveSecurityMode, type BaseProviderOptions, type SecurityMode } from '@keyfold/envelope-core';
import { AppRoleAuth, StaticToken, type TokenSource, type VaultAppRole } from './vault-auth.js';
import { mapVaultError } from './vault-errors.js';
import { VaultHttp, type VaultFetch } from './vault-http.js';
import { VaultTransitProvider } from './vault-transit-provider.js';
import { resolveVaultNamespace, vaultKeyId } from './vault-namespace.js';

/**
 * Options of {@link createVaultTransitProvider}.
 * @example
 * ```ts
 * const options: VaultTransitProviderOptions = {
 *   endpoint: 'https://vault.internal:8200',
 *   appRole: { roleId, secretId },
 *   keyName: 'keyfold',
 *   namespace: 'team-a',
 * };
 * ```
 */
export interface VaultTransitProviderOptions extends BaseProviderOptions {
  /** Name of the transit key. */
  keyName: string;
  /** Vault address. Default: `VAULT_ADDR`. */
  endpoint?: string;
  /** A Vault token. Default: `VAULT_TOKEN` (unless `appRole` is given). Not renewed: use a periodic token or AppRole. */
  token?: string;
  /** Log in with AppRole instead of a token; the token is renewed and replaced as needed. */
  appRole?: VaultAppRole;
  /** Mount path of the transit engine. Default `transit`. */
  mount?: string;
  /** Vault Enterprise / HCP namespace. Default: `VAULT_NAMESPACE`. */
  namespace?: string;
  /** Expect a derived key (or not). Default: whatever the key is; a mismatch is a CONFIG_INVALID error. */
  derived?: boolean;
  /** `fetch` to use (proxy, mutual TLS, instrumentation). Default: the global `fetch`. */
  fetch?: VaultFetch;
  /** Items per batch request in `wrapKeys` / `unwrapKeys` / `rewrapKeys`. Default 250. */
  batchSize?: number;
  /** Environment to read `VAULT_ADDR`, `VAULT_TOKEN`, `VAULT_NAMESPACE`, `KEYFOLD_SECURITY_MODE` from. Default `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
  /**
   * `production` (default, or `KEYFOLD_SECURITY_MODE`) refuses a plain `http://` endpoint that is not loopback (the
   * token and data keys would cross the network in clear); `development` allows it.
   */
  securityMode?: SecurityMode;
  /** Clock for token renewal, ms. Default `performance.now`-based; injectable for tests. */
  now?: () => number;
}

const AEAD_TYPES = new Set(['aes128-gcm96', 'aes256-gcm96', 'chacha20-poly1305']);
const NAME = /^[A-Za-z0-9._-]{1,128}$/;
const MOUNT = /^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/;

function nonEmpty(v: unknown, name: string): void {
  if (v !== undefined && (typeof v !== 'string' || v.trim() === '')) throw new TypeError(`${name} must be a non-empty string`);
}

function assertOptions(o: unknown): asserts o is VaultTransitProviderOptions {
  if (o === null || typeof o !== 'object') throw new TypeError('options must be an object with keyName');
  const x = o as Record<string, unknown>;
  if (typeof x.keyName !== 'string' || !NAME.test(x.keyName)) throw new TypeError('keyName must be a transit key name (letters, digits, . _ -)');
  for (const f of ['endpoint', 'token', 'namespace'] as const) nonEmpty(x[f], f);
  if (x.mount !== undefined && (typeof x.mount !== 'string' || !MOUNT.test(x.mount))) throw new TypeError('mount must be a mount path such as transit');
  if (x.token !== undefined && x.appRole !== undefined) throw new TypeError('pass either token or appRole, not both');
  if (x.appRole !== undefined) {
    const a = x.appRole as Record<string, unknown> | null;
    if (a === null || typeof a !== 'object') throw new TypeError('appRole must be { roleId, secretId }');
    nonEmpty(a.roleId, 'appRole.roleId');
    if (typeof a.roleId !== 'string') throw new TypeError('appRole.roleId must be a non-empty string');
    if (typeof a.secretId !== 'function') nonEmpty(a.secretId, 'appRole.secretId');
    if (a.secretId === undefined) throw new TypeError('appRole.secretId must be a string or a function');
    if (a.mount !== undefined && (typeof a.mount !== 'string' || !MOUNT.test(a.mount))) throw new TypeError('appRole.mount must be a mount path such as approle');
  }
  if (x.derived !== undefined && typeof x.derived !== 'boolean') throw new TypeError('derived must be a boolean');
  if (x.fetch !== undefined && typeof x.fetch !== 'function') throw new TypeError('fetch must be a function');
  if (x.batchSize !== undefined && !(Number.isInteger(x.batchSize) && (x.batchSize as number) >= 1 && (x.batchSize as number) <= 10_000)) {
    throw new RangeError(`batchSize must be an integer in [1, 10000]; got ${JSON.stringify(x.batchSize)}`);
  }
  if (x.now !== undefined && typeof x.now !== 'function') throw new TypeError('now must be a function');
}

function checkEndpoint(endpoint: string, mode: SecurityMode): void {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new ConfigError(`Vault address ${JSON.stringify(endpoint)} is not a URL; use e.g. https://vault.example.com:8200`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new ConfigError(`Vault address must be http(s); got ${url.protocol}`);
  const loopback = url.hostname === 'localhost' || url.hostname === '[::1]' || url.hostname.startsWith('127.');
  if (url.protocol === 'http:' && !loopback && mode === 'production') {
    throw new ConfigError(
      `Vault address ${url.origin} is plain http to another host: the token and data keys would cross the network in clear; use https (or securityMode: 'development' for a lab)`,
    );
  }
}

/**
 * Creates a provider for one transit key. Reads the key once (`GET <mount>/keys/<name>`), so the token needs `read`
 * on it, plus `update` on `<mount>/encrypt/<name>`, `decrypt`, `rewrap` and (derived keys) `datakey/plaintext`.
 *
 * @throws TypeError / RangeError for malformed options. ConfigError `CONFIG_INVALID` when no address or credentials
 *   are given or set in the environment, for plain http to a remote host in production, a key type that cannot
 *   encrypt with associated data, or a `derived` option that does not match the key. ProviderError `KEY_NOT_FOUND`
 *   (no such key), `ACCESS_DENIED` (token or AppRole refused), `UNAVAILABLE` (sealed, unreachable), `TIMEOUT`.
 * @example
 * ```ts
 * import { createEnvelope } from '@keyfold/envelope-core';
 * import { createVaultTransitProvider } from '@keyfold/provider-vault';
 *
 * // VAULT_ADDR and VAULT_TOKEN from the environment
 * const vault = await createVaultTransitProvider({ keyName: 'keyfold' });
 * const envelope = createEnvelope({ providers: [vault] });
 * const sealed = await envelope.sealToString('secret', { table: 'users' });
 * ```
 */
export async function createVaultTransitProvider(options: VaultTransitProviderOptions): Promise<VaultTransitProvider> {
  assertOptions(options);
  const env = options.env ?? process.env;
  const endpoint = options.endpoint ?? env.VAULT_ADDR;
  if (!endpoint) throw new ConfigError('no Vault address: pass endpoint, or set VAULT_ADDR (e.g. https://vault.example.com:8200)');
  checkEndpoint(endpoint, resolveSecurityMode(options.securityMode, env));
  const namespace = resolveVaultNamespace(options.namespace, env);
  const now = options.now ?? (() => performance.now());
  let auth: TokenSource;
  if (options.appRole) auth = new AppRoleAuth(options.appRole, now);
  else {
    const token = options.token ?? env.VAULT_TOKEN;
    if (!token) throw new ConfigError('no Vault credentials: pass token or appRole, or set VAULT_TOKEN');
    auth = new StaticToken(token);
  }
  const http = new VaultHttp(endpoint, namespace, options.fetch ?? ((url, init) => fetch(url, init)));
  const mount = options.mount ?? 'transit';
  const keyId = vaultKeyId(namespace, mount, options.keyName);
  const r = options.resilience;
  const deadline = r === false || r?.deadlineMs === undefined ? 10_000 : r.deadlineMs;
  let data: Record<string, unknown> | undefined;
  try {
    const signal = deadline === false ? new AbortController().signal : AbortSignal.timeout(deadline);
    const read = async (): Promise<Record<string, unknown> | undefined> => {
      const token = await auth.token(http, signal);
      return (await http.request({ method: 'GET', path: `${mount}/keys/${encodeURIComponent(options.keyName)}`, token, signal })).data;
    };
    data = await read();
  } catch (err) {
    if (err instanceof Error && err.name === 'TimeoutError' && !(err instanceof KeyfoldError)) {
      throw new ProviderError('TIMEOUT', `Vault did not answer the read of ${keyId} within ${String(deadline)} ms`, { cause: err });
    }
    throw (err instanceof KeyfoldError ? err : mapVaultError(err, keyId)) ?? new ProviderError('INTERNAL', `reading ${keyId} failed unexpectedly`, { cause: err });
  }
  if (!data) throw new ProviderError('INTERNAL', `Vault returned no data for ${keyId}`);
  const type = typeof data.type === 'string' ? data.type : 'unknown';
  if (!AEAD_TYPES.has(type) || data.supports_encryption === false || data.supports_decryption === false) {
    throw new ConfigError(`Vault transit key ${keyId} has type ${type}; a KEK must be one of ${[...AEAD_TYPES].join(', ')}`);
  }
  const derived = data.derived === true;
  if (options.derived !== undefined && options.derived !== derived) {
    throw new ConfigError(`Vault transit key ${keyId} is ${derived ? '' : 'not '}a derived key, but derived: ${String(options.derived)} was given`);
  }
  if (data.convergent_encryption === true) {
    throw new ConfigError(`Vault transit key ${keyId} uses convergent encryption (deterministic nonces): use a non-convergent key as a KEK`);
  }
  const base: BaseProviderOptions = options.resilience === undefined ? {} : { resilience: options.resilience };
  return new VaultTransitProvider({ http, auth, mount, keyName: options.keyName, derived, batchSize: options.batchSize ?? 250 }, base);
}
