/**
 * The documented wire format, cross-checked against node:crypto: a KEK with a value known only to the test is
 * imported into SoftHSM2 (sensitive, not extractable), the provider wraps inside the token, and node:crypto opens the
 * result with the same KEK and the documented AAD / binding tag. Then hostile wrapped keys (random bytes, every
 * format byte, every length) are thrown at unwrap: all are the generic UNWRAP_FAILED.
 */
import { createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { encodeContext, isKeyfoldError } from '@keyfold/envelope-core';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPkcs11Provider, type Pkcs11Provider } from '../src/index.js';
import { wrapAad } from '../src/wrap-format.js';
import { createSoftHsm, importKek, SOFTHSM_LIBRARY, uniqueLabel } from './helpers/hsm.js';

const hsm = createSoftHsm();
const token = hsm.token('format');
const kek = new Uint8Array(randomBytes(32));
const keyLabel = uniqueLabel('known');
importKek(token, `${keyLabel}.v1`, kek);
const base = { library: SOFTHSM_LIBRARY, tokenLabel: token.label, pin: token.pin, keyLabel } as const;

let gcm: Pkcs11Provider;
let kwp: Pkcs11Provider;
beforeAll(async () => {
  gcm = await createPkcs11Provider({ ...base, mechanism: 'AES_GCM' });
  kwp = await createPkcs11Provider({ ...base, mechanism: 'AES_KEY_WRAP_PAD' });
});
afterAll(async () => {
  await Promise.all([gcm.close(), kwp.close()]);
});

const context = { tenant: 'acme', 'clé': 'värde' };

describe('wire format', () => {
  it('AES_GCM: 0x01 || iv(12) || ct(32) || tag(16), opened by node:crypto with the documented AAD', async () => {
    const key = new Uint8Array(randomBytes(32));
    const w = await gcm.wrapKey(key, context);
    expect(w.ciphertext.length).toBe(61);
    expect(w.ciphertext[0]).toBe(0x01);
    const aad = wrapAad('AES_GCM', 'pkcs11', keyLabel, '1', encodeContext(context));
    const d = createDecipheriv('aes-256-gcm', kek, w.ciphertext.subarray(1, 13), { authTagLength: 16 });
    d.setAAD(aad);
    d.setAuthTag(w.ciphertext.subarray(45));
    const out = Buffer.concat([d.update(w.ciphertext.subarray(13, 45)), d.final()]);
    expect(new Uint8Array(out)).toEqual(key);
    // Fresh IV per wrap.
    const again = await gcm.wrapKey(key, context);
    expect(Buffer.from(again.ciphertext.subarray(1, 13)).equals(Buffer.from(w.ciphertext.subarray(1, 13)))).toBe(false);
  });

  it('AES_KEY_WRAP_PAD: 0x02 || RFC 5649(40) || HMAC(HMAC(dataKey, label||1), AAD)(32), checked with node:crypto', async () => {
    const key = new Uint8Array(randomBytes(32));
    const w = await kwp.wrapKey(key, context);
    expect(w.ciphertext.length).toBe(73);
    expect(w.ciphertext[0]).toBe(0x02);
    const d = createDecipheriv('id-aes256-wrap-pad', kek, Buffer.from('a65959a6', 'hex'));
    const out = Buffer.concat([d.update(w.ciphertext.subarray(1, 41)), d.final()]);
    expect(new Uint8Array(out)).toEqual(key);
    const bindingKey = createHmac('sha256', key).update('keyfold/pkcs11/kwp-binding/v1').update(Uint8Array.of(1)).digest();
    const aad = wrapAad('AES_KEY_WRAP_PAD', 'pkcs11', keyLabel, '1', encodeContext(context));
    const tag = createHmac('sha256', bindingKey).update(aad).digest();
    expect(Buffer.from(w.ciphertext.subarray(41)).equals(tag)).toBe(true);
  });

  it('each mode unwraps what the other made (the format byte decides), with the context still bound', async () => {
    const key = new Uint8Array(randomBytes(32));
    expect(await kwp.unwrapKey(await gcm.wrapKey(key, context), context)).toEqual(key);
    expect(await gcm.unwrapKey(await kwp.wrapKey(key, context), context)).toEqual(key);
    const fromKwp = await kwp.wrapKey(key, context);
    const err = await gcm.unwrapKey(fromKwp, { tenant: 'other' }).catch((e: unknown) => e);
    expect(isKeyfoldError(err, 'UNWRAP_FAILED')).toBe(true);
  });

  it('a wrapped key whose RFC 5649 part is swapped for another key\'s fails the binding tag', async () => {
    const a = await kwp.wrapKey(new Uint8Array(randomBytes(32)), context);
    const b = await kwp.wrapKey(new Uint8Array(randomBytes(32)), context);
    const mixed = new Uint8Array(a.ciphertext);
    mixed.set(b.ciphertext.subarray(1, 41), 1);
    const err = await kwp.unwrapKey({ ...a, ciphertext: mixed }, context).catch((e: unknown) => e);
    expect(isKeyfoldError(err, 'UNWRAP_FAILED')).toBe(true);
    expect((err as Error).cause).toBeUndefined();
  });

  it('hostile wrapped keys (any bytes, any length, any format byte) are always UNWRAP_FAILED', async () => {
    const template = await gcm.wrapKey(new Uint8Array(32), {});
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ minLength: 0, maxLength: 100 }),
          fc.uint8Array({ minLength: 60, maxLength: 60 }).map((b) => Uint8Array.of(0x01, ...b)),
          fc.uint8Array({ minLength: 72, maxLength: 72 }).map((b) => Uint8Array.of(0x02, ...b)),
        ),
        fc.constantFrom(gcm, kwp),
        async (ciphertext, provider) => {
          const err = await provider.unwrapKey({ ...template, ciphertext }, {}).then(
            () => undefined,
            (e: unknown) => e,
          );
          expect(isKeyfoldError(err, 'UNWRAP_FAILED')).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });
});
