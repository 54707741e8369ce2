/**
 * Writing under a chosen KEK version: the view `KeyProvider.withWriteVersion(version)` returns, and
 * {@link writeUnderVersion}, which gives the same view for any provider (also one without that method).
 *
 * Why: in a fleet, the version new writes use is decided in one place (the key store's pointer), not by whatever
 * versions each host happens to have loaded. A host that lacks the chosen version must refuse to write rather than
 * fall back to another version (that would seal data some hosts may not be able to open, and keep an old version in
 * use after a rotation), and must keep opening everything it has.
 *
 * Security rules, and why they hold:
 * - A write through the view is either under exactly `version` or refused: the result's `keyVersion` is checked
 *   after every write, so a provider that ignored the request fails closed (`INTERNAL`) instead of writing elsewhere.
 * - A version that cannot be written is `KEY_NOT_FOUND` with a message naming what to add; it never names or
 *   reveals key material.
 * - Unwraps are the provider's own: the view adds no way to open what the provider could not.
 * @module
 */
import { randomOwnedBytes } from './aead.js';
import { constantTimeEqual, wipe } from './bytes.js';
import { KeyfoldError, ProviderError } from './errors.js';
import { assertKeyProvider } from './provider-shape.js';
import {
  DATA_KEY_LENGTH,
  type EncryptionContext,
  type KeyProvider,
  type ProbeResult,
  type ProviderDescription,
  type Protection,
  type WrappedKey,
} from './types.js';

const PROBE_CONTEXT: EncryptionContext = Object.freeze({ 'keyfold:probe': '1' });
const MAX_VERSION_LENGTH = 1024;

/**
 * Asserts `version` is a non-empty string of at most 1024 characters.
 * @throws TypeError / RangeError naming `version`.
 */
export function assertWriteVersion(version: unknown): asserts version is string {
  if (typeof version !== 'string') throw new TypeError(`version must be a string; got ${typeof version}`);
  if (version === '' || version.length > MAX_VERSION_LENGTH) {
    throw new RangeError(`version must be 1 to ${MAX_VERSION_LENGTH} characters; got ${version.length}`);
  }
}

/** The three writes a view makes under its version; each refuses a version it cannot write (KEY_NOT_FOUND). */
export interface WriteVersionOps {
  wrap(dataKey: Uint8Array, context: EncryptionContext): Promise<WrappedKey>;
  generate(context: EncryptionContext): Promise<{ dataKey: Uint8Array; wrapped: WrappedKey }>;
  rewrap(wrapped: WrappedKey, context: EncryptionContext): Promise<WrappedKey>;
}

/**
 * A provider pinned to one write version. Made by `withWriteVersion` / {@link writeUnderVersion}; not constructed
 * by callers.
 */
export class WriteVersionView implements KeyProvider {
  readonly kind: string;
  readonly keyId: string;
  readonly protection: Protection;
  /** The version every write of this view uses. */
  readonly writeVersion: string;
  readonly #provider: KeyProvider;
  readonly #ops: WriteVersionOps;
  #closed = false;

  /** @internal */
  constructor(provider: KeyProvider, version: string, ops: WriteVersionOps) {
    this.kind = provider.kind;
    this.keyId = provider.keyId;
    this.protection = provider.protection;
    this.writeVersion = version;
    this.#provider = provider;
    this.#ops = ops;
  }

  /** The provider this is a view of. */
  get provider(): KeyProvider {
    return this.#provider;
  }

  #assertOpen(): void {
    if (this.#closed) {
      throw new ProviderError('PROVIDER_CLOSED', `the ${this.kind} provider view for ${this.keyId} (version ${this.writeVersion}) is closed`);
    }
  }

  /** Wraps under {@link WriteVersionView.writeVersion}. @throws ProviderError `KEY_NOT_FOUND` when the provider lacks it. */
  async wrapKey(dataKey: Uint8Array, context: EncryptionContext): Promise<WrappedKey> {
    this.#assertOpen();
    return this.#ops.wrap(dataKey, context);
  }

  /** The provider's unwrap: every version it has loaded opens, whatever the write version. */
  async unwrapKey(wrapped: WrappedKey, context: EncryptionContext): Promise<Uint8Array> {
    this.#assertOpen();
    return this.#provider.unwrapKey(wrapped, context);
  }

  /** A fresh data key wrapped under the write version. @throws ProviderError `KEY_NOT_FOUND` as `wrapKey`. */
  async generateDataKey(context: EncryptionContext): Promise<{ dataKey: Uint8Array; wrapped: WrappedKey }> {
    this.#assertOpen();
    return this.#ops.generate(context);
  }

  /** Re-wraps to the write version. @throws ProviderError `KEY_NOT_FOUND` as `wrapKey`; `UNWRAP_FAILED`. */
  async rewrapKey(wrapped: WrappedKey, context: EncryptionContext): Promise<WrappedKey> {
    this.#assertOpen();
    return this.#ops.rewrap(wrapped, context);
  }

  /** The provider's description, with the write version as `activeVersion`. */
  async describe(): Promise<ProviderDescription> {
    this.#assertOpen();
    const d = await this.#provider.describe();
    return { ...d, activeVersion: this.writeVersion };
  }

  /**
   * The provider's probe plus a round trip under the write version: `ok: false` with `KEY_NOT_FOUND` when the
   * provider cannot write under it. Never throws for an unhealthy backend.
   */
  async probe(): Promise<ProbeResult> {
    const start = performance.now();
    const base = await this.#provider.probe();
    if (!base.ok) return base;
    const probeKey = randomOwnedBytes(DATA_KEY_LENGTH);
    let back: Uint8Array | undefined;
    try {
      this.#assertOpen();
      const wrapped = await this.#ops.wrap(probeKey, PROBE_CONTEXT);
      back = await this.#provider.unwrapKey(wrapped, PROBE_CONTEXT);
      if (!constantTimeEqual(back, probeKey)) throw new ProviderError('INTERNAL', 'the probe key did not round-trip');
      return { ...base, activeVersion: this.writeVersion, latencyMs: performance.now() - start };
    } catch (err) {
      const e = err instanceof KeyfoldError ? err : new ProviderError('INTERNAL', `the ${this.kind} provider failed unexpectedly`, { cause: err });
      return {
        ...base,
        ok: false,
        activeVersion: this.writeVersion,
        latencyMs: performance.now() - start,
        error: { code: e.code, message: e.message },
      };
    } finally {
      wipe(probeKey);
      wipe(back);
    }
  }

  /** Another view of the same provider. */
  withWriteVersion(version: string): KeyProvider {
    this.#assertOpen();
    return writeUnderVersion(this.#provider, version);
  }

  /** Closes this view only; the provider stays open (its owner closes it). Idempotent. */
  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }
}

/**
 * A view of `provider` that writes under exactly `version`: the provider's own `withWriteVersion` when it has one,
 * else a view that accepts only the version the provider's `describe()` reports as active (a provider that cannot
 * address versions) and refuses any other write with `KEY_NOT_FOUND`. Unwraps are always the provider's.
 * @throws TypeError for a value that is not a KeyProvider or a malformed `version`.
 * @example
 * ```ts
 * import { writeUnderVersion } from '@keyfold/envelope-core';
 *
 * const pinned = writeUnderVersion(provider, '2');
 * const envelope = createEnvelope({ providers: [pinned] }); // seals under version 2, or refuses with KEY_NOT_FOUND
 * ```
 */
export function writeUnderVersion(provider: KeyProvider, version: string): KeyProvider {
  assertKeyProvider(provider, 'provider');
  assertWriteVersion(version);
  if (typeof provider.withWriteVersion === 'function') return provider.withWriteVersion(version);
  const check = async (): Promise<void> => {
    const own = (await provider.describe()).activeVersion;
    if (own !== version) {
      throw new ProviderError(
        'KEY_NOT_FOUND',
        `the active version of ${provider.kind} KEK ${provider.keyId} is ${version}, but this provider writes under ${own} only ` +
          '(it cannot be asked for another version): open it on the version named, or activate the version it uses',
      );
    }
  };
  const written = (wrapped: WrappedKey): WrappedKey => {
    if (wrapped.keyVersion !== version) {
      throw new ProviderError('INTERNAL', `the ${provider.kind} provider wrapped under version ${wrapped.keyVersion} when asked for ${version}`);
    }
    return wrapped;
  };
  const wrap = async (dataKey: Uint8Array, context: EncryptionContext): Promise<WrappedKey> => {
    await check();
    return written(await provider.wrapKey(dataKey, context));
  };
  return new WriteVersionView(provider, version, {
    wrap,
    generate: async (context) => {
      await check();
      if (provider.generateDataKey) {
        const r = await provider.generateDataKey(context);
        try {
          return { dataKey: r.dataKey, wrapped: written(r.wrapped) };
        } catch (err) {
          wipe(r.dataKey);
          throw err;
        }
      }
      const dataKey = randomOwnedBytes(DATA_KEY_LENGTH);
      try {
        return { dataKey, wrapped: written(await provider.wrapKey(dataKey, context)) };
      } catch (err) {
        wipe(dataKey);
        throw err;
      }
    },
    rewrap: async (wrapped, context) => {
      await check();
      if (provider.rewrapKey) return written(await provider.rewrapKey(wrapped, context));
      const dataKey = await provider.unwrapKey(wrapped, context);
      try {
        return written(await provider.wrapKey(dataKey, context));
      } finally {
        wipe(dataKey);
      }
    },
  });
}
