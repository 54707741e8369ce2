/**
 * `BaseKeyProvider`: the public methods check preconditions, copy caller buffers, apply the shared resilience and
 * map errors, then call the protected `_wrapKey` / `_unwrapKey` / ... a backend implements (the ESDK
 * `Keyring.onEncrypt` -> `_onEncrypt` shape). A provider writes only its backend calls and `mapBackendError`.
 * @module
 */
import { randomOwnedBytes } from './aead.js';
import { assertBytes, copyBytes, wipe } from './bytes.js';
import { adoptContext, assertContext, isAdoptedContext } from './context.js';
import { KeyfoldError, ProviderError, UnwrapFailedError, isOperationalCode } from './errors.js';
import { Resilience, type ResilienceOptions, type ResilienceStats } from './resilience.js';
import { WriteVersionView, assertWriteVersion } from './write-version.js';
import {
  DATA_KEY_LENGTH,
  type EncryptionContext,
  type KeyProvider,
  type ProbeResult,
  type ProviderCapabilities,
  type ProviderDescription,
  type Protection,
  type WrappedKey,
} from './types.js';

/** Options every provider built on {@link BaseKeyProvider} accepts. */
export interface BaseProviderOptions {
  /**
   * Retry / deadline / circuit breaker; on by default. `false` calls the backend directly: meant for providers
   * whose key operations are local CPU work that cannot throttle, hang or go down (env, file, memory).
   */
  resilience?: ResilienceOptions | false;
}

const NEVER_ABORTED: AbortSignal = new AbortController().signal;

const PROBE_CONTEXT: EncryptionContext = Object.freeze({ 'keyfold:probe': '1' });

/**
 * The context a provider call works with: validated, and a frozen copy the caller cannot change while the call
 * runs. A context the envelope already validated and froze (see `adoptContext`) is used as is: one validation per
 * public call, not one per layer. The copy made here is adopted too, so a nested call (generate -> wrap) and a
 * local provider's AAD encoding reuse it.
 * @throws TypeError / RangeError for an invalid context (a caller mistake).
 */
function ownContext(context: EncryptionContext): EncryptionContext {
  if (context === null || typeof context !== 'object' || Array.isArray(context)) assertContext(context); // throws
  if (isAdoptedContext(context)) return context;
  // Copy first, then validate the copy: a getter cannot show one value to the check and another to the provider.
  const copy: EncryptionContext = Object.freeze({ ...context });
  assertContext(copy);
  adoptContext(copy);
  return copy;
}

/** Asserts the shape of a {@link WrappedKey} given by a caller. */
export function assertWrappedKey(wrapped: unknown, name = 'wrapped'): asserts wrapped is WrappedKey {
  if (wrapped === null || typeof wrapped !== 'object') throw new TypeError(`${name} must be a WrappedKey object`);
  const w = wrapped as Record<string, unknown>;
  for (const f of ['kind', 'keyId', 'keyVersion'] as const) {
    if (typeof w[f] !== 'string') throw new TypeError(`${name}.${f} must be a string`);
  }
  assertBytes(w.ciphertext, undefined, `${name}.ciphertext`);
}

/**
 * Base class for providers. Subclasses implement `_wrapKey`, `_unwrapKey`, `_describe`, optionally
 * `_generateDataKey`, `_rewrapKey`, `_close`, and `mapBackendError` for their SDK's errors.
 *
 * Guarantees given to callers, whatever the subclass does:
 * - inputs are validated and copied; the copy of a data key is wiped after the call;
 * - a wrapped key of another kind or keyId is refused with UNWRAP_FAILED without calling the backend;
 * - every unwrap failure that is not operational (throttled, unavailable, denied, ...) is the one generic
 *   UNWRAP_FAILED, with the original error as `cause`;
 * - results are fresh 32-byte buffers the caller owns and may wipe;
 * - after `close()`, calls fail with PROVIDER_CLOSED; `close()` itself is idempotent.
 */
export abstract class BaseKeyProvider implements KeyProvider {
  abstract readonly kind: string;
  abstract readonly keyId: string;
  abstract readonly protection: Protection;

  protected readonly resilience: Resilience | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(options: BaseProviderOptions = {}) {
    this.resilience = options.resilience === false ? undefined : new Resilience(options.resilience);
  }

  /** Runs one backend call under the resilience policy (or directly when it is off). */
  protected runBackend<T>(operation: string, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    // Map inside the policy, so a backend error mapped to THROTTLED / UNAVAILABLE is retried and counted by the breaker.
    const mapped = async (signal: AbortSignal): Promise<T> => {
      try {
        return await fn(signal);
      } catch (err) {
        // Only errors the provider recognises are mapped here; the original stays the `cause` of whatever
        // the public method finally throws.
        throw (err instanceof KeyfoldError ? err : this.mapBackendError(err)) ?? err;
      }
    };
    return this.resilience ? this.resilience.run(`${this.kind} ${operation}`, mapped) : mapped(NEVER_ABORTED);
  }

  /**
   * Encrypts a 32-byte data key, bound to `context`, under `version` when given (only ever given to a provider whose
   * {@link BaseKeyProvider.addressesVersions} is true, after {@link BaseKeyProvider._writeVersionProblem} accepted
   * it), else under the provider's own active version.
   */
  protected abstract _wrapKey(dataKey: Uint8Array, context: EncryptionContext, signal: AbortSignal, version?: string): Promise<WrappedKey>;
  /** Unwraps; must return a fresh 32-byte buffer. May throw anything: the base maps it. */
  protected abstract _unwrapKey(wrapped: WrappedKey, context: EncryptionContext, signal: AbortSignal): Promise<Uint8Array>;
  protected abstract _describe(signal: AbortSignal): Promise<ProviderDescription>;
  /** Native data key generation, when the backend has it (KMS GenerateDataKey). */
  protected _generateDataKey?(
    context: EncryptionContext,
    signal: AbortSignal,
  ): Promise<{ dataKey: Uint8Array; wrapped: WrappedKey }>;
  /**
   * Native re-encryption to the active version (or to `version` when given: a provider whose `addressesVersions` is
   * true and that has `_rewrapKey` must honour it), when the backend has it.
   */
  protected _rewrapKey?(wrapped: WrappedKey, context: EncryptionContext, signal: AbortSignal, version?: string): Promise<WrappedKey>;

  /**
   * True when `_wrapKey` (and `_rewrapKey`, if any) write under the `version` they are given: the provider can
   * write under any version it loaded or its service can address. False (the default): it writes under its own
   * active version only, and {@link BaseKeyProvider.withWriteVersion} views accept only that version.
   */
  protected get addressesVersions(): boolean {
    return false;
  }

  /**
   * Whether a {@link BaseKeyProvider.withWriteVersion} view may write under `version`: `undefined` when it may, else
   * the operator-facing reason, naming what to add (it becomes the `KEY_NOT_FOUND` message; never key material).
   * The default, for providers that cannot address versions, accepts only the version `describe()` reports.
   * Providers that address versions override it.
   */
  protected async _writeVersionProblem(version: string, signal: AbortSignal): Promise<string | undefined> {
    const own = (await this._describe(signal)).activeVersion;
    if (own === version) return undefined;
    return (
      `the key store's active version of ${this.kind} KEK ${this.keyId} is ${version}, but this provider writes under ` +
      `${own} only (it cannot address another version): open the provider on the key version the store names, or ` +
      'activate the version this provider uses'
    );
  }
  protected _close(): Promise<void> {
    return Promise.resolve();
  }

  /**
   * Maps a backend error to a KeyfoldError (KEY_NOT_FOUND, ACCESS_DENIED, THROTTLED, UNAVAILABLE, ...), keeping
   * the original as `cause`; returns `undefined` for errors it does not recognise. KeyfoldErrors pass through.
   */
  protected mapBackendError(_err: unknown): KeyfoldError | undefined {
    return undefined;
  }

  /** The capabilities this provider has natively. */
  protected get capabilities(): ProviderCapabilities {
    return {
      generateDataKey: this._generateDataKey !== undefined,
      rewrapKey: this._rewrapKey !== undefined,
      rotate: false,
      writeVersion: this.addressesVersions,
    };
  }

  get closed(): boolean {
    return this.#closed;
  }

  protected assertOpen(): void {
    if (this.#closed) {
      throw new ProviderError('PROVIDER_CLOSED', `the ${this.kind} provider for ${this.keyId} is closed`);
    }
  }

  #map(err: unknown): KeyfoldError {
    if (err instanceof KeyfoldError) return err;
    const mapped = this.mapBackendError(err);
    if (mapped) return mapped;
    return new ProviderError('INTERNAL', `the ${this.kind} provider failed unexpectedly`, { cause: err });
  }

  /** For unwrap: anything that is not operational becomes the generic UNWRAP_FAILED. */
  #mapUnwrap(err: unknown): KeyfoldError {
    const mapped = this.#map(err);
    if (isOperationalCode(mapped.code)) return mapped;
    if (mapped instanceof UnwrapFailedError) return mapped;
    return new UnwrapFailedError({ cause: err });
  }

  protected assertFreshDataKey(key: unknown): asserts key is Uint8Array {
    if (!(key instanceof Uint8Array) || key.length !== DATA_KEY_LENGTH) throw new UnwrapFailedError();
  }

  wrapKey(dataKey: Uint8Array, context: EncryptionContext): Promise<WrappedKey> {
    return this.#wrapAt(undefined, dataKey, context);
  }

  /** Refuses a write under `version` this provider cannot make (KEY_NOT_FOUND naming what to add). */
  async #assertWritable(version: string): Promise<void> {
    const problem = await this.runBackend('describe', (signal) => this._writeVersionProblem(version, signal));
    if (problem !== undefined) throw new ProviderError('KEY_NOT_FOUND', problem);
  }

  /** A wrapped key written for a pinned version must carry exactly that version: anything else fails closed. */
  #checkWritten(wrapped: WrappedKey, version: string | undefined): WrappedKey {
    if (version !== undefined && wrapped.keyVersion !== version) {
      throw new ProviderError('INTERNAL', `the ${this.kind} provider wrapped under version ${wrapped.keyVersion} when asked for ${version}`);
    }
    return freezeWrapped(wrapped);
  }

  async #wrapAt(version: string | undefined, dataKey: Uint8Array, context: EncryptionContext): Promise<WrappedKey> {
    this.assertOpen();
    assertBytes(dataKey, DATA_KEY_LENGTH, 'dataKey');
    const ctx = ownContext(context);
    const key = copyBytes(dataKey);
    try {
      if (version !== undefined) await this.#assertWritable(version);
      const target = this.addressesVersions ? version : undefined;
      const wrapped = await this.runBackend('wrapKey', (signal) => this._wrapKey(key, ctx, signal, target));
      return this.#checkWritten(wrapped, version);
    } catch (err) {
      throw this.#map(err);
    } finally {
      wipe(key);
    }
  }

  async unwrapKey(wrapped: WrappedKey, context: EncryptionContext): Promise<Uint8Array> {
    this.assertOpen();
    assertWrappedKey(wrapped);
    const ctx = ownContext(context);
    if (wrapped.kind !== this.kind || wrapped.keyId !== this.keyId) throw new UnwrapFailedError();
    const copy: WrappedKey = {
      kind: wrapped.kind,
      keyId: wrapped.keyId,
      keyVersion: wrapped.keyVersion,
      ciphertext: copyBytes(wrapped.ciphertext),
    };
    let key: Uint8Array | undefined;
    try {
      key = await this.runBackend('unwrapKey', (signal) => this._unwrapKey(copy, ctx, signal));
      this.assertFreshDataKey(key);
      const out = key;
      key = undefined;
      return out;
    } catch (err) {
      throw this.#mapUnwrap(err);
    } finally {
      wipe(key);
    }
  }

  generateDataKey(context: EncryptionContext): Promise<{ dataKey: Uint8Array; wrapped: WrappedKey }> {
    return this.#generateAt(undefined, context);
  }

  async #generateAt(version: string | undefined, context: EncryptionContext): Promise<{ dataKey: Uint8Array; wrapped: WrappedKey }> {
    this.assertOpen();
    const ctx = ownContext(context);
    // A native generate cannot be pointed at a version: a provider that addresses versions generates locally and
    // wraps under the pinned one.
    const native = version !== undefined && this.addressesVersions ? undefined : this._generateDataKey?.bind(this);
    if (native) {
      try {
        if (version !== undefined) await this.#assertWritable(version);
        const r = await this.runBackend('generateDataKey', (signal) => native(ctx, signal));
        if (!(r.dataKey instanceof Uint8Array) || r.dataKey.length !== DATA_KEY_LENGTH) {
          wipe(r.dataKey);
          throw new ProviderError('INTERNAL', `the ${this.kind} provider returned a data key of the wrong size`);
        }
        try {
          return { dataKey: r.dataKey, wrapped: this.#checkWritten(r.wrapped, version) };
        } catch (err) {
          wipe(r.dataKey);
          throw err;
        }
      } catch (err) {
        throw this.#map(err);
      }
    }
    const dataKey = randomOwnedBytes(DATA_KEY_LENGTH);
    try {
      const wrapped = await this.#wrapAt(version, dataKey, ctx);
      return { dataKey, wrapped };
    } catch (err) {
      wipe(dataKey);
      throw err;
    }
  }

  rewrapKey(wrapped: WrappedKey, context: EncryptionContext): Promise<WrappedKey> {
    return this.#rewrapAt(undefined, wrapped, context);
  }

  async #rewrapAt(version: string | undefined, wrapped: WrappedKey, context: EncryptionContext): Promise<WrappedKey> {
    this.assertOpen();
    assertWrappedKey(wrapped);
    const ctx = ownContext(context);
    const native = this._rewrapKey?.bind(this);
    if (native) {
      if (wrapped.kind !== this.kind || wrapped.keyId !== this.keyId) throw new UnwrapFailedError();
      const copy = { ...wrapped, ciphertext: copyBytes(wrapped.ciphertext) };
      if (version !== undefined) {
        // A version this provider cannot write under is the operator's to fix (KEY_NOT_FOUND), not an unwrap failure.
        try {
          await this.#assertWritable(version);
        } catch (err) {
          throw this.#map(err);
        }
      }
      const target = this.addressesVersions ? version : undefined;
      let out: WrappedKey;
      try {
        out = await this.runBackend('rewrapKey', (signal) => native(copy, ctx, signal, target));
      } catch (err) {
        throw this.#mapUnwrap(err);
      }
      return this.#checkWritten(out, version);
    }
    if (version !== undefined) {
      try {
        await this.#assertWritable(version);
      } catch (err) {
        throw this.#map(err);
      }
    }
    const dataKey = await this.unwrapKey(wrapped, ctx);
    try {
      return await this.#wrapAt(version, dataKey, ctx);
    } finally {
      wipe(dataKey);
    }
  }

  /**
   * A view of this provider that writes under exactly `version` (see `KeyProvider.withWriteVersion`). A version
   * this provider cannot write under is refused by the view's writes, with `KEY_NOT_FOUND` naming what to add; its
   * unwraps are this provider's. Closing the view leaves this provider open; closing this provider closes the view.
   * @throws TypeError when `version` is not a non-empty string; ProviderError `PROVIDER_CLOSED` after `close()`.
   * @example
   * ```ts
   * const pinned = provider.withWriteVersion('2'); // the key store's active version
   * const wrapped = await pinned.wrapKey(dataKey, {}); // wrapped.keyVersion === '2', or KEY_NOT_FOUND
   * ```
   */
  withWriteVersion(version: string): KeyProvider {
    assertWriteVersion(version);
    this.assertOpen();
    return new WriteVersionView(this, version, {
      wrap: (dataKey, context) => this.#wrapAt(version, dataKey, context),
      generate: (context) => this.#generateAt(version, context),
      rewrap: (wrapped, context) => this.#rewrapAt(version, wrapped, context),
    });
  }

  async describe(): Promise<ProviderDescription> {
    this.assertOpen();
    try {
      return await this.runBackend('describe', (signal) => this._describe(signal));
    } catch (err) {
      throw this.#map(err);
    }
  }

  /**
   * Health and capability check: describes the KEK and round-trips a throwaway key. Never throws for an
   * unhealthy backend; reports `ok: false` with the error code and message.
   */
  async probe(): Promise<ProbeResult> {
    const start = performance.now();
    const base = { kind: this.kind, keyId: this.keyId };
    const probeKey = randomOwnedBytes(DATA_KEY_LENGTH);
    let back: Uint8Array | undefined;
    try {
      const description = await this.describe();
      const wrapped = await this.wrapKey(probeKey, PROBE_CONTEXT);
      back = await this.unwrapKey(wrapped, PROBE_CONTEXT);
      if (!Buffer.from(back).equals(Buffer.from(probeKey))) {
        throw new ProviderError('INTERNAL', 'the probe key did not round-trip');
      }
      return {
        ...base,
        ok: true,
        latencyMs: performance.now() - start,
        activeVersion: description.activeVersion,
        capabilities: description.capabilities,
        ...(description.details ? { details: description.details } : {}),
      };
    } catch (err) {
      const e = err instanceof KeyfoldError ? err : this.#map(err);
      return { ...base, ok: false, latencyMs: performance.now() - start, error: { code: e.code, message: e.message } };
    } finally {
      wipe(probeKey);
      wipe(back);
    }
  }

  /** Retry / breaker counters of this provider (`undefined` when resilience is off). */
  resilienceStats(): ResilienceStats | undefined {
    return this.resilience?.stats();
  }

  close(): Promise<void> {
    if (!this.#closing) {
      this.#closed = true;
      this.#closing = this._close();
    }
    return this.#closing;
  }
}

function freezeWrapped(w: WrappedKey): WrappedKey {
  return Object.freeze({ kind: w.kind, keyId: w.keyId, keyVersion: w.keyVersion, ciphertext: w.ciphertext });
}
