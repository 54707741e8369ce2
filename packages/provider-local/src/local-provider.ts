/**
 * The part the env, file and memory providers share: a set of 32-byte KEK versions held in this process, one of
 * them active, wrapping data keys with the core's `localWrap` (AES-256-GCM, fresh 96-bit IV per wrap).
 *
 * Security rules, and why they hold:
 * - The AAD of every wrap is `localWrapAad(kind, keyId, keyVersion, encodeContext(context))`, so a wrapped key
 *   moved to another version, key id, provider kind or context fails its tag check.
 * - Every unwrap failure (unknown version, wrong KEK, tampered bytes, wrong context) is the one generic
 *   `UnwrapFailedError`: an attacker who submits modified wrapped keys learns nothing about which check refused it.
 * - KEK lookup and use happen synchronously inside one call, so `close()` (which wipes every KEK and empties the
 *   map) can never interleave with a wrap in progress, and a call after close finds no key rather than a zeroed one.
 * @module
 */
import {
  BaseKeyProvider,
  ProviderError,
  UnwrapFailedError,
  encodeContext,
  localUnwrap,
  localWrap,
  localWrapAad,
  wipe,
  type BaseProviderOptions,
  type EncryptionContext,
  type ProviderCapabilities,
  type ProviderDescription,
  type Protection,
  type WrappedKey,
} from '@keyfold/envelope-core';

/**
 * Passed by the factories to the provider constructors: the classes are exported for `instanceof`, but only the
 * factories (which validate their input) may construct them.
 */
export const FACTORY: unique symbol = Symbol('keyfold provider-local factory');

/** Throws unless the constructor was called by a factory of this package. */
export function assertFactory(token: unknown, factory: string): void {
  if (token !== FACTORY) throw new TypeError(`use ${factory}() to create this provider`);
}

/** Short key ids: stored in clear in every envelope, so they stay small. */
const KEY_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/;

/**
 * Asserts `keyId` is 1-64 characters of `A-Z a-z 0-9 . _ : -`, starting with a letter or digit.
 * @throws TypeError / RangeError naming `name`.
 */
export function assertKeyId(keyId: unknown, name: string): asserts keyId is string {
  if (typeof keyId !== 'string') throw new TypeError(`${name} must be a string; got ${typeof keyId}`);
  if (!KEY_ID.test(keyId)) {
    throw new RangeError(`${name} must be 1-64 characters of A-Z a-z 0-9 . _ : - starting with a letter or digit; got ${JSON.stringify(keyId)}`);
  }
}

/**
 * Base options for a local provider: resilience (retries, deadline, circuit breaker) is off unless asked for, since
 * a local wrap is CPU work that cannot throttle, hang or go down.
 */
export function localBaseOptions(options: BaseProviderOptions): BaseProviderOptions {
  return { resilience: options.resilience ?? false };
}

/** Numeric order for version strings ('2' before '10'). */
export function compareVersions(a: string, b: string): number {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}

/**
 * Base of the local providers. Takes ownership of the KEK buffers it is given: it wipes them on `close()` and when
 * a version is replaced.
 */
export abstract class LocalKekProvider extends BaseKeyProvider {
  abstract override readonly kind: string;
  abstract override readonly keyId: string;
  abstract override readonly protection: Protection;

  readonly #keks = new Map<string, Uint8Array>();
  #active = '';

  protected constructor(options: BaseProviderOptions) {
    super(options);
  }

  /** Whether the provider can add a version itself (`rotate()`); reported in `describe().capabilities`. */
  protected abstract readonly canRotate: boolean;

  /** Non-secret details for `describe()`. */
  protected abstract describeDetails(): Readonly<Record<string, string | number | boolean>>;

  /**
   * What an operator adds so this process can write under `version` (`the variable KEYFOLD_KEK_V3`, `version 3 in
   * the KEK file /etc/keyfold/kek`): completes the `KEY_NOT_FOUND` message of a write under a version not loaded.
   */
  protected abstract missingVersionHint(version: string): string;

  /** Local providers write under any version they hold. */
  protected override get addressesVersions(): boolean {
    return true;
  }

  /** The `KEY_NOT_FOUND` message for a write under a version this process has not loaded. */
  #missingMessage(version: string): string {
    const have = this.versions;
    return (
      `KEK version ${version} of ${this.kind} KEK ${this.keyId} is the version to write under, but this process has not loaded it: ` +
      `add ${this.missingVersionHint(version)}. Nothing was written; envelopes under the versions loaded here ` +
      `(${have.length === 0 ? 'none' : have.join(', ')}) still open`
    );
  }

  protected override _writeVersionProblem(version: string): Promise<string | undefined> {
    return Promise.resolve(this.#keks.has(version) ? undefined : this.#missingMessage(version));
  }

  /**
   * Replaces every KEK version (wiping the old buffers) and sets the active one. Takes ownership of `keks`. The
   * active version may be one this process has not loaded (the env provider pinned to a version another host has):
   * writes then fail with `KEY_NOT_FOUND` naming what to add, and every loaded version still unwraps.
   */
  protected setKeks(keks: ReadonlyMap<string, Uint8Array>, active: string): void {
    for (const old of this.#keks.values()) wipe(old);
    this.#keks.clear();
    for (const [version, kek] of keks) this.#keks.set(version, kek);
    this.#active = active;
  }

  /** Adds one version (taking ownership of `kek`), optionally activating it. */
  protected addKek(version: string, kek: Uint8Array, activate: boolean): void {
    const old = this.#keks.get(version);
    if (old && old !== kek) wipe(old);
    this.#keks.set(version, kek);
    if (activate) this.#active = version;
  }

  /** The active version ('' once closed). */
  protected get activeVersion(): string {
    return this.#active;
  }

  /** Known versions, oldest first. */
  protected get versions(): string[] {
    return [...this.#keks.keys()].sort(compareVersions);
  }

  #kekFor(version: string): Uint8Array | undefined {
    return this.#keks.get(version);
  }

  protected override _wrapKey(dataKey: Uint8Array, context: EncryptionContext, _signal?: AbortSignal, writeVersion?: string): Promise<WrappedKey> {
    const version = writeVersion ?? this.#active;
    const kek = this.#kekFor(version);
    if (!kek) {
      if (this.closed || version === '') {
        return Promise.reject(new ProviderError('PROVIDER_CLOSED', `the ${this.kind} provider for ${this.keyId} is closed`));
      }
      return Promise.reject(new ProviderError('KEY_NOT_FOUND', this.#missingMessage(version)));
    }
    const aad = localWrapAad(this.kind, this.keyId, version, encodeContext(context));
    const ciphertext = localWrap(kek, dataKey, aad);
    return Promise.resolve({ kind: this.kind, keyId: this.keyId, keyVersion: version, ciphertext });
  }

  protected override _unwrapKey(wrapped: WrappedKey, context: EncryptionContext): Promise<Uint8Array> {
    const kek = this.#kekFor(wrapped.keyVersion);
    // An unknown version is refused like any other bad wrapped key: one error, one message.
    if (!kek) return Promise.reject(new UnwrapFailedError());
    const aad = localWrapAad(this.kind, this.keyId, wrapped.keyVersion, encodeContext(context));
    const key = localUnwrap(kek, wrapped.ciphertext, aad);
    if (!key) return Promise.reject(new UnwrapFailedError());
    return Promise.resolve(key);
  }

  protected override _describe(): Promise<ProviderDescription> {
    return Promise.resolve({
      kind: this.kind,
      keyId: this.keyId,
      protection: this.protection,
      activeVersion: this.#active,
      versions: this.versions,
      capabilities: this.capabilities,
      details: this.describeDetails(),
    });
  }

  protected override get capabilities(): ProviderCapabilities {
    return { ...super.capabilities, rotate: this.canRotate };
  }

  /** Wipes every KEK. Subclasses that hold more secrets override and call `super._close()`. */
  protected override _close(): Promise<void> {
    for (const kek of this.#keks.values()) wipe(kek);
    this.#keks.clear();
    this.#active = '';
    return Promise.resolve();
  }
}
