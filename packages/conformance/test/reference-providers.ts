/**
 * Providers for the suite's own tests: a deliberately correct reference built on BaseKeyProvider, a correct one
 * written from scratch against the KeyProvider interface (so the suite does not lean on the base class), and
 * switches that plant one realistic bug each, so the tests can prove the matching check catches it.
 */
import { createDecipheriv, randomBytes } from 'node:crypto';
import {
  BaseKeyProvider,
  ProviderError,
  UnwrapFailedError,
  assertBytes,
  assertContext,
  assertWrappedKey,
  copyBytes,
  encodeContext,
  localUnwrap,
  localWrap,
  localWrapAad,
  randomOwnedBytes,
  wipe,
  type EncryptionContext,
  type KeyfoldError,
  type KeyProvider,
  type ProbeResult,
  type ProviderCapabilities,
  type ProviderDescription,
  type WrappedKey,
} from '@keyfold/envelope-core';

/** Bugs a BaseKeyProvider subclass can still have. */
export type ReferenceBug =
  | 'ignores-context'
  | 'ignores-key-version'
  | 'rotation-forgets-old-versions'
  | 'rotation-keeps-active'
  | 'leaks-plaintext-in-error'
  | 'throws-raw-backend-error'
  | 'write-version-falls-back';

export interface ReferenceOptions {
  bug?: ReferenceBug;
  /** Use this KEK instead of a random one (to plant the "same KEK on every makeProvider" bug). */
  kek?: Uint8Array;
}

/** A correct local-KEK provider on BaseKeyProvider, with optional planted bugs. */
export class ReferenceProvider extends BaseKeyProvider {
  readonly kind = 'reference';
  readonly keyId = 'ref';
  readonly protection = 'software' as const;
  readonly #keks = new Map<string, Uint8Array>();
  #active = '1';
  readonly #bug: ReferenceBug | undefined;

  constructor(options: ReferenceOptions = {}) {
    super({ resilience: { retry: false } });
    this.#bug = options.bug;
    this.#keks.set('1', options.kek ? copyBytes(options.kek) : randomOwnedBytes(32));
  }

  #aad(version: string, context: EncryptionContext): Uint8Array {
    const ctx = this.#bug === 'ignores-context' ? {} : context;
    const v = this.#bug === 'ignores-key-version' ? '' : version;
    return localWrapAad(this.kind, this.keyId, v, encodeContext(ctx));
  }

  /** Writes under any version it holds (withWriteVersion). */
  protected override get addressesVersions(): boolean {
    return true;
  }

  protected override _writeVersionProblem(version: string): Promise<string | undefined> {
    const ok = this.#keks.has(version) || this.#bug === 'write-version-falls-back';
    return Promise.resolve(ok ? undefined : `reference KEK version ${version} is not loaded`);
  }

  protected override _wrapKey(dataKey: Uint8Array, context: EncryptionContext, _signal?: AbortSignal, writeVersion?: string): Promise<WrappedKey> {
    const version = writeVersion ?? this.#active;
    // The planted bug: a version it does not hold silently falls back to the active KEK (labelled as asked).
    const kek = this.#keks.get(version) ?? (this.#bug === 'write-version-falls-back' ? this.#keks.get(this.#active) : undefined);
    if (!kek) return Promise.reject(new ProviderError('KEY_NOT_FOUND', `no KEK version ${version}`));
    const ciphertext = localWrap(kek, dataKey, this.#aad(version, context));
    return Promise.resolve({ kind: this.kind, keyId: this.keyId, keyVersion: version, ciphertext });
  }

  protected override _unwrapKey(wrapped: WrappedKey, context: EncryptionContext): Promise<Uint8Array> {
    const version = this.#bug === 'ignores-key-version' ? this.#active : wrapped.keyVersion;
    const kek = this.#keks.get(version);
    if (!kek) return Promise.reject(new UnwrapFailedError());
    if (this.#bug === 'leaks-plaintext-in-error') {
      // The classic mistake: GCM `update` releases plaintext before `final` has checked the tag.
      const ct = wrapped.ciphertext;
      if (ct.length === 60) {
        const d = createDecipheriv('aes-256-gcm', kek, ct.subarray(0, 12), { authTagLength: 16 });
        d.setAAD(this.#aad(version, context));
        d.setAuthTag(ct.subarray(44));
        const plain = d.update(ct.subarray(12, 44));
        try {
          d.final();
        } catch (err) {
          return Promise.reject(new Error(`tag mismatch, plaintext was ${plain.toString('hex')}`, { cause: err }));
        }
        return Promise.resolve(new Uint8Array(plain));
      }
    }
    const key = localUnwrap(kek, wrapped.ciphertext, this.#aad(version, context));
    if (!key) return Promise.reject(new UnwrapFailedError());
    return Promise.resolve(key);
  }

  protected override _describe(): Promise<ProviderDescription> {
    const versions = [...this.#keks.keys()].sort((a, b) => Number(a) - Number(b));
    return Promise.resolve({
      kind: this.kind,
      keyId: this.keyId,
      protection: this.protection,
      activeVersion: this.#active,
      versions,
      capabilities: this.capabilities,
    });
  }

  protected override get capabilities(): ProviderCapabilities {
    return { ...super.capabilities, rotate: true };
  }

  protected override _close(): Promise<void> {
    for (const k of this.#keks.values()) wipe(k);
    this.#keks.clear();
    return Promise.resolve();
  }

  /** Adds and activates a new version. */
  rotate(): Promise<string> {
    this.assertOpen();
    const next = String(Math.max(...[...this.#keks.keys()].map(Number)) + 1);
    if (this.#bug === 'rotation-forgets-old-versions') {
      for (const k of this.#keks.values()) wipe(k);
      this.#keks.clear();
    }
    this.#keks.set(next, randomOwnedBytes(32));
    if (this.#bug !== 'rotation-keeps-active') this.#active = next;
    return Promise.resolve(next);
  }
}

/** A backend failure as an SDK would throw it. */
export class FakeSdkError extends Error {
  constructor(readonly statusCode: number) {
    super(`service returned ${statusCode}`);
    this.name = 'FakeSdkError';
  }
}

/** A provider whose "backend" is down: every call throws a FakeSdkError, mapped (or not) to a code. */
export class OutageProvider extends BaseKeyProvider {
  readonly kind = 'reference';
  readonly keyId = 'ref';
  readonly protection = 'kms' as const;
  readonly #mapErrors: boolean;

  constructor(mapErrors: boolean) {
    super({ resilience: { retry: false, circuitBreaker: false } });
    this.#mapErrors = mapErrors;
  }

  protected override _wrapKey(): Promise<WrappedKey> {
    return Promise.reject(new FakeSdkError(503));
  }
  protected override _unwrapKey(): Promise<Uint8Array> {
    return Promise.reject(new FakeSdkError(503));
  }
  protected override _describe(): Promise<ProviderDescription> {
    return Promise.reject(new FakeSdkError(503));
  }
  protected override mapBackendError(err: unknown): KeyfoldError | undefined {
    if (this.#mapErrors && err instanceof FakeSdkError && err.statusCode === 503) {
      return new ProviderError('UNAVAILABLE', 'the reference backend is unavailable (503)', { cause: err });
    }
    return undefined;
  }
}

/** Bugs of a provider written without BaseKeyProvider. */
export type NaiveBug =
  | 'returns-cached-key'
  | 'retains-caller-key'
  | 'raw-crypto-errors'
  | 'no-argument-validation'
  | 'close-not-idempotent'
  | 'shared-scratch-buffer'
  | 'pooled-key-buffers'
  | 'probe-throws-after-close'
  | 'claims-rewrap'
  | 'closed-calls-succeed'
  | 'leaves-key-in-clear';

const PROBE_CONTEXT = { probe: '1' };
const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * A KeyProvider written directly against the interface. Correct unless a bug is planted: it validates and copies
 * its inputs synchronously, returns fresh buffers, maps every unwrap failure to UNWRAP_FAILED.
 */
export class NaiveProvider implements KeyProvider {
  readonly kind = 'naive';
  readonly keyId = 'naive-1';
  readonly protection = 'software' as const;
  readonly #kek = randomOwnedBytes(32);
  readonly #bug: NaiveBug | undefined;
  readonly #cache = new Map<string, Uint8Array>();
  readonly #scratch = new Uint8Array(32);
  #closed = false;

  constructor(bug?: NaiveBug) {
    this.#bug = bug;
  }

  #assertOpen(): void {
    if (this.#closed && this.#bug !== 'closed-calls-succeed') {
      throw new ProviderError('PROVIDER_CLOSED', 'the naive provider is closed');
    }
  }

  #aad(context: EncryptionContext): Uint8Array {
    return localWrapAad(this.kind, this.keyId, '1', encodeContext(context));
  }

  async wrapKey(dataKey: Uint8Array, context: EncryptionContext): Promise<WrappedKey> {
    this.#assertOpen();
    if (this.#bug !== 'no-argument-validation') {
      assertBytes(dataKey, 32, 'dataKey');
      assertContext(context);
    }
    const ctx = { ...context };
    let key: Uint8Array;
    if (this.#bug === 'retains-caller-key') {
      await tick();
      key = dataKey;
    } else if (this.#bug === 'shared-scratch-buffer') {
      this.#scratch.set(dataKey);
      await tick();
      key = this.#scratch;
    } else {
      key = copyBytes(dataKey);
      await tick();
    }
    if (this.#bug === 'no-argument-validation') {
      const padded = new Uint8Array(32);
      padded.set(key.subarray(0, 32));
      key = padded;
    }
    if (this.#bug === 'leaves-key-in-clear') {
      return { kind: this.kind, keyId: this.keyId, keyVersion: '1', ciphertext: Uint8Array.from([...key, ...this.#aad(ctx).subarray(0, 8)]) };
    }
    return { kind: this.kind, keyId: this.keyId, keyVersion: '1', ciphertext: localWrap(this.#kek, key, this.#aad(ctx)) };
  }

  async unwrapKey(wrapped: WrappedKey, context: EncryptionContext): Promise<Uint8Array> {
    this.#assertOpen();
    assertWrappedKey(wrapped);
    assertContext(context);
    const ct = copyBytes(wrapped.ciphertext);
    const ctx = { ...context };
    const version = wrapped.keyVersion;
    const ident = `${wrapped.kind}\u0000${wrapped.keyId}`;
    await tick();
    if (this.#bug === 'leaves-key-in-clear') {
      if (ct.length !== 40) throw new UnwrapFailedError();
      return ct.slice(0, 32);
    }
    if (ident !== `${this.kind}\u0000${this.keyId}` || version !== '1') throw new UnwrapFailedError();
    if (this.#bug === 'raw-crypto-errors') {
      const d = createDecipheriv('aes-256-gcm', this.#kek, ct.subarray(0, 12), { authTagLength: 16 });
      d.setAAD(this.#aad(ctx));
      d.setAuthTag(ct.subarray(44));
      const out = Buffer.concat([d.update(ct.subarray(12, 44)), d.final()]);
      return new Uint8Array(out);
    }
    const key = localUnwrap(this.#kek, ct, this.#aad(ctx));
    if (!key) throw new UnwrapFailedError();
    if (this.#bug === 'returns-cached-key') {
      const id = Buffer.from(ct).toString('hex');
      const cached = this.#cache.get(id);
      if (cached) return cached;
      this.#cache.set(id, key);
      return key;
    }
    if (this.#bug === 'pooled-key-buffers') {
      const pooled = Buffer.allocUnsafe(32);
      pooled.set(key);
      key.fill(0);
      return pooled;
    }
    return key;
  }

  async describe(): Promise<ProviderDescription> {
    this.#assertOpen();
    await tick();
    return {
      kind: this.kind,
      keyId: this.keyId,
      protection: this.protection,
      activeVersion: '1',
      versions: ['1'],
      capabilities: { generateDataKey: false, rewrapKey: this.#bug === 'claims-rewrap', rotate: false },
    };
  }

  async probe(): Promise<ProbeResult> {
    const start = performance.now();
    if (this.#bug === 'probe-throws-after-close') this.#assertOpen();
    const key = new Uint8Array(randomBytes(32));
    try {
      const w = await this.wrapKey(key, PROBE_CONTEXT);
      const back = await this.unwrapKey(w, PROBE_CONTEXT);
      back.fill(0);
      return { ok: true, kind: this.kind, keyId: this.keyId, latencyMs: performance.now() - start };
    } catch (err) {
      const code = (err as { code?: string }).code ?? 'INTERNAL';
      return { ok: false, kind: this.kind, keyId: this.keyId, latencyMs: performance.now() - start, error: { code, message: String(err) } };
    } finally {
      key.fill(0);
    }
  }

  close(): Promise<void> {
    if (this.#closed && this.#bug === 'close-not-idempotent') {
      return Promise.reject(new Error('already closed'));
    }
    this.#closed = true;
    return Promise.resolve();
  }
}
