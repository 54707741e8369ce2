/**
 * Cross-check against node:crypto: an envelope made by the package is opened by the independent reference of
 * docs/FORMAT.md (test/reference.ts: HKDF-Expand, HMAC commitment, GCM nonces and AAD written out on node:crypto),
 * and an envelope made by the reference is opened by the package. The data key comes from a provider that records
 * the keys it wraps.
 */
import { createCipheriv, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createEnvelope } from '../src/index.js';
import { LocalKekProvider, pseudoRandomBytes, runTransform } from './helpers.js';
import {
  refCommitment,
  refEncodeContext,
  refEncodeWrappedKeys,
  refFrameAad,
  refHkdfExpand,
  refMessageKey,
  refNonce,
  refOpen,
  refParseHeader,
  refSerializeHeader,
} from './reference.js';

describe('the reference itself', () => {
  it('HKDF-Expand matches RFC 5869 test case 1 (OKM from PRK and info)', () => {
    const prk = Buffer.from('077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5', 'hex');
    const info = Buffer.from('f0f1f2f3f4f5f6f7f8f9', 'hex');
    const okm = '3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865';
    expect(Buffer.from(refHkdfExpand(prk, info, 42)).toString('hex')).toBe(okm);
  });

  it('the one-block form equals HMAC(DK, "keyfold/v1/suite1/enc" || salt || 0x01), as documented', () => {
    const dk = pseudoRandomBytes(32, 1);
    const salt = pseudoRandomBytes(16, 2);
    const mac = createHmac('sha256', dk).update('keyfold/v1/suite1/enc').update(salt).update(Buffer.from([1])).digest();
    expect(Buffer.from(refMessageKey(dk, salt))).toEqual(mac);
  });
});

describe('package envelope -> node:crypto', () => {
  it('single-shot: commitment and body match the documented construction', async () => {
    const provider = new LocalKekProvider({ keyId: 'xcheck' });
    const env = createEnvelope({ providers: [provider] });
    const plaintext = pseudoRandomBytes(777, 9);
    const context = { tenant: 'acme', table: 'cards' };
    const sealed = await env.seal(plaintext, context);
    const dataKey = provider.wrappedDataKeys[0]!;
    const h = refParseHeader(sealed);

    expect(h.version).toBe(1);
    expect(h.suite).toBe(1);
    expect(h.frameSize).toBe(0);
    expect(h.context).toEqual(context);
    expect(Buffer.from(h.contextBytes)).toEqual(Buffer.from(refEncodeContext(context)));
    expect(h.length).toBe(env.inspect(sealed).headerLength);
    // commitment = HMAC-SHA-256(DK, "keyfold/v1/suite1/commit" || header[0 .. commitment))
    expect(Buffer.from(h.commitment)).toEqual(Buffer.from(refCommitment(dataKey, sealed.subarray(0, h.commitmentOffset))));
    // body = AES-256-GCM(K_enc, nonce 0, AAD = core || u64 0 || 01 || u32 len), tag 16
    const kEnc = refMessageKey(dataKey, h.salt);
    const c = createCipheriv('aes-256-gcm', kEnc, refNonce(0), { authTagLength: 16 });
    c.setAAD(refFrameAad(sealed.subarray(0, h.coreLength), 0, true, plaintext.length));
    const expectedBody = Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()]);
    expect(Buffer.from(sealed.subarray(h.length))).toEqual(expectedBody);
    expect(refOpen(sealed, dataKey)).toEqual(Buffer.from(plaintext));
  });

  it('framed: every frame decrypts with node:crypto under its index, final flag and length', async () => {
    const provider = new LocalKekProvider({ keyId: 'xcheck-framed' });
    const env = createEnvelope({ providers: [provider], frameSize: 100 });
    const plaintext = pseudoRandomBytes(250, 4);
    const sealed = await runTransform(env.sealStream({ s: '1' }), [plaintext]);
    const dataKey = provider.wrappedDataKeys[0]!;
    const h = refParseHeader(sealed);
    expect(h.frameSize).toBe(100);
    expect(Buffer.from(h.commitment)).toEqual(Buffer.from(refCommitment(dataKey, sealed.subarray(0, h.commitmentOffset))));
    expect(refOpen(sealed, dataKey)).toEqual(Buffer.from(plaintext));
    // and a different data key opens nothing
    expect(refOpen(sealed, pseudoRandomBytes(32, 99))).toBeUndefined();
  });

  it('two messages under one cached data key use different salts and different body keys', async () => {
    const provider = new LocalKekProvider({ keyId: 'xcheck-cache' });
    const env = createEnvelope({ providers: [provider], cache: true });
    const a = await env.seal('same');
    const b = await env.seal('same');
    expect(provider.wraps).toBe(1);
    const ha = refParseHeader(a);
    const hb = refParseHeader(b);
    expect(Buffer.from(ha.salt)).not.toEqual(Buffer.from(hb.salt));
    const dk = provider.wrappedDataKeys[0]!;
    expect(Buffer.from(refMessageKey(dk, ha.salt))).not.toEqual(Buffer.from(refMessageKey(dk, hb.salt)));
    expect(Buffer.from(a.subarray(ha.length))).not.toEqual(Buffer.from(b.subarray(hb.length)));
    expect(refOpen(a, dk)?.toString()).toBe('same');
    expect(refOpen(b, dk)?.toString()).toBe('same');
  });
});

describe('node:crypto envelope -> package', () => {
  it('an envelope built by the reference opens with the package (single-shot and framed)', async () => {
    const provider = new LocalKekProvider({ keyId: 'xcheck-ref' });
    const env = createEnvelope({ providers: [provider] });
    const dataKey = pseudoRandomBytes(32, 123);
    const context = { app: 'ref' };
    const wrapped = await provider.wrapKey(dataKey, context);
    const salt = pseudoRandomBytes(16, 5);
    const kEnc = refMessageKey(dataKey, salt);

    // single-shot
    const header = refSerializeHeader({ contextBytes: refEncodeContext(context), wrappedSection: refEncodeWrappedKeys([wrapped]), salt, dataKey });
    const core = header.subarray(0, 8 + refEncodeContext(context).length);
    const pt = Buffer.from('made by the reference');
    const c = createCipheriv('aes-256-gcm', kEnc, refNonce(0), { authTagLength: 16 });
    c.setAAD(refFrameAad(core, 0, true, pt.length));
    const single = Buffer.concat([header, c.update(pt), c.final(), c.getAuthTag()]);
    expect(Buffer.from(await env.open(single, { context }))).toEqual(pt);

    // framed, frame size 8: frames "01234567", "89abcdef", final "xy"
    const fheader = refSerializeHeader({ frameSize: 8, contextBytes: refEncodeContext(context), wrappedKeys: [wrapped], salt, dataKey });
    const fcore = fheader.subarray(0, core.length);
    const chunks = ['01234567', '89abcdef', 'xy'];
    const frames = chunks.map((text, i) => {
      const final = i === chunks.length - 1;
      const data = Buffer.from(text);
      const fc = createCipheriv('aes-256-gcm', kEnc, refNonce(i), { authTagLength: 16 });
      fc.setAAD(refFrameAad(fcore, i, final, data.length));
      const word = Buffer.alloc(4);
      word.writeUInt32BE((final ? 0x8000_0000 : 0) + data.length);
      return Buffer.concat([word, fc.update(data), fc.final(), fc.getAuthTag()]);
    });
    const framed = Buffer.concat([fheader, ...frames]);
    expect(new TextDecoder().decode(await env.open(framed))).toBe('0123456789abcdefxy');
    expect((await runTransform(env.openStream({ context }), [framed])).toString()).toBe('0123456789abcdefxy');
  });
});
