/**
 * Azure Key Vault / Managed HSM key provider: wrapKey / unwrapKey through `CryptographyClient` with RSA-OAEP-256
 * (RSA and RSA-HSM keys) or A256KW (oct-HSM keys of a Managed HSM), the encryption context bound by a keyed digest
 * stored beside the wrapped key (see `context-tag.ts` for the construction and why it holds).
 *
 * Retries: the clients the provider creates have the SDK's retry policy switched off (`retryOptions.maxRetries: 0`)
 * so the core's shared resilience (full-jitter retries for THROTTLED / UNAVAILABLE, a deadline whose signal is
 * passed to the SDK as `abortSignal`, a circuit breaker) is the one retry loop.
 * @module
 */
import {
  BaseKeyProvider,
  ConfigError,
  ProviderError,
  Resilience,
  UnwrapFailedError,
  wipe,
  type BaseProviderOptions,
  type EncryptionContext,
  KeyfoldError,
  type ProviderDescription,
  type Protection,
  type WrappedKey,
  RefreshingValue,
} from '@keyfold/envelope-core';
import {
  createDefaultClients,
  type AzureClientOptions,
  type AzureKeyVaultClients,
  type AzureWrapAlgorithm,
  type CryptographyClientLike,
  type KeyVaultKeyLike,
  type TokenCredentialLike,
} from './azure-client.js';
import { mapAzureError } from './azure-errors.js';
import { contextTag, openStored, sealStored, tagMatches, type TagBinding } from './context-tag.js';
import { parseKid, VERSION, type ParsedKid } from './kid.js';

/**
 * The `kind` of wrapped keys made by this provider.
 * @example
 * ```ts
 * envelope.inspect(sealed).wrappedKeys.filter((w) => w.kind === AZURE_KV_KIND);
 * ```
 */
export const AZURE_KV_KIND = 'azure-kv';

const ALGORITHMS: Readonly<Record<AzureWrapAlgorithm, readonly string[]>> = {
  'RSA-OAEP-256': ['RSA', 'RSA-HSM'],
  A256KW: ['oct-HSM', 'oct'],
};

const DEFAULT_VERSION_REFRESH_MS = 60_000;

/** At most this many versioned CryptographyClients are kept (one per KEK version). */
const MAX_VERSION_CLIENTS = 64;
/** Errors that mean a cached version may be out of date: it was disabled or destroyed since it was read. */
const STALE_VERSION = new Set(['KEY_DISABLED', 'KEY_NOT_FOUND']);

/**
 * Options of {@link createAzureKeyVaultProvider}.
 * @example
 * ```ts
 * const options: AzureKeyVaultProviderOptions = {
 *   keyId: 'https://my-hsm.managedhsm.azure.net/keys/kek',
 *   algorithm: 'A256KW',
 *   credential: new DefaultAzureCredential(),
 * };
 * ```
 */
export interface AzureKeyVaultProviderOptions extends BaseProviderOptions {
  /**
   * The key's kid: versionless (`https://V.vault.azure.net/keys/NAME`: wraps use the latest version, recorded as
   * `keyVersion`) or versioned (`.../keys/NAME/VERSION`: wraps use that version only, and `rotate()` is refused).
   */
  keyId: string;
  /**
   * Any `TokenCredential` of `@azure/identity` (`DefaultAzureCredential` is the usual choice). Required unless
   * `clients` is given.
   */
  credential?: TokenCredentialLike;
  /** `RSA-OAEP-256` (default; RSA / RSA-HSM keys) or `A256KW` (oct-HSM keys on a Managed HSM). */
  algorithm?: AzureWrapAlgorithm;
  /** Options for the SDK clients the provider creates (see {@link AzureClientOptions}). */
  clientOptions?: AzureClientOptions;
  /** Ready clients instead of `credential` + `clientOptions`; the caller keeps ownership. */
  clients?: AzureKeyVaultClients;
  /**
   * With a versionless kid: how long the key's current version, read with GET key, is reused for new wraps, in ms.
   * A rotation made elsewhere is picked up after at most this long (`rotate()` on this provider takes effect at
   * once). Default 60,000.
   */
  versionRefreshMs?: number;
}

/**
 * A KeyProvider backed by one Key Vault or Managed HSM key. Create it with {@link createAzureKeyVaultProvider}.
 *
 * `keyId` is the versionless kid; `keyVersion` of a wrapped key is the 32-hex version Key Vault reported using.
 * `protection` is `hsm` for `-HSM` key types, `kms` otherwise.
 *
 * Methods throw what `BaseKeyProvider` documents: TypeError / RangeError for caller mistakes, `UNWRAP_FAILED` for a
 * ciphertext that does not unwrap or whose context tag does not match, mapped codes (`KEY_NOT_FOUND`,
 * `KEY_DISABLED`, `ACCESS_DENIED`, `THROTTLED`, `UNAVAILABLE`, `TIMEOUT`) for the backend, `PROVIDER_CLOSED` after
 * `close()`.
 * @example
 * ```ts
 * const provider: AzureKeyVaultProvider = await createAzureKeyVaultProvider({ keyId, credential });
 * const wrapped = await provider.wrapKey(dataKey, { tenant: 'acme' }); // wrapped.keyVersion: 32 hex digits
 * ```
 */
export class AzureKeyVaultProvider extends BaseKeyProvider {
  readonly kind = AZURE_KV_KIND;
  readonly keyId: string;
  readonly protection: Protection;
  /** The wrap algorithm. */
  readonly algorithm: AzureWrapAlgorithm;
  readonly #kid: ParsedKid;
  readonly #clients: AzureKeyVaultClients;
  readonly #current: RefreshingValue<string>;
  readonly #versionClients = new Map<string, CryptographyClientLike>();
  readonly #keyType: string;
  readonly #keySize: number | undefined;

  /** @internal Use {@link createAzureKeyVaultProvider}. */
  constructor(
    options: AzureKeyVaultProviderOptions,
    kid: ParsedKid,
    clients: AzureKeyVaultClients,
    key: KeyVaultKeyLike,
  ) {
    super(options.resilience === undefined ? {} : { resilience: options.resilience });
    this.keyId = kid.keyId;
    this.#kid = kid;
    this.#clients = clients;
    this.algorithm = options.algorithm ?? 'RSA-OAEP-256';
    this.#keyType = key.keyType ?? '';
    this.#keySize = key.key?.n instanceof Uint8Array ? key.key.n.length * 8 : undefined;
    this.protection = this.#keyType.endsWith('-HSM') ? 'hsm' : 'kms';
    this.#current = new RefreshingValue(async () => {
      const latest = await this.#clients.keyClient.getKey(this.#kid.name);
      const version = latest.properties.version;
      if (typeof version !== 'string' || !VERSION.test(version)) {
        throw new ProviderError('INTERNAL', `Key Vault returned no version for ${this.keyId}`);
      }
      return version;
    }, options.versionRefreshMs ?? DEFAULT_VERSION_REFRESH_MS);
    const version = kid.version ?? key.properties.version;
    if (typeof version === 'string' && VERSION.test(version)) this.#current.set(version);
  }

  /** The version new wraps are pinned to, when the provider was created with a versioned kid. */
  get pinnedVersion(): string | undefined {
    return this.#kid.version;
  }

  protected override get capabilities(): ProviderDescription['capabilities'] {
    return { generateDataKey: false, rewrapKey: false, rotate: this.#kid.version === undefined, writeVersion: this.addressesVersions };
  }

  /**
   * With a versionless kid, any version of the key can be written under (its version goes in the URL); a provider
   * created with a versioned kid writes under that version only.
   */
  protected override get addressesVersions(): boolean {
    return this.#kid.version === undefined;
  }

  protected override _writeVersionProblem(version: string, signal: AbortSignal): Promise<string | undefined> {
    if (this.#kid.version !== undefined) return super._writeVersionProblem(version, signal);
    // Whether the version exists and is enabled is Key Vault's answer to the wrap itself.
    return Promise.resolve(VERSION.test(version) ? undefined : `${JSON.stringify(version)} is not a Key Vault key version (32 hex characters)`);
  }

  protected override mapBackendError(err: unknown): KeyfoldError | undefined {
    return mapAzureError(err, this.keyId);
  }

  #binding(version: string): TagBinding {
    return { kind: this.kind, keyId: this.keyId, version, algorithm: this.algorithm };
  }

  #clientFor(version: string): CryptographyClientLike {
    let client = this.#versionClients.get(version);
    if (!client) {
      client = this.#clients.cryptographyClient(`${this.keyId}/${version}`);
      if (this.#versionClients.size >= MAX_VERSION_CLIENTS) {
        const oldest = this.#versionClients.keys().next().value;
        if (oldest !== undefined) this.#versionClients.delete(oldest);
      }
      this.#versionClients.set(version, client);
    }
    return client;
  }

  /** The version in a kid Key Vault returned, checked to be a version of this provider's key. */
  #versionOf(keyID: string): string {
    const parsed = parseKid(keyID);
    if (!parsed || parsed.version === undefined || parsed.name !== this.#kid.name || parsed.vaultUrl.toLowerCase() !== this.#kid.vaultUrl.toLowerCase()) {
      throw new ProviderError('INTERNAL', `Key Vault answered a wrap for ${this.keyId} with an unexpected key id (${keyID})`);
    }
    return parsed.version;
  }

  /**
   * New wraps use the pinned version, or the key's current version read with GET key and reused for
   * `versionRefreshMs` (one read at a time, shared by every wrap waiting for it, so not cancelled by one caller's
   * deadline). Wraps always go through a *versioned* CryptographyClient: a versionless one reports the kid of the
   * version it fetched when it was first used (SDK 4.10 `RemoteCryptographyProvider.getKeyID`), not the one Key
   * Vault wrapped with, so after a rotation it would label new wraps with the old version.
   */
  protected _wrapKey(dataKey: Uint8Array, context: EncryptionContext, signal: AbortSignal, version?: string): Promise<WrappedKey> {
    if (version !== undefined) return this.#wrapUnder(dataKey, context, version, signal);
    if (this.#kid.version !== undefined) return this.#wrap(dataKey, context, this.#kid.version, signal);
    // A cached current version may have been disabled since it was read (a rotation made elsewhere): the shared
    // refresh reads the key again, once, and uses its new current version if there is one.
    return this.#current.useFresh(
      (version) => this.#wrap(dataKey, context, version, signal),
      (err) => STALE_VERSION.has(mapAzureError(err, this.keyId)?.code ?? ''),
    );
  }


  /** Wraps under `version` (the key store's choice), naming it when Key Vault cannot use it. */
  async #wrapUnder(dataKey: Uint8Array, context: EncryptionContext, version: string, signal: AbortSignal): Promise<WrappedKey> {
    try {
      return await this.#wrap(dataKey, context, version, signal);
    } catch (err) {
      const mapped = err instanceof KeyfoldError ? err : mapAzureError(err, this.keyId);
      if (mapped?.code === 'KEY_NOT_FOUND' || mapped?.code === 'KEY_DISABLED') {
        throw new ProviderError(
          mapped.code,
          `version ${version} of ${this.keyId} is the version to write under, but Key Vault cannot wrap with it ` +
            `(${mapped.code === 'KEY_NOT_FOUND' ? 'no such version' : 'it is disabled or expired'}): enable it ` +
            '(az keyvault key set-attributes --version ...), or activate a version that is enabled. Nothing was written',
          { cause: err },
        );
      }
      throw err;
    }
  }

  async #wrap(dataKey: Uint8Array, context: EncryptionContext, version: string, signal: AbortSignal): Promise<WrappedKey> {
    const result = await this.#clientFor(version).wrapKey(this.algorithm, dataKey, { abortSignal: signal });
    if (result.keyID !== undefined && this.#versionOf(result.keyID) !== version) {
      throw new ProviderError('INTERNAL', `Key Vault wrapped under another version than ${version} of ${this.keyId}`);
    }
    if (!(result.result instanceof Uint8Array) || result.result.length === 0) {
      throw new ProviderError('INTERNAL', `Key Vault returned an empty wrapped key for ${this.keyId}`);
    }
    const tag = contextTag(dataKey, this.#binding(version), context);
    return { kind: this.kind, keyId: this.keyId, keyVersion: version, ciphertext: sealStored(result.result, tag) };
  }

  protected async _unwrapKey(wrapped: WrappedKey, context: EncryptionContext, signal: AbortSignal): Promise<Uint8Array> {
    // Refused without a call: not a version Key Vault could have reported, or not a layout this provider wrote.
    if (!VERSION.test(wrapped.keyVersion)) throw new UnwrapFailedError();
    const stored = openStored(wrapped.ciphertext);
    if (!stored) throw new UnwrapFailedError();
    const result = await this.#clientFor(wrapped.keyVersion).unwrapKey(this.algorithm, stored.wrapped, { abortSignal: signal });
    const sdkKey = result.result;
    const key = new Uint8Array(sdkKey instanceof Uint8Array ? sdkKey.length : 0);
    if (sdkKey instanceof Uint8Array) {
      key.set(sdkKey);
      sdkKey.fill(0);
    }
    if (key.length !== 32 || !tagMatches(key, this.#binding(wrapped.keyVersion), context, stored.tag)) {
      wipe(key);
      throw new UnwrapFailedError();
    }
    return key;
  }

  protected async _describe(signal: AbortSignal): Promise<ProviderDescription> {
    const latest = await this.#clients.keyClient.getKey(this.#kid.name, { abortSignal: signal });
    const active = this.#kid.version ?? latest.properties.version;
    if (typeof active !== 'string' || !VERSION.test(active)) {
      throw new ProviderError('INTERNAL', `Key Vault returned no version for ${this.keyId}`);
    }
    if (this.#kid.version === undefined) this.#current.set(active);
    const found: { version: string; created: number }[] = [];
    for await (const props of this.#clients.keyClient.listPropertiesOfKeyVersions(this.#kid.name, { abortSignal: signal })) {
      if (props.enabled === false || typeof props.version !== 'string' || !VERSION.test(props.version)) continue;
      found.push({ version: props.version, created: props.createdOn instanceof Date ? props.createdOn.getTime() : 0 });
    }
    // Stable: versions created in the same second keep the service's order.
    found.sort((a, b) => a.created - b.created);
    const versions = found.map((f) => f.version);
    if (!versions.includes(active)) versions.push(active);
    return {
      kind: this.kind,
      keyId: this.keyId,
      protection: this.protection,
      activeVersion: active,
      versions,
      capabilities: this.capabilities,
      details: {
        vaultUrl: this.#kid.vaultUrl,
        keyName: this.#kid.name,
        keyType: latest.keyType ?? this.#keyType,
        algorithm: this.algorithm,
        pinned: this.#kid.version !== undefined,
      },
    };
  }

  /**
   * Rotates the KEK: creates a new version of the key (same key type and size); new wraps use it at once, and
   * every earlier enabled version keeps unwrapping. Needs the `create` key permission ("Key Vault Crypto Officer").
   * @returns the new version.
   * @throws ConfigError (CONFIG_INVALID) when the provider was created with a versioned kid; KeyfoldError with a
   *   mapped code (ACCESS_DENIED, KEY_NOT_FOUND, UNAVAILABLE, ...); PROVIDER_CLOSED.
   * @example
   * ```ts
   * const version = await provider.rotate();
   * ```
   */
  async rotate(): Promise<string> {
    this.assertOpen();
    if (this.#kid.version !== undefined) {
      throw new ConfigError(`the provider for ${this.keyId} is pinned to version ${this.#kid.version}; rotate with a versionless kid`);
    }
    try {
      return await this.runBackend('rotate', async (signal) => {
        const created = await this.#clients.keyClient.createKey(this.#kid.name, this.#keyType, {
          ...(this.#keySize !== undefined ? { keySize: this.#keySize } : this.algorithm === 'A256KW' ? { keySize: 256 } : {}),
          keyOps: ['wrapKey', 'unwrapKey'],
          abortSignal: signal,
        });
        const version = created.properties.version;
        if (typeof version !== 'string' || !VERSION.test(version)) {
          throw new ProviderError('INTERNAL', `Key Vault returned no version for the new version of ${this.keyId}`);
        }
        this.#current.set(version);
        return version;
      });
    } catch (err) {
      throw this.mapBackendError(err) ?? new ProviderError('INTERNAL', `rotating ${this.keyId} failed`, { cause: err });
    }
  }

  protected override _close(): Promise<void> {
    this.#versionClients.clear();
    this.#current.clear();
    return Promise.resolve();
  }
}

function assertOptions(options: AzureKeyVaultProviderOptions): ParsedKid {
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  if (typeof options.keyId !== 'string') throw new TypeError('options.keyId must be a string');
  const kid = parseKid(options.keyId);
  if (!kid) {
    throw new TypeError(
      `options.keyId must be a Key Vault kid "https://VAULT.vault.azure.net/keys/NAME[/VERSION]" (VERSION: 32 hex digits); got "${options.keyId}"`,
    );
  }
  const algorithm = options.algorithm ?? 'RSA-OAEP-256';
  if (!(algorithm in ALGORITHMS)) throw new TypeError(`options.algorithm must be "RSA-OAEP-256" or "A256KW"; got "${String(algorithm)}"`);
  if (options.clients === undefined) {
    if (options.credential === null || typeof options.credential !== 'object' || typeof options.credential.getToken !== 'function') {
      throw new TypeError('options.credential must be a TokenCredential (an object with getToken), e.g. new DefaultAzureCredential()');
    }
  } else if (options.clients === null || typeof options.clients.cryptographyClient !== 'function' || typeof options.clients.keyClient !== 'object') {
    throw new TypeError('options.clients must be { keyClient, cryptographyClient(kid) }');
  }
  const r = options.versionRefreshMs;
  if (r !== undefined && !(Number.isFinite(r) && r >= 0)) throw new RangeError(`options.versionRefreshMs must be a number >= 0; got ${r}`);
  return kid;
}

/**
 * Creates a Key Vault provider for one key. Reads the key once (GET key) to check that it exists, that its type
 * fits the algorithm (RSA / RSA-HSM for RSA-OAEP-256, oct-HSM for A256KW) and that it allows wrapKey/unwrapKey.
 *
 * @throws TypeError for malformed options; ConfigError (CONFIG_INVALID) when the key does not fit the algorithm;
 *   KeyfoldError `KEY_NOT_FOUND`, `KEY_DISABLED`, `ACCESS_DENIED`, `UNAVAILABLE`, ... when it cannot be read.
 * @example
 * ```ts
 * import { DefaultAzureCredential } from '@azure/identity';
 * import { createEnvelope } from '@keyfold/envelope-core';
 * import { createAzureKeyVaultProvider } from '@keyfold/provider-azure';
 *
 * const provider = await createAzureKeyVaultProvider({
 *   keyId: 'https://my-vault.vault.azure.net/keys/kek',
 *   credential: new DefaultAzureCredential(),
 * });
 * const envelope = createEnvelope({ providers: [provider] });
 * const sealed = await envelope.seal('secret', { tenant: 'acme' });
 * ```
 */
export async function createAzureKeyVaultProvider(options: AzureKeyVaultProviderOptions): Promise<AzureKeyVaultProvider> {
  const kid = assertOptions(options);
  const algorithm = options.algorithm ?? 'RSA-OAEP-256';
  const clients =
    options.clients ?? (await createDefaultClients(kid.vaultUrl, options.credential as TokenCredentialLike, options.clientOptions ?? {}));
  const policy = options.resilience === false ? undefined : new Resilience(options.resilience);
  const read = async (signal: AbortSignal): Promise<KeyVaultKeyLike> => {
    try {
      return await clients.keyClient.getKey(kid.name, { ...(kid.version !== undefined ? { version: kid.version } : {}), abortSignal: signal });
    } catch (err) {
      throw mapAzureError(err, kid.keyId) ?? new ProviderError('INTERNAL', `reading Key Vault key ${kid.keyId} failed`, { cause: err });
    }
  };
  const key = policy ? await policy.run(`${AZURE_KV_KIND} getKey`, read) : await read(new AbortController().signal);
  const keyType = key.keyType ?? '';
  const fits = ALGORITHMS[algorithm];
  if (!fits.includes(keyType)) {
    throw new ConfigError(`Key Vault key ${kid.keyId} has type ${keyType || 'unknown'}; ${algorithm} needs ${fits.join(' or ')}`);
  }
  const ops = key.keyOperations;
  if (Array.isArray(ops) && !(ops.includes('wrapKey') && ops.includes('unwrapKey'))) {
    throw new ConfigError(`Key Vault key ${kid.keyId} does not allow wrapKey and unwrapKey (key_ops: ${ops.join(', ')})`);
  }
  return new AzureKeyVaultProvider(options, kid, clients, key);
}
