import { describe, expect, it } from 'vitest';
import {
  BaseKeyProvider,
  UnwrapFailedError,
  createEnvelope,
  localUnwrap,
  localWrap,
  localWrapAad,
  encodeContext,
  randomOwnedBytes,
  writeUnderVersion,
  type EncryptionContext,
  type KeyProvider,
  type ProviderDescription,
  type WrappedKey,
} from '../src/index.js';

/** A provider that writes under its own active version only (like AWS KMS): it cannot be asked for another. */
class FixedVersionProvider extends BaseKeyProvider {
  readonly kind = 'fixed';
  readonly keyId = 'fixed-key';
  readonly protection = 'software' as const;
  readonly #kek = randomOwnedBytes(32);
  constructor(
    public active: string,
    public lieAbout?: string,
  ) {
    super({ resilience: false });
  }
  protected _wrapKey(dataKey: Uint8Array, context: EncryptionContext): Promise<WrappedKey> {
    const keyVersion = this.lieAbout ?? this.active;
    const ciphertext = localWrap(this.#kek, dataKey, localWrapAad(this.kind, this.keyId, keyVersion, encodeContext(context)));
    return Promise.resolve({ kind: this.kind, keyId: this.keyId, keyVersion, ciphertext });
  }
  protected _unwrapKey(wrapped: WrappedKey, context: EncryptionContext): Promise<Uint8Array> {
    const key = localUnwrap(this.#kek, wrapped.ciphertext, localWrapAad(this.kind, this.keyId, wrapped.keyVersion, encodeContext(context)));
    return key ? Promise.resolve(key) : Promise.reject(new UnwrapFailedError());
  }
  protected _describe(): Promise<ProviderDescription> {
    return Promise.resolve({ kind: this.kind, keyId: this.keyId, protection: this.protection, activeVersion: this.active, versions: [this.active], capabilities: this.capabilities });
  }
}

describe('withWriteVersion / writeUnderVersion', () => {
  it('a provider that cannot address versions writes only under its own active version; any other is KEY_NOT_FOUND, unwraps still work', async () => {
    const p = new FixedVersionProvider('7');
    const key = new Uint8Array(32).fill(3);
    const own = await p.wrapKey(key, {});
    expect((await p.describe()).capabilities.writeVersion).toBe(false);
    const same = p.withWriteVersion('7');
    expect((await same.wrapKey(key, {})).keyVersion).toBe('7');
    const other = p.withWriteVersion('8');
    expect(await other.describe()).toMatchObject({ activeVersion: '8' });
    await expect(other.wrapKey(key, {})).rejects.toMatchObject({ code: 'KEY_NOT_FOUND' });
    await expect(other.generateDataKey!({})).rejects.toMatchObject({ code: 'KEY_NOT_FOUND' });
    await expect(other.rewrapKey!(own, {})).rejects.toMatchObject({ code: 'KEY_NOT_FOUND' });
    expect(await other.unwrapKey(own, {})).toEqual(key);
    expect(await other.probe()).toMatchObject({ ok: false, error: { code: 'KEY_NOT_FOUND' } });
    // An envelope over the view refuses to seal; the provider itself still does.
    await expect(createEnvelope({ providers: [other] }).seal('x')).rejects.toMatchObject({ code: 'KEY_NOT_FOUND' });
    await other.close();
    expect((await p.wrapKey(key, {})).keyVersion).toBe('7');
    await p.close();
    await expect(same.wrapKey(key, {})).rejects.toMatchObject({ code: 'PROVIDER_CLOSED' });
  });

  it('a write that comes back under another version than asked fails closed', async () => {
    const p = new FixedVersionProvider('7', '6');
    await expect(p.withWriteVersion('7').wrapKey(new Uint8Array(32), {})).rejects.toMatchObject({ code: 'INTERNAL' });
  });

  it('writeUnderVersion covers a provider without withWriteVersion the same way', async () => {
    const base = new FixedVersionProvider('2');
    const plain: KeyProvider = {
      kind: base.kind,
      keyId: base.keyId,
      protection: base.protection,
      wrapKey: (k, c) => base.wrapKey(k, c),
      unwrapKey: (w, c) => base.unwrapKey(w, c),
      describe: () => base.describe(),
      probe: () => base.probe(),
      close: () => base.close(),
    };
    const key = new Uint8Array(32).fill(9);
    expect((await writeUnderVersion(plain, '2').wrapKey(key, {})).keyVersion).toBe('2');
    const g = await writeUnderVersion(plain, '2').generateDataKey!({});
    expect(g.wrapped.keyVersion).toBe('2');
    await expect(writeUnderVersion(plain, '3').wrapKey(key, {})).rejects.toMatchObject({ code: 'KEY_NOT_FOUND' });
    expect(() => writeUnderVersion(plain, '')).toThrow(RangeError);
    expect(() => writeUnderVersion(plain, 3 as unknown as string)).toThrow(TypeError);
    expect(() => writeUnderVersion({} as KeyProvider, '1')).toThrow(TypeError);
    await base.close();
  });
});
