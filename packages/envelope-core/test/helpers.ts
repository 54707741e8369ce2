/**
 * Test-only KEK provider for the core's own tests (the core cannot depend on @keyfold/provider-local, which
 * depends on it). It is a complete BaseKeyProvider over core's localWrap; provider-local's real providers are
 * tested against the conformance suite in their own package.
 */
import { randomBytes } from 'node:crypto';
import {
  BaseKeyProvider,
  encodeContext,
  localUnwrap,
  localWrap,
  localWrapAad,
  UnwrapFailedError,
  type BaseProviderOptions,
  type EncryptionContext,
  type ProviderDescription,
  type WrappedKey,
} from '../src/index.js';

export class TestKekProvider extends BaseKeyProvider {
  readonly kind = 'test';
  readonly protection = 'software' as const;
  readonly keyId: string;
  readonly kek = new Uint8Array(randomBytes(32));
  wraps = 0;
  unwraps = 0;

  constructor(keyId = `test-${randomBytes(4).toString('hex')}`, options: BaseProviderOptions = {}) {
    super(options);
    this.keyId = keyId;
  }

  protected _wrapKey(dataKey: Uint8Array, context: EncryptionContext): Promise<WrappedKey> {
    this.wraps++;
    const aad = localWrapAad(this.kind, this.keyId, '1', encodeContext(context));
    return Promise.resolve({ kind: this.kind, keyId: this.keyId, keyVersion: '1', ciphertext: localWrap(this.kek, dataKey, aad) });
  }

  protected _unwrapKey(wrapped: WrappedKey, context: EncryptionContext): Promise<Uint8Array> {
    this.unwraps++;
    const aad = localWrapAad(this.kind, this.keyId, wrapped.keyVersion, encodeContext(context));
    const key = wrapped.keyVersion === '1' ? localUnwrap(this.kek, wrapped.ciphertext, aad) : undefined;
    if (!key) throw new UnwrapFailedError();
    return Promise.resolve(key);
  }

  protected _describe(): Promise<ProviderDescription> {
    return Promise.resolve({
      kind: this.kind,
      keyId: this.keyId,
      protection: this.protection,
      activeVersion: '1',
      versions: ['1'],
      capabilities: this.capabilities,
    });
  }
}
