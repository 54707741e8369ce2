/**
 * Google Cloud KMS key provider: a data key is wrapped with Cloud KMS `Encrypt` under the key's primary version and
 * unwrapped with `Decrypt`, with end-to-end CRC32C checks as Google documents them.
 *
 * Security rules and why they hold:
 * - **Context binding.** The additional authenticated data (AAD) of every Encrypt is
 *   `"keyfold/v1/gcp-kms\0" || u32 len(version) || version || canonical context` (`encodeContext`). Cloud KMS
 *   authenticates AAD with the ciphertext (AES-256-GCM), so Decrypt with any other context fails. The canonical
 *   context encoding is length-prefixed and sorted, so no two contexts share AAD.
 * - **Version label binding.** Decrypt takes the CryptoKey name (the ciphertext names its own version), so the
 *   `keyVersion` stored beside the ciphertext would otherwise be an unchecked label. Wrapping therefore encrypts
 *   under the primary *version* explicitly and puts that version into the AAD: a relabelled wrapped key fails.
 * - **Integrity in transit.** Each request carries CRC32C of the plaintext / ciphertext and the AAD; Encrypt must
 *   answer `verifiedPlaintextCrc32c` and `verifiedAdditionalAuthenticatedDataCrc32c` true and the CRC32C of the
 *   returned ciphertext must match; Decrypt's returned plaintext must match `plaintextCrc32c`. A mismatch is a
 *   retryable `UNAVAILABLE` (bounded by the shared resilience). Checksums of plaintexts are never stored.
 * - **Retries.** gax's own retry is switched off on every call (`retry: null`): the shared resilience of the core
 *   is the one retry loop (full-jitter backoff for THROTTLED / UNAVAILABLE, a deadline, a circuit breaker), so the
 *   two never multiply. The deadline cancels the in-flight gax call.
 * @module
 */
import {
  BaseKeyProvider,
  ConfigError,
  LimitExceededError,
  ProviderError,
  Resilience,
  UnwrapFailedError,
  encodeContext,
  wipe,
  type BaseProviderOptions,
  type EncryptionContext,
  KeyfoldError,
  type ProviderDescription,
  type Protection,
  type WrappedKey,
  RefreshingValue,
} from '@keyfold/envelope-core';
import { crc32c } from './crc32c.js';
import { ChecksumMismatchError, mapGcpError } from './gcp-errors.js';
import {
  PROTECTION_LEVELS,
  PURPOSES,
  VERSION_STATES,
  callWithSignal,
  createDefaultClient,
  enumName,
  int64Value,
  responseBytes,
  type CryptoKeyLike,
  type GcpCallOptions,
  type GcpClientOptions,
  type GcpKmsClient,
} from './kms-client.js';

/**
 * The `kind` of wrapped keys made by this provider.
 * @example
 * ```ts
 * envelope.inspect(sealed).wrappedKeys.filter((w) => w.kind === GCP_KMS_KIND);
 * ```
 */
export const GCP_KMS_KIND = 'gcp-kms';

const AAD_LABEL = Buffer.from('keyfold/v1/gcp-kms\0', 'latin1');
/**
 * Cloud KMS size limits of Encrypt / Decrypt (EncryptRequest and DecryptRequest reference, fields `plaintext` and
 * `additional_authenticated_data`): for SOFTWARE, EXTERNAL and EXTERNAL_VPC key versions the plaintext and the AAD
 * may each be up to 64 KiB; for HSM key versions the plaintext and the AAD together may be at most 8 KiB.
 */
const MAX_AAD = 65_536;
const MAX_HSM_PLAINTEXT_PLUS_AAD = 8192;
const KEY_NAME = /^projects\/[^/]+\/locations\/[^/]+\/keyRings\/[^/]+\/cryptoKeys\/[^/]+$/;
const VERSION_ID = /^[1-9][0-9]{0,18}$/;
/**
 * gax's own retry is off on every call: the core's resilience is the one retry loop. A fresh object each time:
 * the client writes into the options it is given.
 */
function callOptions(): GcpCallOptions {
  return { retry: null };
}
const DEFAULT_PRIMARY_REFRESH_MS = 60_000;
/** Errors that mean a cached version may be out of date: it was disabled or destroyed since it was read. */
const STALE_VERSION = new Set(['KEY_DISABLED', 'KEY_NOT_FOUND']);

/**
 * Options of {@link createGcpKmsProvider}.
 * @example
 * ```ts
 * const options: GcpKmsProviderOptions = {
 *   keyName: 'projects/p/locations/global/keyRings/app/cryptoKeys/kek',
 *   resilience: { deadlineMs: 5000 },
 * };
 * ```
 */
export interface GcpKmsProviderOptions extends BaseProviderOptions {
  /**
   * The CryptoKey (purpose ENCRYPT_DECRYPT), not a version:
   * `projects/P/locations/L/keyRings/R/cryptoKeys/K`. It is the provider's `keyId`.
   */
  keyName: string;
  /**
   * A ready client (`new KeyManagementServiceClient(...)` from `@google-cloud/kms`, gRPC or `fallback: 'rest'`), or
   * any object of the same shape. The caller keeps ownership: `close()` does not close it.
   */
  client?: GcpKmsClient;
  /**
   * Options for the client the provider creates when `client` is absent (and closes on `close()`): passed to
   * `new KeyManagementServiceClient(options)`. Default `{}`: Application Default Credentials, gRPC.
   */
  clientOptions?: GcpClientOptions;
  /**
   * How long the primary version read from Cloud KMS is reused for new wraps, in ms. A rotation made elsewhere
   * is picked up after at most this long (`rotate()` on this provider takes effect at once). Default 60,000.
   */
  primaryRefreshMs?: number;
}

interface PrimaryVersion {
  readonly name: string;
  readonly id: string;
}

function versionIdOf(versionName: string, keyName: string): string | undefined {
  const prefix = `${keyName}/cryptoKeyVersions/`;
  if (!versionName.startsWith(prefix)) return undefined;
  const id = versionName.slice(prefix.length);
  return VERSION_ID.test(id) ? id : undefined;
}

function protectionOf(level: string | undefined): Protection {
  return level === 'HSM' || level === 'HSM_SINGLE_TENANT' ? 'hsm' : 'kms';
}

/** The AAD sent with Encrypt / Decrypt: label, the version, the canonical context. */
function buildAad(versionId: string, context: EncryptionContext): Uint8Array {
  const version = Buffer.from(versionId, 'latin1');
  const ctx = encodeContext(context);
  const out = new Uint8Array(AAD_LABEL.length + 4 + version.length + ctx.length);
  out.set(AAD_LABEL, 0);
  new DataView(out.buffer).setUint32(AAD_LABEL.length, version.length);
  out.set(version, AAD_LABEL.length + 4);
  out.set(ctx, AAD_LABEL.length + 4 + version.length);
  return out;
}

/**
 * A KeyProvider backed by one Cloud KMS CryptoKey. Create it with {@link createGcpKmsProvider}.
 *
 * `keyId` is the CryptoKey resource name; `keyVersion` of a wrapped key is the CryptoKeyVersion id (`"1"`, `"2"`,
 * ...) that Cloud KMS reported using. `protection` is `hsm` for HSM keys, `kms` otherwise.
 *
 * Methods throw what `BaseKeyProvider` documents: TypeError / RangeError for caller mistakes, `UNWRAP_FAILED` for a
 * ciphertext that does not decrypt, mapped codes (`KEY_NOT_FOUND`, `KEY_DISABLED`, `ACCESS_DENIED`, `THROTTLED`,
 * `UNAVAILABLE`, `TIMEOUT`) for the backend, `PROVIDER_CLOSED` after `close()`.
 * @example
 * ```ts
 * const provider: GcpKmsProvider = await createGcpKmsProvider({ keyName });
 * const wrapped = await provider.wrapKey(dataKey, { tenant: 'acme' }); // wrapped.keyVersion === '1'
 * ```
 */
export class GcpKmsProvider extends BaseKeyProvider {
  readonly kind = GCP_KMS_KIND;
  readonly keyId: string;
  readonly protection: Protection;
  readonly #client: GcpKmsClient;
  readonly #ownsClient: boolean;
  readonly #primary: RefreshingValue<PrimaryVersion>;

  /** @internal Use {@link createGcpKmsProvider}. */
  constructor(
    options: GcpKmsProviderOptions,
    client: GcpKmsClient,
    ownsClient: boolean,
    key: CryptoKeyLike,
  ) {
    super(options.resilience === undefined ? {} : { resilience: options.resilience });
    this.keyId = options.keyName;
    this.#client = client;
    this.#ownsClient = ownsClient;
    this.#primary = new RefreshingValue(async () => {
      const [key] = await this.#client.getCryptoKey({ name: this.keyId }, callOptions());
      const primary = this.#primaryFrom(key);
      if (!primary) {
        throw new ProviderError('KEY_DISABLED', `Cloud KMS key ${this.keyId} has no enabled primary version: create one or set a primary`);
      }
      return primary;
    }, options.primaryRefreshMs ?? DEFAULT_PRIMARY_REFRESH_MS);
    const level = enumName(key.primary?.protectionLevel ?? key.versionTemplate?.protectionLevel, PROTECTION_LEVELS);
    this.protection = protectionOf(level);
    const primary = this.#primaryFrom(key);
    if (primary) this.#primary.set(primary);
  }

  protected override get capabilities(): ProviderDescription['capabilities'] {
    return { generateDataKey: false, rewrapKey: false, rotate: true, writeVersion: true };
  }

  /** Encrypt takes a CryptoKeyVersion name: any enabled version can be written under. */
  protected override get addressesVersions(): boolean {
    return true;
  }

  protected override _writeVersionProblem(version: string): Promise<string | undefined> {
    // Whether the version exists and is enabled is Cloud KMS's answer to the Encrypt itself.
    return Promise.resolve(VERSION_ID.test(version) ? undefined : `${JSON.stringify(version)} is not a Cloud KMS CryptoKeyVersion id (1, 2, ...)`);
  }

  protected override mapBackendError(err: unknown): KeyfoldError | undefined {
    return mapGcpError(err, this.keyId);
  }

  /** The most AAD Cloud KMS accepts next to `plaintextLength` bytes of plaintext for this key's protection level. */
  #maxAad(plaintextLength: number): number {
    return this.protection === 'hsm' ? MAX_HSM_PLAINTEXT_PLUS_AAD - plaintextLength : MAX_AAD;
  }

  #primaryFrom(key: CryptoKeyLike): PrimaryVersion | undefined {
    const name = key.primary?.name;
    if (typeof name !== 'string') return undefined;
    const id = versionIdOf(name, this.keyId);
    return id === undefined ? undefined : { name, id };
  }

  async #getKey(signal: AbortSignal): Promise<CryptoKeyLike> {
    const [key] = await callWithSignal(this.#client.getCryptoKey({ name: this.keyId }, callOptions()), signal);
    return key;
  }

  /**
   * New wraps use the primary version: cached for `primaryRefreshMs`, one GetCryptoKey at a time, shared by every
   * wrap waiting for it, so not cancelled by one caller's deadline (each caller still stops waiting at its own).
   */
  protected _wrapKey(dataKey: Uint8Array, context: EncryptionContext, signal: AbortSignal, version?: string): Promise<WrappedKey> {
    if (version !== undefined) return this.#encryptUnder(dataKey, context, version, signal);
    // A cached primary may have been disabled or destroyed since it was read (a rotation made elsewhere): the
    // shared refresh reads the key again, once, and uses the new primary if there is one.
    return this.#primary.useFresh(
      (primary) => this.#encrypt(dataKey, context, primary, signal),
      (err) => STALE_VERSION.has(mapGcpError(err, this.keyId)?.code ?? ''),
      (a, b) => a.name === b.name,
    );
  }


  /** Encrypts under CryptoKeyVersion `version` (the key store's choice), naming it when Cloud KMS cannot use it. */
  async #encryptUnder(dataKey: Uint8Array, context: EncryptionContext, version: string, signal: AbortSignal): Promise<WrappedKey> {
    const name = `${this.keyId}/cryptoKeyVersions/${version}`;
    try {
      return await this.#encrypt(dataKey, context, { name, id: version }, signal);
    } catch (err) {
      const mapped = err instanceof KeyfoldError ? err : mapGcpError(err, this.keyId);
      if (mapped?.code === 'KEY_NOT_FOUND' || mapped?.code === 'KEY_DISABLED') {
        throw new ProviderError(
          mapped.code,
          `CryptoKeyVersion ${name} is the version to write under, but Cloud KMS cannot encrypt with it ` +
            `(${mapped.code === 'KEY_NOT_FOUND' ? 'it does not exist' : 'it is not enabled'}): create or enable it ` +
            `(gcloud kms keys versions create / enable), or activate a version that is enabled. Nothing was written`,
          { cause: err },
        );
      }
      throw err;
    }
  }

  async #encrypt(dataKey: Uint8Array, context: EncryptionContext, primary: PrimaryVersion, signal: AbortSignal): Promise<WrappedKey> {
    const aad = buildAad(primary.id, context);
    const maxAad = this.#maxAad(dataKey.length);
    if (aad.length > maxAad) {
      throw new LimitExceededError(
        this.protection === 'hsm'
          ? `the encryption context is ${aad.length} bytes once encoded; with a ${dataKey.length}-byte data key Cloud KMS accepts at most ${maxAad} bytes of AAD for the HSM key ${this.keyId} (plaintext + AAD <= ${MAX_HSM_PLAINTEXT_PLUS_AAD} bytes): use a smaller context`
          : `the encryption context is ${aad.length} bytes once encoded; Cloud KMS accepts at most ${maxAad} bytes of AAD: use a smaller context`,
      );
    }
    const [res] = await callWithSignal(
      this.#client.encrypt(
        {
          name: primary.name,
          plaintext: dataKey,
          additionalAuthenticatedData: aad,
          plaintextCrc32c: { value: crc32c(dataKey) },
          additionalAuthenticatedDataCrc32c: { value: crc32c(aad) },
        },
        callOptions(),
      ),
      signal,
    );
    if (res.verifiedPlaintextCrc32c !== true || res.verifiedAdditionalAuthenticatedDataCrc32c !== true) {
      throw new ChecksumMismatchError(
        `Cloud KMS did not confirm the CRC32C of the plaintext and AAD sent to ${this.keyId} (verified_* false): the request may have been corrupted`,
      );
    }
    const ciphertext = responseBytes(res.ciphertext);
    const expected = int64Value(res.ciphertextCrc32c);
    if (!ciphertext || ciphertext.length === 0 || expected === undefined || crc32c(ciphertext) !== expected) {
      throw new ChecksumMismatchError(`the ciphertext Cloud KMS returned for ${this.keyId} failed its CRC32C check: corrupted in transit`);
    }
    const used = typeof res.name === 'string' ? versionIdOf(res.name, this.keyId) : undefined;
    if (used !== primary.id) {
      throw new ProviderError('INTERNAL', `Cloud KMS encrypted under ${String(res.name)}, not the version asked for (${primary.name})`);
    }
    return { kind: this.kind, keyId: this.keyId, keyVersion: used, ciphertext };
  }

  protected async _unwrapKey(wrapped: WrappedKey, context: EncryptionContext, signal: AbortSignal): Promise<Uint8Array> {
    // Refused without a call: not a version id Cloud KMS could have reported.
    if (!VERSION_ID.test(wrapped.keyVersion) || wrapped.ciphertext.length === 0) throw new UnwrapFailedError();
    const aad = buildAad(wrapped.keyVersion, context);
    // A data key is 32 bytes: what Cloud KMS could not have sealed, it cannot open either.
    if (aad.length > this.#maxAad(32)) throw new UnwrapFailedError();
    const [res] = await callWithSignal(
      this.#client.decrypt(
        {
          name: this.keyId,
          ciphertext: wrapped.ciphertext,
          additionalAuthenticatedData: aad,
          ciphertextCrc32c: { value: crc32c(wrapped.ciphertext) },
          additionalAuthenticatedDataCrc32c: { value: crc32c(aad) },
        },
        callOptions(),
      ),
      signal,
    );
    const plaintext = responseBytes(res.plaintext);
    // The SDK's copy of the plaintext: wipe it once we hold our own.
    if (res.plaintext instanceof Uint8Array) res.plaintext.fill(0);
    const expected = int64Value(res.plaintextCrc32c);
    if (!plaintext || expected === undefined || crc32c(plaintext) !== expected) {
      wipe(plaintext);
      throw new ChecksumMismatchError(`the plaintext Cloud KMS returned for ${this.keyId} failed its CRC32C check: corrupted in transit`);
    }
    if (plaintext.length !== 32) {
      wipe(plaintext);
      throw new UnwrapFailedError();
    }
    return plaintext;
  }

  protected async _describe(signal: AbortSignal): Promise<ProviderDescription> {
    const key = await this.#getKey(signal);
    const primary = this.#primaryFrom(key);
    if (!primary) {
      throw new ProviderError('KEY_DISABLED', `Cloud KMS key ${this.keyId} has no enabled primary version: create one or set a primary`);
    }
    this.#primary.set(primary);
    const [list] = await callWithSignal(
      this.#client.listCryptoKeyVersions({ parent: this.keyId, filter: 'state=ENABLED' }, callOptions()),
      signal,
    );
    const ids = new Set<string>();
    for (const v of list) {
      if (enumName(v.state, VERSION_STATES) !== 'ENABLED' || typeof v.name !== 'string') continue;
      const id = versionIdOf(v.name, this.keyId);
      if (id !== undefined) ids.add(id);
    }
    ids.add(primary.id);
    const versions = [...ids].sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : BigInt(a) > BigInt(b) ? 1 : 0));
    const level = enumName(key.primary?.protectionLevel, PROTECTION_LEVELS) ?? 'PROTECTION_LEVEL_UNSPECIFIED';
    const algorithm = key.primary?.algorithm;
    return {
      kind: this.kind,
      keyId: this.keyId,
      protection: this.protection,
      activeVersion: primary.id,
      versions,
      capabilities: this.capabilities,
      details: {
        protectionLevel: level,
        primaryVersionName: primary.name,
        ...(typeof algorithm === 'string' ? { algorithm } : {}),
      },
    };
  }

  /**
   * Rotates the KEK: creates a new CryptoKeyVersion and makes it primary, so new wraps use it at once; every
   * earlier enabled version keeps unwrapping. Needs `cloudkms.cryptoKeyVersions.create` and
   * `cloudkms.cryptoKeys.update` (roles/cloudkms.admin).
   * @returns the new version id.
   * @throws KeyfoldError with a mapped code (ACCESS_DENIED, KEY_NOT_FOUND, UNAVAILABLE, ...); PROVIDER_CLOSED.
   * @example
   * ```ts
   * const version = await provider.rotate(); // "2"
   * ```
   */
  async rotate(): Promise<string> {
    this.assertOpen();
    try {
      return await this.runBackend('rotate', async (signal) => {
        const [created] = await callWithSignal(
          this.#client.createCryptoKeyVersion({ parent: this.keyId, cryptoKeyVersion: {} }, callOptions()),
          signal,
        );
        const id = typeof created.name === 'string' ? versionIdOf(created.name, this.keyId) : undefined;
        if (id === undefined) throw new ProviderError('INTERNAL', `Cloud KMS returned an unexpected version name for ${this.keyId}`);
        const [key] = await callWithSignal(
          this.#client.updateCryptoKeyPrimaryVersion({ name: this.keyId, cryptoKeyVersionId: id }, callOptions()),
          signal,
        );
        this.#primary.set(this.#primaryFrom(key) ?? { name: `${this.keyId}/cryptoKeyVersions/${id}`, id });
        return id;
      });
    } catch (err) {
      throw this.mapBackendError(err) ?? new ProviderError('INTERNAL', `rotating ${this.keyId} failed`, { cause: err });
    }
  }

  protected override async _close(): Promise<void> {
    this.#primary.clear();
    if (this.#ownsClient && typeof this.#client.close === 'function') await this.#client.close();
  }
}

function assertOptions(options: GcpKmsProviderOptions): void {
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  if (typeof options.keyName !== 'string') throw new TypeError('options.keyName must be a string');
  if (!KEY_NAME.test(options.keyName)) {
    throw new TypeError(
      `options.keyName must be a CryptoKey resource name "projects/P/locations/L/keyRings/R/cryptoKeys/K" (not a version); got "${options.keyName}"`,
    );
  }
  if (options.client !== undefined && (options.client === null || typeof options.client.encrypt !== 'function')) {
    throw new TypeError('options.client must be a KeyManagementServiceClient (an object with encrypt/decrypt)');
  }
  if (options.client !== undefined && options.clientOptions !== undefined) {
    throw new TypeError('pass either options.client or options.clientOptions, not both');
  }
  const r = options.primaryRefreshMs;
  if (r !== undefined && !(Number.isFinite(r) && r >= 0)) throw new RangeError(`options.primaryRefreshMs must be a number >= 0; got ${r}`);
}

/**
 * Creates a Cloud KMS provider for one CryptoKey. Reads the key once (GetCryptoKey) to check that it exists, that
 * its purpose is ENCRYPT_DECRYPT and which version is primary.
 *
 * @throws TypeError for malformed options; KeyfoldError `KEY_NOT_FOUND`, `ACCESS_DENIED`, `UNAVAILABLE`, ... when the
 *   key cannot be read; `CONFIG_INVALID` when the key's purpose is not ENCRYPT_DECRYPT.
 * @example
 * ```ts
 * import { createEnvelope } from '@keyfold/envelope-core';
 * import { createGcpKmsProvider } from '@keyfold/provider-gcp';
 *
 * const provider = await createGcpKmsProvider({
 *   keyName: 'projects/my-project/locations/europe-west1/keyRings/app/cryptoKeys/kek',
 * });
 * const envelope = createEnvelope({ providers: [provider] });
 * const sealed = await envelope.seal('secret', { tenant: 'acme' });
 * ```
 */
export async function createGcpKmsProvider(options: GcpKmsProviderOptions): Promise<GcpKmsProvider> {
  assertOptions(options);
  const owns = options.client === undefined;
  const client = options.client ?? (await createDefaultClient(options.clientOptions ?? {}));
  // The first read runs under the same policy (retry, deadline) the provider will use.
  const policy = options.resilience === false ? undefined : new Resilience(options.resilience);
  const read = async (signal: AbortSignal): Promise<CryptoKeyLike> => {
    try {
      const [k] = await callWithSignal(client.getCryptoKey({ name: options.keyName }, callOptions()), signal);
      return k;
    } catch (err) {
      throw mapGcpError(err, options.keyName) ?? new ProviderError('INTERNAL', `reading Cloud KMS key ${options.keyName} failed`, { cause: err });
    }
  };
  let key: CryptoKeyLike;
  try {
    key = policy ? await policy.run(`${GCP_KMS_KIND} getCryptoKey`, read) : await read(new AbortController().signal);
  } catch (err) {
    if (owns && typeof client.close === 'function') await client.close().catch(() => undefined);
    throw err;
  }
  const purpose = enumName(key.purpose, PURPOSES);
  if (purpose !== undefined && purpose !== 'ENCRYPT_DECRYPT') {
    if (owns && typeof client.close === 'function') await client.close().catch(() => undefined);
    throw new ConfigError(`Cloud KMS key ${options.keyName} has purpose ${purpose}; the provider needs a symmetric ENCRYPT_DECRYPT key`);
  }
  return new GcpKmsProvider(options, client, owns, key);
}
