/**
 * The exported AES-256-GCM helpers: interoperable with node:crypto, 16-byte tags only (a truncated tag never
 * verifies), no plaintext for a failed tag, wrong key or IV sizes as caller mistakes.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { gcmOpen, gcmOpenWithIv, gcmSeal, gcmSealWithRandomIv } from '../src/index.js';

const key = new Uint8Array(randomBytes(32));
const iv = new Uint8Array(randomBytes(12));
const aad = new TextEncoder().encode('bound');
const plaintext = new TextEncoder().encode('attack at dawn');

describe('gcmSeal / gcmOpen', () => {
  it('gcmSeal output is node:crypto AES-256-GCM ciphertext || 16-byte tag', () => {
    const sealed = gcmSeal(key, iv, plaintext, aad);
    expect(sealed.length).toBe(plaintext.length + 16);
    const d = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: 16 });
    d.setAAD(aad);
    d.setAuthTag(sealed.subarray(plaintext.length));
    expect(Buffer.concat([d.update(sealed.subarray(0, plaintext.length)), d.final()])).toEqual(Buffer.from(plaintext));
  });

  it('gcmOpen opens what node:crypto sealed', () => {
    const c = createCipheriv('aes-256-gcm', key, iv, { authTagLength: 16 });
    c.setAAD(aad);
    const sealed = Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()]);
    expect(Buffer.from(gcmOpen(key, iv, sealed, aad)!)).toEqual(Buffer.from(plaintext));
  });

  it('a truncated tag never verifies: node:crypto output with a 12- or 4-byte tag is refused', () => {
    for (const tagLength of [4, 8, 12]) {
      const c = createCipheriv('aes-256-gcm', key, iv, { authTagLength: tagLength });
      c.setAAD(aad);
      const sealed = Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()]);
      expect(gcmOpen(key, iv, sealed, aad)).toBeUndefined();
    }
    const good = gcmSeal(key, iv, plaintext, aad);
    for (let cut = 1; cut <= 16; cut++) expect(gcmOpen(key, iv, good.subarray(0, good.length - cut), aad)).toBeUndefined();
  });

  it('any flipped bit, another AAD, IV or key -> undefined', () => {
    const sealed = gcmSeal(key, iv, plaintext, aad);
    for (let i = 0; i < sealed.length * 8; i++) {
      const bad = Uint8Array.from(sealed);
      bad[i >> 3] = (bad[i >> 3] as number) ^ (1 << (i & 7));
      expect(gcmOpen(key, iv, bad, aad)).toBeUndefined();
    }
    expect(gcmOpen(key, iv, sealed, new Uint8Array(0))).toBeUndefined();
    expect(gcmOpen(key, new Uint8Array(12), sealed, aad)).toBeUndefined();
    expect(gcmOpen(new Uint8Array(32), iv, sealed, aad)).toBeUndefined();
  });

  it('wrong key or IV sizes are caller mistakes (RangeError / TypeError), for both directions', () => {
    expect(() => gcmSeal(new Uint8Array(16), iv, plaintext, aad)).toThrow(RangeError);
    expect(() => gcmSeal(key, new Uint8Array(16), plaintext, aad)).toThrow(RangeError);
    expect(() => gcmOpen(new Uint8Array(31), iv, new Uint8Array(32), aad)).toThrow(RangeError);
    expect(() => gcmOpen(key, 'iv' as never, new Uint8Array(32), aad)).toThrow(TypeError);
  });
});

describe('gcmSealWithRandomIv / gcmOpenWithIv', () => {
  it('iv(12) || ciphertext || tag(16) under a fresh IV each time; round-trips', () => {
    const a = gcmSealWithRandomIv(key, plaintext, aad);
    const b = gcmSealWithRandomIv(key, plaintext, aad);
    expect(a.length).toBe(12 + plaintext.length + 16);
    expect(Buffer.from(a.subarray(0, 12))).not.toEqual(Buffer.from(b.subarray(0, 12)));
    expect(Buffer.from(gcmOpenWithIv(key, a, aad)!)).toEqual(Buffer.from(plaintext));
    expect(Buffer.from(gcmOpen(key, a.subarray(0, 12), a.subarray(12), aad)!)).toEqual(Buffer.from(plaintext));
  });

  it('input shorter than IV + tag, or tampered -> undefined', () => {
    for (let n = 0; n < 28; n++) expect(gcmOpenWithIv(key, new Uint8Array(n), aad)).toBeUndefined();
    const sealed = gcmSealWithRandomIv(key, plaintext, aad);
    sealed[3] = (sealed[3] as number) ^ 1;
    expect(gcmOpenWithIv(key, sealed, aad)).toBeUndefined();
  });
});
