/**
 * A provider built on BaseKeyProvider whose backend fails on purpose, following a script of outcomes, for the
 * resilience and provider-base tests. Counts every backend call.
 */
import {
  BaseKeyProvider,
  type KeyfoldError,
  ProviderError,
  localUnwrap,
  localWrap,
  localWrapAad,
  encodeContext,
  UnwrapFailedError,
  type BaseProviderOptions,
  type EncryptionContext,
  type ProviderDescription,
  type WrappedKey,
} from '../src/index.js';

/** What the backend does on one call. */
export type Outcome =
  | 'ok'
  | 'throttled' // KeyfoldError THROTTLED thrown by the backend code itself
  | 'unavailable'
  | 'unwrap-failed'
  | 'hang' // never answers
  | 'raw-throttle' // a raw SDK-style error, mapped by mapBackendError to THROTTLED
  | 'raw-unavailable' // a raw SDK-style error, mapped to UNAVAILABLE
  | 'raw-denied' // a raw SDK-style error, mapped to ACCESS_DENIED
  | 'raw-unknown'; // a raw Error nobody maps

export function rawError(name: string, message = name): Error {
  const e = new Error(message);
  e.name = name;
  return e;
}

export class FlakyProvider extends BaseKeyProvider {
  readonly kind = 'flaky';
  readonly protection = 'kms' as const;
  readonly keyId: string;
  readonly kek = new Uint8Array(32).fill(9);
  /** Outcomes of the next backend calls, in order; when empty, `fallback`. */
  script: Outcome[] = [];
  fallback: Outcome = 'ok';
  backendCalls = 0;
  readonly ops: string[] = [];
  /** Every error handed to mapBackendError. */
  readonly mapped: unknown[] = [];
  /** Data keys as `_wrapKey` received them (the base class must wipe these copies after the call). */
  readonly received: Uint8Array[] = [];
  /** Set by _unwrapKey when it returned a key: the buffer it handed out. */
  lastReturned: Uint8Array | undefined;
  describeOutcome: Outcome = 'ok';

  constructor(keyId = 'flaky-key', options: BaseProviderOptions = {}) {
    super(options);
    this.keyId = keyId;
  }

  #next(op: string): Promise<void> {
    this.backendCalls++;
    this.ops.push(op);
    const outcome = this.script.shift() ?? this.fallback;
    return FlakyProvider.act(outcome);
  }

  static act(outcome: Outcome): Promise<void> {
    switch (outcome) {
      case 'ok':
        return Promise.resolve();
      case 'throttled':
        return Promise.reject(new ProviderError('THROTTLED', 'slow down'));
      case 'unavailable':
        return Promise.reject(new ProviderError('UNAVAILABLE', 'backend down'));
      case 'unwrap-failed':
        return Promise.reject(new UnwrapFailedError());
      case 'hang':
        return new Promise<void>(() => undefined);
      case 'raw-throttle':
        return Promise.reject(rawError('ThrottlingException', 'Rate exceeded'));
      case 'raw-unavailable':
        return Promise.reject(rawError('ServiceUnavailableException'));
      case 'raw-denied':
        return Promise.reject(rawError('AccessDeniedException', 'not allowed'));
      case 'raw-unknown':
        return Promise.reject(new Error('socket hang up'));
    }
  }

  protected override mapBackendError(err: unknown): KeyfoldError | undefined {
    this.mapped.push(err);
    const name = err instanceof Error ? err.name : '';
    if (name === 'ThrottlingException') return new ProviderError('THROTTLED', 'the KMS throttled the request', { cause: err });
    if (name === 'ServiceUnavailableException') return new ProviderError('UNAVAILABLE', 'the KMS is unavailable', { cause: err });
    if (name === 'AccessDeniedException') return new ProviderError('ACCESS_DENIED', 'access denied by the KMS', { cause: err });
    return undefined;
  }

  protected async _wrapKey(dataKey: Uint8Array, context: EncryptionContext): Promise<WrappedKey> {
    this.received.push(dataKey);
    await this.#next('wrap');
    const aad = localWrapAad(this.kind, this.keyId, '1', encodeContext(context));
    return { kind: this.kind, keyId: this.keyId, keyVersion: '1', ciphertext: localWrap(this.kek, dataKey, aad) };
  }

  protected async _unwrapKey(wrapped: WrappedKey, context: EncryptionContext): Promise<Uint8Array> {
    await this.#next('unwrap');
    const aad = localWrapAad(this.kind, this.keyId, wrapped.keyVersion, encodeContext(context));
    const key = localUnwrap(this.kek, wrapped.ciphertext, aad);
    if (!key) throw new UnwrapFailedError();
    this.lastReturned = key;
    return key;
  }

  protected async _describe(): Promise<ProviderDescription> {
    this.backendCalls++;
    this.ops.push('describe');
    await FlakyProvider.act(this.describeOutcome);
    return {
      kind: this.kind,
      keyId: this.keyId,
      protection: this.protection,
      activeVersion: '1',
      versions: ['1'],
      capabilities: this.capabilities,
    };
  }
}
