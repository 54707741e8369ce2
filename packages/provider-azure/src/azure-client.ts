/**
 * The few Key Vault calls the provider makes, described by their shape: `CryptographyClient` and `KeyClient` of
 * `@azure/keyvault-keys` 4.x fit, and so does any object with the same methods (tests and users may inject them).
 * Nothing here loads the SDK until a default client is needed.
 * @module
 */

/**
 * `@azure/core-auth` TokenCredential: any object with `getToken` (DefaultAzureCredential, ClientSecretCredential, ...).
 * @example
 * ```ts
 * const credential: TokenCredentialLike = new DefaultAzureCredential();
 * ```
 */
export interface TokenCredentialLike {
  getToken(scopes: string | string[], options?: object): Promise<{ token: string; expiresOnTimestamp: number } | null>;
}

/** Algorithms this provider wraps with. */
export type AzureWrapAlgorithm = 'RSA-OAEP-256' | 'A256KW';

/** Per-call options the provider passes: the shared deadline's signal. */
export interface AzureCallOptions {
  abortSignal?: AbortSignal;
}

/** Result of wrapKey / unwrapKey. */
export interface KeyOperationResultLike {
  result: Uint8Array;
  keyID?: string;
}

/** The shape of `CryptographyClient` the provider uses. */
export interface CryptographyClientLike {
  wrapKey(algorithm: AzureWrapAlgorithm, key: Uint8Array, options?: AzureCallOptions): Promise<KeyOperationResultLike>;
  unwrapKey(algorithm: AzureWrapAlgorithm, encryptedKey: Uint8Array, options?: AzureCallOptions): Promise<KeyOperationResultLike>;
}

/** Key properties as `KeyClient` returns them. */
export interface KeyPropertiesLike {
  id?: string;
  version?: string;
  enabled?: boolean;
  createdOn?: Date;
  notBefore?: Date;
  expiresOn?: Date;
}

/** A key as `KeyClient.getKey` returns it. */
export interface KeyVaultKeyLike {
  id?: string;
  name: string;
  keyType?: string;
  keyOperations?: string[];
  key?: { n?: Uint8Array; kty?: string };
  properties: KeyPropertiesLike;
}

/** The shape of `KeyClient` the provider uses (describe, rotate). */
export interface KeyClientLike {
  getKey(name: string, options?: { version?: string; abortSignal?: AbortSignal }): Promise<KeyVaultKeyLike>;
  listPropertiesOfKeyVersions(name: string, options?: { abortSignal?: AbortSignal }): AsyncIterable<KeyPropertiesLike>;
  createKey(
    name: string,
    keyType: string,
    options?: { keySize?: number; keyOps?: string[]; abortSignal?: AbortSignal },
  ): Promise<KeyVaultKeyLike>;
}

/**
 * Injected clients: a KeyClient for the vault and a factory of CryptographyClients by versioned kid (for wraps
 * and unwraps, one per version).
 * @example
 * ```ts
 * const clients: AzureKeyVaultClients = {
 *   keyClient: new KeyClient(vaultUrl, credential),
 *   cryptographyClient: (kid) => new CryptographyClient(kid, credential),
 * };
 * ```
 */
export interface AzureKeyVaultClients {
  readonly keyClient: KeyClientLike;
  cryptographyClient(kid: string): CryptographyClientLike;
}

/**
 * Options for the clients the provider creates: passed to `new KeyClient(vaultUrl, credential, options)` and
 * `new CryptographyClient(kid, credential, options)` (`serviceVersion`, `disableChallengeResourceVerification`,
 * `allowInsecureConnection`, `tlsOptions`, `proxyOptions`, `userAgentOptions`, ...). Unless `retryOptions` is given,
 * the provider sets `retryOptions: { maxRetries: 0 }` so that the core's resilience is the only retry loop.
 */
export type AzureClientOptions = Readonly<Record<string, unknown>>;

/** Creates SDK clients for `vaultUrl`, loading `@azure/keyvault-keys` only now. */
export async function createDefaultClients(
  vaultUrl: string,
  credential: TokenCredentialLike,
  options: AzureClientOptions,
): Promise<AzureKeyVaultClients> {
  const sdk = await import('@azure/keyvault-keys');
  const merged = { retryOptions: { maxRetries: 0 }, ...options } as ConstructorParameters<typeof sdk.KeyClient>[2];
  const keyClient = new sdk.KeyClient(vaultUrl, credential, merged);
  return {
    keyClient: keyClient as unknown as KeyClientLike,
    cryptographyClient: (kid: string): CryptographyClientLike => new sdk.CryptographyClient(kid, credential, merged),
  };
}
