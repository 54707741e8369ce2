/**
 * The key store's pointer drives writes: {@link bindProviderToStore} gives a KeyProvider that writes under the
 * version the store records as active for the provider's KEK (`keyfold_kek_versions`), whatever versions the host
 * has loaded, and re-reads that pointer so a long-running process follows `keyfold kek activate` within a bounded
 * time.
 *
 * Why: in a fleet, adding `KEYFOLD_KEK_V3` to one host's environment must not make it the write key there while
 * other hosts cannot open it yet. The store, shared by every process, decides; a host that lacks the active version
 * refuses to write (`KEY_NOT_FOUND`, naming what to add) and still opens everything it has.
 *
 * Security rules, and why they hold:
 * - Writes are under exactly the pointer's version or refused (the provider's `withWriteVersion`, or
 *   `writeUnderVersion`, which checks the version of every result): never a silent fallback to another version.
 * - A pointer that cannot be read (store closed or unreachable) fails the write: fail closed, never "use what the
 *   host has".
 * - Unwraps go straight to the provider: the binding adds no way to open anything.
 * @module
 */
import {
  ProviderError,
  RefreshingValue,
  assertKeyProvider,
  randomOwnedBytes,
  wipe,
  writeUnderVersion,
  type EncryptionContext,
  type KeyProvider,
  type ProbeResult,
  type ProviderDescription,
  type Protection,
  type WrappedKey,
} from '@keyfold/envelope-core';
import type { KeyStore } from './types.js';

/** How long a pointer read is reused by default before the next write reads it again: 30 s. */
export const DEFAULT_POINTER_REFRESH_MS = 30_000;
/** The longest refresh interval accepted: one day. */
const MAX_POINTER_REFRESH_MS = 86_400_000;

/**
 * Options of {@link bindProviderToStore}.
 * @example
 * ```ts
 * const options: StorePointerOptions = { refreshMs: 5_000 };
 * ```
 */
export interface StorePointerOptions {
  /**
   * How long (ms) a pointer read is reused before the next write reads the store again: the longest a process keeps
   * writing under the previous version after `keyfold kek activate`. Default 30 000; 0 reads it before every write.
   */
  refreshMs?: number;
}

/**
 * A KeyProvider bound to a key store's pointer for its KEK. Create it with {@link bindProviderToStore}.
 * Writes (`wrapKey`, `generateDataKey`, `rewrapKey`) use the store's active version; without a registered active
 * version they use the provider's own choice (a store whose KEK registry is empty). Unwraps are the provider's.
 * @example
 * ```ts
 * const bound: StoreBoundProvider = bindProviderToStore(store, provider);
 * console.log(await bound.activeVersion()); // '2'
 * ```
 */
export class StoreBoundProvider implements KeyProvider {
  readonly kind: string;
  readonly keyId: string;
  readonly protection: Protection;
  /** The store whose pointer decides the write version. */
  readonly store: KeyStore;
  /** The provider that holds the keys (not closed by this binding: its owner closes it). */
  readonly provider: KeyProvider;
  readonly #pointer: RefreshingValue<string | undefined>;
  readonly #views = new Map<string, KeyProvider>();
  #closed = false;

  /** @internal Use {@link bindProviderToStore}. */
  constructor(store: KeyStore, provider: KeyProvider, refreshMs: number) {
    this.store = store;
    this.provider = provider;
    this.kind = provider.kind;
    this.keyId = provider.keyId;
    this.protection = provider.protection;
    this.#pointer = new RefreshingValue(async () => (await store.getActiveKekVersion({ kind: provider.kind, keyId: provider.keyId }))?.version, refreshMs);
  }

  #assertOpen(): void {
    if (this.#closed) throw new ProviderError('PROVIDER_CLOSED', `the ${this.kind} provider for ${this.keyId} bound to ${this.store.location} is closed`);
  }

  /**
   * The store's active version for this KEK (read again when the last read is older than `refreshMs`, or when
   * `refresh` is true), or `undefined` when the store registers none.
   * @throws the store's errors when it cannot be read.
   * @example
   * ```ts
   * const version = await bound.activeVersion(true); // read now
   * ```
   */
  activeVersion(refresh = false): Promise<string | undefined> {
    this.#assertOpen();
    return this.#pointer.get(refresh);
  }

  /** The provider (or its view) that writes under the pointer's version now. */
  async #writer(): Promise<KeyProvider> {
    const version = await this.activeVersion();
    this.#assertOpen();
    if (version === undefined) return this.provider;
    let view = this.#views.get(version);
    if (!view) {
      view = writeUnderVersion(this.provider, version);
      this.#views.set(version, view);
    }
    return view;
  }

  /** Wraps under the store's active version. @throws ProviderError `KEY_NOT_FOUND` when this provider lacks it. */
  async wrapKey(dataKey: Uint8Array, context: EncryptionContext): Promise<WrappedKey> {
    return (await this.#writer()).wrapKey(dataKey, context);
  }

  /** The provider's unwrap (every version it loaded). */
  async unwrapKey(wrapped: WrappedKey, context: EncryptionContext): Promise<Uint8Array> {
    this.#assertOpen();
    return this.provider.unwrapKey(wrapped, context);
  }

  /** A data key wrapped under the store's active version. @throws ProviderError `KEY_NOT_FOUND` as `wrapKey`. */
  async generateDataKey(context: EncryptionContext): Promise<{ dataKey: Uint8Array; wrapped: WrappedKey }> {
    const writer = await this.#writer();
    if (writer.generateDataKey) return writer.generateDataKey(context);
    const dataKey = randomOwnedBytes(32);
    try {
      return { dataKey, wrapped: await writer.wrapKey(dataKey, context) };
    } catch (err) {
      wipe(dataKey);
      throw err;
    }
  }

  /** Re-wraps to the store's active version. @throws ProviderError `KEY_NOT_FOUND` as `wrapKey`; `UNWRAP_FAILED`. */
  async rewrapKey(wrapped: WrappedKey, context: EncryptionContext): Promise<WrappedKey> {
    const writer = await this.#writer();
    if (writer.rewrapKey) return writer.rewrapKey(wrapped, context);
    const dataKey = await writer.unwrapKey(wrapped, context);
    try {
      return await writer.wrapKey(dataKey, context);
    } finally {
      wipe(dataKey);
    }
  }

  /** The provider's description, with the store's active version as `activeVersion`. */
  async describe(): Promise<ProviderDescription> {
    return (await this.#writer()).describe();
  }

  /** The provider's probe, with a round trip under the store's active version. Never throws for "unhealthy". */
  async probe(): Promise<ProbeResult> {
    let writer: KeyProvider;
    try {
      writer = await this.#writer();
    } catch (err) {
      const e = err as { code?: unknown; message?: unknown };
      return {
        ok: false,
        kind: this.kind,
        keyId: this.keyId,
        latencyMs: 0,
        error: { code: typeof e.code === 'string' ? e.code : 'INTERNAL', message: typeof e.message === 'string' ? e.message : 'the key store could not be read' },
      };
    }
    return writer.probe();
  }

  /** A view of the provider pinned to `version`, ignoring the store (an explicit choice, e.g. a rollback test). */
  withWriteVersion(version: string): KeyProvider {
    this.#assertOpen();
    return writeUnderVersion(this.provider, version);
  }

  /** Closes the binding (its views); the provider and the store stay open. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const views = [...this.#views.values()];
    this.#views.clear();
    await Promise.all(views.filter((v) => v !== this.provider).map((v) => v.close()));
  }
}

/**
 * Binds `provider` to `store`'s pointer for its KEK (`provider.kind` + `provider.keyId`): the result writes under
 * the version the store records as active, re-reading it once the last read is older than `refreshMs`, so a
 * long-running process follows `keyfold kek activate` within that time. A host whose provider lacks the active
 * version refuses to write with `KEY_NOT_FOUND` naming what to add, and keeps unwrapping every version it has.
 * When the store has no active version for this KEK, writes use the provider's own choice (as without a store).
 * Library users without a store keep the provider's own behaviour: nothing changes unless they bind.
 *
 * A provider already bound to the same store is returned as it is.
 * @throws TypeError for a value that is not a KeyStore or KeyProvider; RangeError for a bad `refreshMs`.
 * @example
 * ```ts
 * import { bindProviderToStore, openPostgresKeyStore } from '@keyfold/keystore';
 *
 * const store = await openPostgresKeyStore({ connectionString });
 * const provider = bindProviderToStore(store, createEnvProvider(), { refreshMs: 10_000 });
 * const envelope = createEnvelope({ providers: [provider] }); // seals under the store's active version
 * ```
 */
export function bindProviderToStore(store: KeyStore, provider: KeyProvider, options: StorePointerOptions = {}): StoreBoundProvider {
  if (store === null || typeof store !== 'object' || typeof (store as Partial<KeyStore>).getActiveKekVersion !== 'function') {
    throw new TypeError('store must be a KeyStore');
  }
  assertKeyProvider(provider, 'provider');
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  const refreshMs = options.refreshMs ?? DEFAULT_POINTER_REFRESH_MS;
  if (typeof refreshMs !== 'number' || !Number.isInteger(refreshMs) || refreshMs < 0 || refreshMs > MAX_POINTER_REFRESH_MS) {
    throw new RangeError(`refreshMs must be an integer from 0 to ${MAX_POINTER_REFRESH_MS}; got ${String(refreshMs)}`);
  }
  if (provider instanceof StoreBoundProvider && provider.store === store) return provider;
  return new StoreBoundProvider(store, provider instanceof StoreBoundProvider ? provider.provider : provider, refreshMs);
}
