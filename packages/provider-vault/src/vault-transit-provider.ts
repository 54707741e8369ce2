/**
 * A Vault (or OpenBao) transit key as a Keyfold KeyProvider: wrap = `transit/encrypt`, unwrap = `transit/decrypt`,
 * rewrapKey = `transit/rewrap` (the plaintext never leaves Vault), generateDataKey = `transit/datakey/plaintext`
 * (derived keys only: that endpoint takes no associated data), batch variants for rotation.
 *
 * The envelope context is bound to every wrapped key: as AES-GCM associated data for a plain key, or as the
 * key-derivation context for a derived key (`derived: true` in Vault), in both cases its canonical encoding
 * (`encodeContext`), so `{a:'bc'}` and `{ab:'c'}` differ. A Vault that ignores `associated_data` (older than the
 * feature) is detected by its warning, and the wrap is refused rather than left unbound.
 * @module
 */
import {
  BaseKeyProvider,
  ConfigError,
  KeyfoldError,
  ProviderError,
  RefreshingValue,
  UnwrapFailedError,
  assertBytes,
  assertContext,
  assertWrappedKey,
  copyBytes,
  encodeContext,
  isOperationalCode,
  wipe,
  type BaseProviderOptions,
  type EncryptionContext,
  type ProviderDescription,
  type WrappedKey,
} from '@keyfold/envelope-core';
import type { TokenSource } from './vault-auth.js';
import { mapVaultError } from './vault-errors.js';
import { VaultApiError, type VaultAnswer, type VaultHttp } from './vault-http.js';
import { b64, decodePlaintext, joinCiphertext, splitCiphertext } from './transit-ciphertext.js';
import { vaultKeyId } from './vault-namespace.js';

/**
 * The outcome of one item of a batch call.
 * @example
 * ```ts
 * const results: BatchResult<WrappedKey>[] = await provider.rewrapKeys(items);
 * const failed = results.filter((r) => !r.ok);
 * ```
 */
export type BatchResult<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: KeyfoldError };

/** Refuses a non-array (a caller mistake) without narrowing the typed parameter to any[]. */
function assertArray(items: unknown): void {
  if (!Array.isArray(items)) throw new TypeError('items must be an array');
}

/** Constructor input (after the factory read the key). */
export interface VaultTransitProviderInit {
  readonly http: VaultHttp;
  readonly auth: TokenSource;
  readonly mount: string;
  readonly keyName: string;
  readonly derived: boolean;
  readonly batchSize: number;
}

/**
 * A transit key. Created by {@link createVaultTransitProvider}.
 *
 * Methods throw as `BaseKeyProvider` documents: `UNWRAP_FAILED` for any wrapped key Vault refuses (bad or foreign
 * ciphertext, another context, a relabelled version), `KEY_VERSION_RETIRED` for a version below
 * `min_decryption_version`, and the mapped codes `ACCESS_DENIED` (403), `UNAVAILABLE` (sealed, 5xx, unreachable),
 * `THROTTLED` (429), `KEY_NOT_FOUND`, `TIMEOUT` with the Vault error as `cause`.
 * @example
 * ```ts
 * const vault: VaultTransitProvider = await createVaultTransitProvider({ keyName: 'keyfold' });
 * console.log(vault.keyId, vault.derived); // 'transit/keys/keyfold' false
 * ```
 */
export class VaultTransitProvider extends BaseKeyProvider {
  override readonly kind = 'vault-transit';
  override readonly protection = 'kms' as const;
  override readonly keyId: string;
  /** True for a derived key (the context is the key-derivation context). */
  readonly derived: boolean;
  readonly mount: string;
  readonly keyName: string;
  readonly #http: VaultHttp;
  readonly #auth: TokenSource;
  readonly #batchSize: number;
  /** The versions Vault lets new encryptions use (`min_encryption_version`..`latest_version`), reused for 5 s. */
  readonly #encryptable = new RefreshingValue(() => this.#encryptableVersions(), 5_000);

  /** @internal Use {@link createVaultTransitProvider}. */
  constructor(init: VaultTransitProviderInit, options: BaseProviderOptions) {
    super(options);
    this.#http = init.http;
    this.#auth = init.auth;
    this.mount = init.mount;
    this.keyName = init.keyName;
    this.derived = init.derived;
    this.#batchSize = init.batchSize;
    this.keyId = vaultKeyId(init.http.namespace, init.mount, init.keyName);
    // datakey takes no associated data: it can bind the context only as a derivation context.
    if (!this.derived) Object.defineProperty(this, '_generateDataKey', { value: undefined });
  }

  protected override get capabilities(): { generateDataKey: boolean; rewrapKey: boolean; rotate: boolean; writeVersion: boolean } {
    return { generateDataKey: this.derived, rewrapKey: true, rotate: true, writeVersion: true };
  }

  /** Transit encrypts and rewraps under a chosen `key_version`. */
  protected override get addressesVersions(): boolean {
    return true;
  }

  async #encryptableVersions(): Promise<{ readonly min: number; readonly latest: number }> {
    const data = await this.#read(AbortSignal.timeout(30_000));
    const latest = Number(data.latest_version);
    const min = Math.max(1, Number(data.min_encryption_version ?? 0) || 0, Number(data.min_decryption_version ?? 1) || 1);
    return { min, latest: Number.isInteger(latest) ? latest : 0 };
  }

  protected override async _writeVersionProblem(version: string): Promise<string | undefined> {
    if (!/^[1-9][0-9]{0,9}$/.test(version)) return `${JSON.stringify(version)} is not a Vault transit key version (1, 2, ...)`;
    const v = Number(version);
    let range = await this.#encryptable.get();
    // A version above the one known may have been added by a rotation since: ask Vault again, once.
    if (v > range.latest) range = await this.#encryptable.get(true);
    if (v >= range.min && v <= range.latest) return undefined;
    return (
      `version ${version} of Vault transit key ${this.keyId} is the version to write under, but Vault can encrypt only under ` +
      `versions ${range.min} to ${range.latest}: ` +
      (v > range.latest
        ? `rotate the key in Vault (vault write -f ${this.mount}/keys/${this.keyName}/rotate) until it has version ${version}`
        : `it is below min_encryption_version / min_decryption_version; activate a version Vault still encrypts under`) +
      '. Nothing was written'
    );
  }

  protected override mapBackendError(err: unknown): KeyfoldError | undefined {
    return mapVaultError(err, this.keyId);
  }

  #path(op: string): string {
    return `${this.mount}/${op}/${encodeURIComponent(this.keyName)}`;
  }

  /** A request with the current token; after a 403 with an AppRole token, logs in again and retries once. */
  async #call(method: 'GET' | 'POST', path: string, body: unknown, signal: AbortSignal, acceptStatus?: readonly number[]): Promise<VaultAnswer> {
    for (let attempt = 0; ; attempt++) {
      const token = await this.#auth.token(this.#http, signal);
      try {
        return await this.#http.request({ method, path, body, token, signal, ...(acceptStatus ? { acceptStatus } : {}) });
      } catch (err) {
        if (attempt === 0 && err instanceof VaultApiError && err.status === 403 && this.#auth.rejected(token)) continue;
        throw err;
      }
    }
  }

  /** The context parameters of one item: associated_data (plain key) or context (derived key). */
  #contextParams(context: EncryptionContext): Record<string, string> {
    const encoded = b64(encodeContext(context));
    return this.derived ? { context: encoded } : { associated_data: encoded };
  }

  #checkBound(answer: VaultAnswer): void {
    if (!this.derived && answer.warnings.some((w) => w.includes('associated_data'))) {
      throw new ConfigError(
        `Vault ignored associated_data for ${this.keyId}, so the context would not be bound: use a Vault with AEAD associated data support, or a derived key (derived: true)`,
      );
    }
  }

  #wrapped(ciphertext: unknown): WrappedKey {
    const { version, bytes } = splitCiphertext(ciphertext);
    return { kind: this.kind, keyId: this.keyId, keyVersion: version, ciphertext: bytes };
  }

  protected override async _wrapKey(dataKey: Uint8Array, context: EncryptionContext, signal: AbortSignal, version?: string): Promise<WrappedKey> {
    const answer = await this.#call(
      'POST',
      this.#path('encrypt'),
      { plaintext: b64(dataKey), ...this.#contextParams(context), ...(version === undefined ? {} : { key_version: Number(version) }) },
      signal,
    );
    this.#checkBound(answer);
    return this.#wrapped(answer.data?.ciphertext);
  }

  protected override async _unwrapKey(wrapped: WrappedKey, context: EncryptionContext, signal: AbortSignal): Promise<Uint8Array> {
    const ciphertext = joinCiphertext(wrapped.keyVersion, wrapped.ciphertext);
    if (ciphertext === undefined) throw new UnwrapFailedError();
    const answer = await this.#call('POST', this.#path('decrypt'), { ciphertext, ...this.#contextParams(context) }, signal);
    const key = decodePlaintext(answer.data?.plaintext);
    if (!key) throw new UnwrapFailedError();
    return key;
  }

  protected override async _generateDataKey(context: EncryptionContext, signal: AbortSignal): Promise<{ dataKey: Uint8Array; wrapped: WrappedKey }> {
    const answer = await this.#call('POST', `${this.mount}/datakey/plaintext/${encodeURIComponent(this.keyName)}`, { bits: 256, ...this.#contextParams(context) }, signal);
    const dataKey = decodePlaintext(answer.data?.plaintext);
    if (!dataKey) throw new ProviderError('INTERNAL', `Vault datakey for ${this.keyId} returned no plaintext`);
    try {
      return { dataKey, wrapped: this.#wrapped(answer.data?.ciphertext) };
    } catch (err) {
      wipe(dataKey);
      throw err;
    }
  }

  protected override async _rewrapKey(wrapped: WrappedKey, context: EncryptionContext, signal: AbortSignal, version?: string): Promise<WrappedKey> {
    const ciphertext = joinCiphertext(wrapped.keyVersion, wrapped.ciphertext);
    if (ciphertext === undefined) throw new UnwrapFailedError();
    const answer = await this.#call(
      'POST',
      this.#path('rewrap'),
      { ciphertext, ...this.#contextParams(context), ...(version === undefined ? {} : { key_version: Number(version) }) },
      signal,
    );
    return this.#wrapped(answer.data?.ciphertext);
  }

  /** Reads the key (`GET keys/:name`). */
  async #read(signal: AbortSignal): Promise<Record<string, unknown>> {
    const answer = await this.#call('GET', `${this.mount}/keys/${encodeURIComponent(this.keyName)}`, undefined, signal);
    if (!answer.data) throw new ProviderError('INTERNAL', `Vault returned no data for ${this.keyId}`);
    return answer.data;
  }

  protected override async _describe(signal: AbortSignal): Promise<ProviderDescription> {
    const data = await this.#read(signal);
    const latest = Number(data.latest_version);
    const minDecryption = Number(data.min_decryption_version ?? 1);
    const minEncryption = Number(data.min_encryption_version ?? 0);
    const all = Object.keys((data.keys ?? {}) as Record<string, unknown>)
      .map(Number)
      .filter((v) => Number.isInteger(v) && v >= 1)
      .sort((a, b) => a - b);
    const versions = all.filter((v) => v >= minDecryption).map(String);
    if (!Number.isInteger(latest) || latest < 1 || !versions.includes(String(latest))) {
      throw new ProviderError('INTERNAL', `Vault returned an inconsistent key description for ${this.keyId}`);
    }
    return {
      kind: this.kind,
      keyId: this.keyId,
      protection: this.protection,
      activeVersion: String(latest),
      versions,
      capabilities: this.capabilities,
      details: {
        endpoint: this.#http.endpoint,
        mount: this.mount,
        keyName: this.keyName,
        ...(this.#http.namespace ? { namespace: this.#http.namespace } : {}),
        type: typeof data.type === 'string' ? data.type : 'unknown',
        derived: this.derived,
        minDecryptionVersion: minDecryption,
        minEncryptionVersion: minEncryption,
        auth: this.#auth.method,
      },
    };
  }

  /**
   * Rotates the key in Vault (`keys/:name/rotate`): new wraps use the new version; every version at or above
   * `min_decryption_version` keeps unwrapping. Needs `update` on `<mount>/keys/<name>/rotate`.
   * @returns the new active version.
   * @throws ProviderError ACCESS_DENIED / UNAVAILABLE / THROTTLED / TIMEOUT; PROVIDER_CLOSED after `close()`.
   * @example
   * ```ts
   * const v = await provider.rotate(); // '2'
   * ```
   */
  async rotate(): Promise<string> {
    this.assertOpen();
    try {
      await this.runBackend('rotate', (signal) => this.#call('POST', `${this.mount}/keys/${encodeURIComponent(this.keyName)}/rotate`, {}, signal));
      return (await this.describe()).activeVersion;
    } catch (err) {
      throw err instanceof KeyfoldError ? err : (this.mapBackendError(err) ?? new ProviderError('INTERNAL', `Vault rotate of ${this.keyId} failed`, { cause: err }));
    }
  }

  /**
   * Retires every version below `version` (`keys/:name/config` with `min_decryption_version`): keys wrapped under
   * them fail with KEY_VERSION_RETIRED from then on. Move them first (`rewrapKey` / `rewrapKeys`, or `rotateKek`).
   * Needs `update` on `<mount>/keys/<name>/config`.
   * @throws RangeError for a version that is not a positive integer; ConfigError (CONFIG_INVALID) when Vault refuses
   *   the value (above the latest version); ProviderError ACCESS_DENIED / UNAVAILABLE / THROTTLED / TIMEOUT.
   * @example
   * ```ts
   * await provider.rewrapKeys(everyStoredKey);
   * await provider.setMinDecryptionVersion('3');
   * ```
   */
  async setMinDecryptionVersion(version: string | number): Promise<void> {
    this.assertOpen();
    const v = Number(version);
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`version must be a positive integer; got ${String(version)}`);
    try {
      await this.runBackend('config', (signal) =>
        this.#call('POST', `${this.mount}/keys/${encodeURIComponent(this.keyName)}/config`, { min_decryption_version: v }, signal),
      );
    } catch (err) {
      if (err instanceof VaultApiError && err.status === 400) {
        throw new ConfigError(`Vault refused min_decryption_version ${v} for ${this.keyId}: ${err.errors.join('; ')}`, { cause: err });
      }
      throw err instanceof KeyfoldError ? err : (this.mapBackendError(err) ?? new ProviderError('INTERNAL', `Vault config of ${this.keyId} failed`, { cause: err }));
    }
  }

  /** Maps one failed batch item or chunk. */
  #itemError(err: unknown, unwrap: boolean): KeyfoldError {
    const mapped = err instanceof KeyfoldError ? err : this.mapBackendError(err);
    if (unwrap) return mapped && isOperationalCode(mapped.code) ? mapped : new UnwrapFailedError({ cause: err });
    return mapped ?? new ProviderError('INTERNAL', `Vault batch call for ${this.keyId} failed`, { cause: err });
  }

  /**
   * Maps an error that refused a whole batch request: what `mapVaultError` recognises (KEY_NOT_FOUND, ...), else on
   * unwrap the generic UNWRAP_FAILED, and on wrap an INTERNAL error that names Vault's reason (the provider built a
   * request Vault refused; the reason holds no key material).
   */
  #requestError(err: VaultApiError, unwrap: boolean): KeyfoldError {
    const mapped = this.mapBackendError(err);
    if (mapped) return unwrap && !isOperationalCode(mapped.code) ? new UnwrapFailedError({ cause: err }) : mapped;
    if (unwrap) return new UnwrapFailedError({ cause: err });
    return new ProviderError('INTERNAL', `Vault refused the batch call ${err.path} for ${this.keyId} (${err.status}: ${err.errors.join('; ') || 'no reason given'})`, { cause: err });
  }

  /**
   * Sends items in chunks of `batchSize` through one batch endpoint; returns one result per item. A chunk that fails
   * as a whole (unavailable, denied) fails each of its items with that error.
   */
  async #batch<I, T>(
    operation: string,
    op: 'encrypt' | 'decrypt' | 'rewrap',
    items: readonly I[],
    toInput: (item: I) => Record<string, string> | undefined,
    fromResult: (result: Record<string, unknown>, item: I) => T,
    unwrap: boolean,
  ): Promise<BatchResult<T>[]> {
    const results: BatchResult<T>[] = new Array<BatchResult<T>>(items.length);
    for (let start = 0; start < items.length; start += this.#batchSize) {
      const chunk: { index: number; input: Record<string, string> }[] = [];
      for (let i = start; i < Math.min(items.length, start + this.#batchSize); i++) {
        const input = toInput(items[i] as I);
        if (input) chunk.push({ index: i, input: { ...input, reference: String(i) } });
        else results[i] = { ok: false, error: unwrap ? new UnwrapFailedError() : new ProviderError('INTERNAL', 'unreachable') };
      }
      if (chunk.length === 0) continue;
      let answer: VaultAnswer;
      try {
        answer = await this.runBackend(operation, (signal) =>
          this.#call('POST', this.#path(op), { batch_input: chunk.map((c) => c.input), partial_failure_response_code: 200 }, signal, [400]),
        );
      } catch (err) {
        const error = this.#itemError(err, unwrap);
        for (const c of chunk) results[c.index] = { ok: false, error };
        continue;
      }
      if (!Array.isArray(answer.data?.batch_results) && (answer.status < 200 || answer.status > 299)) {
        // Refused as a whole (Vault checks the batch and looks the key up once per request: a missing key, mixed
        // contexts or a malformed batch is a top-level 400 with `errors` and no batch_results): every item fails
        // with that one mapped error.
        const error = this.#requestError(new VaultApiError(answer.status, answer.errors, this.#path(op)), unwrap);
        for (const c of chunk) results[c.index] = { ok: false, error };
        continue;
      }
      if (op === 'encrypt') this.#checkBound(answer);
      const out = Array.isArray(answer.data?.batch_results) ? (answer.data.batch_results as unknown[]) : [];
      chunk.forEach((c, n) => {
        const r = out[n] as Record<string, unknown> | undefined;
        try {
          if (!r || (typeof r.reference === 'string' && r.reference !== String(c.index))) throw new ProviderError('INTERNAL', `Vault batch answer for ${this.keyId} does not match the request`);
          if (typeof r.error === 'string' && r.error !== '') throw new VaultApiError(400, [r.error], this.#path(op));
          results[c.index] = { ok: true, value: fromResult(r, items[c.index] as I) };
        } catch (err) {
          results[c.index] = { ok: false, error: this.#itemError(err, unwrap) };
        }
      });
    }
    return results;
  }

  /**
   * Wraps many data keys in batch calls (`batch_input`), `batchSize` per request.
   * @returns one result per item, in order; a refused item does not fail the others.
   * @throws TypeError / RangeError for malformed items (before any call); PROVIDER_CLOSED after `close()`.
   * @example
   * ```ts
   * const results = await provider.wrapKeys(keys.map((dataKey) => ({ dataKey, context: { table: 'users' } })));
   * ```
   */
  async wrapKeys(items: readonly { dataKey: Uint8Array; context: EncryptionContext }[]): Promise<BatchResult<WrappedKey>[]> {
    this.assertOpen();
    assertArray(items);
    const copies = items.map((it, i) => {
      assertBytes(it?.dataKey, 32, `items[${i}].dataKey`);
      assertContext(it.context, `items[${i}].context`);
      return { key: copyBytes(it.dataKey), context: Object.freeze({ ...it.context }) };
    });
    try {
      return await this.#batch(
        'wrapKeys',
        'encrypt',
        copies,
        (c) => ({ plaintext: b64(c.key), ...this.#contextParams(c.context) }),
        (r) => Object.freeze(this.#wrapped(r.ciphertext)),
        false,
      );
    } finally {
      for (const c of copies) wipe(c.key);
    }
  }

  /**
   * Unwraps many wrapped keys in batch calls. Each failed item is `UNWRAP_FAILED` (or an operational code such as
   * `KEY_VERSION_RETIRED`), never a raw Vault message.
   * @returns one result per item, in order; returned keys are fresh buffers the caller owns.
   * @throws TypeError for malformed items (before any call); PROVIDER_CLOSED after `close()`.
   * @example
   * ```ts
   * const keys = await provider.unwrapKeys(stored.map((s) => ({ wrapped: s.wrapped, context: s.context })));
   * ```
   */
  async unwrapKeys(items: readonly { wrapped: WrappedKey; context: EncryptionContext }[]): Promise<BatchResult<Uint8Array>[]> {
    this.assertOpen();
    const checked = this.#checkWrappedItems(items);
    return this.#batch(
      'unwrapKeys',
      'decrypt',
      checked,
      (c) => {
        const ciphertext = c.mine ? joinCiphertext(c.wrapped.keyVersion, c.wrapped.ciphertext) : undefined;
        return ciphertext === undefined ? undefined : { ciphertext, ...this.#contextParams(c.context) };
      },
      (r) => {
        const key = decodePlaintext(r.plaintext);
        if (!key || key.length !== 32) {
          wipe(key);
          throw new UnwrapFailedError();
        }
        return key;
      },
      true,
    );
  }

  /**
   * Moves many wrapped keys to the active version in batch calls (`transit/rewrap`): what a rotation does before
   * `setMinDecryptionVersion`. The plaintext keys never leave Vault.
   * @returns one result per item, in order.
   * @throws TypeError for malformed items (before any call); PROVIDER_CLOSED after `close()`.
   * @example
   * ```ts
   * const moved = await provider.rewrapKeys(stored.map((s) => ({ wrapped: s.wrapped, context: s.context })));
   * ```
   */
  async rewrapKeys(items: readonly { wrapped: WrappedKey; context: EncryptionContext }[]): Promise<BatchResult<WrappedKey>[]> {
    this.assertOpen();
    const checked = this.#checkWrappedItems(items);
    return this.#batch(
      'rewrapKeys',
      'rewrap',
      checked,
      (c) => {
        const ciphertext = c.mine ? joinCiphertext(c.wrapped.keyVersion, c.wrapped.ciphertext) : undefined;
        return ciphertext === undefined ? undefined : { ciphertext, ...this.#contextParams(c.context) };
      },
      (r) => Object.freeze(this.#wrapped(r.ciphertext)),
      true,
    );
  }

  #checkWrappedItems(items: readonly { wrapped: WrappedKey; context: EncryptionContext }[]): { wrapped: WrappedKey; context: EncryptionContext; mine: boolean }[] {
    assertArray(items);
    return items.map((it, i) => {
      assertWrappedKey(it?.wrapped, `items[${i}].wrapped`);
      assertContext(it.context, `items[${i}].context`);
      const w = it.wrapped;
      return {
        wrapped: { kind: w.kind, keyId: w.keyId, keyVersion: w.keyVersion, ciphertext: copyBytes(w.ciphertext) },
        context: Object.freeze({ ...it.context }),
        mine: w.kind === this.kind && w.keyId === this.keyId,
      };
    });
  }
}
