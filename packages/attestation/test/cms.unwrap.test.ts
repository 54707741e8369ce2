/**
 * unwrapCiphertextForRecipient against CMS made by `openssl cms -encrypt` (DER and -stream BER), recipients named by
 * subjectKeyIdentifier (-keyid) and by issuer and serial; hostile inputs are refused with typed errors.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { unwrapCiphertextForRecipient } from '../src/index.js';
import { openssl, workDir } from './fixtures.js';

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const wrong = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
writeFileSync(join(workDir, 'enclave.key'), privateKey.export({ format: 'pem', type: 'pkcs8' }));
openssl('req', '-x509', '-new', '-key', 'enclave.key', '-subj', '/CN=ephemeral enclave key', '-days', '1', '-out', 'enclave.pem');
const dataKey = randomBytes(32);
writeFileSync(join(workDir, 'data.bin'), dataKey);

function encrypt(out: string, ...extra: string[]): Buffer {
  openssl('cms', '-encrypt', '-binary', '-in', 'data.bin', '-recip', 'enclave.pem', ...extra,
    '-keyopt', 'rsa_padding_mode:oaep', '-keyopt', 'rsa_oaep_md:sha256', '-keyopt', 'rsa_mgf1_md:sha256', '-aes-256-cbc', '-outform', 'DER', '-out', out);
  return readFileSync(join(workDir, out));
}

const der = encrypt('keyid.der', '-keyid');
const ber = encrypt('keyid-stream.ber', '-keyid', '-stream');
const bySerial = encrypt('serial.der');

describe('unwrapCiphertextForRecipient', () => {
  it('opens DER and BER indefinite-length CMS addressed by subjectKeyIdentifier', async () => {
    expect(ber[1]).toBe(0x80); // indefinite length, as KMS sends it
    expect(Buffer.from(await unwrapCiphertextForRecipient(der, privateKey)).equals(dataKey)).toBe(true);
    expect(Buffer.from(await unwrapCiphertextForRecipient(ber, privateKey)).equals(dataKey)).toBe(true);
  });

  it('opens CMS addressed by issuer and serial number (with and without the certificate)', async () => {
    const certificate = readFileSync(join(workDir, 'enclave.pem'), 'utf8');
    const { X509Certificate } = await import('node:crypto');
    expect(Buffer.from(await unwrapCiphertextForRecipient(bySerial, privateKey, { certificate: new X509Certificate(certificate) })).equals(dataKey)).toBe(true);
    expect(Buffer.from(await unwrapCiphertextForRecipient(bySerial, privateKey)).equals(dataKey)).toBe(true);
  });

  it('wrong key: UNWRAP_FAILED with the fixed generic message', async () => {
    await expect(unwrapCiphertextForRecipient(der, wrong)).rejects.toMatchObject({ code: 'UNWRAP_FAILED', message: 'unwrapping the data key failed' });
    await expect(unwrapCiphertextForRecipient(ber, wrong)).rejects.toMatchObject({ code: 'UNWRAP_FAILED' });
  });

  it('truncated CMS: FORMAT_INVALID', async () => {
    for (const cms of [der, ber]) {
      for (const n of [0, 1, 10, cms.length >> 1, cms.length - 1]) {
        await expect(unwrapCiphertextForRecipient(cms.subarray(0, n), privateKey)).rejects.toMatchObject({ code: expect.stringMatching(/^(FORMAT_INVALID|UNWRAP_FAILED)$/) as unknown });
      }
    }
    await expect(unwrapCiphertextForRecipient(der.subarray(0, der.length - 1), privateKey)).rejects.toMatchObject({ code: 'FORMAT_INVALID' });
  });

  it('bit-flipped CMS: refused with a typed error, never a crash; flips in the encrypted key always refused', async () => {
    let refused = 0;
    for (let i = 0; i < der.length; i++) {
      const flipped = Buffer.from(der);
      flipped[i]! ^= 0x01;
      try {
        const out = await unwrapCiphertextForRecipient(flipped, privateKey);
        // CBC has no MAC (KMS's format): a flip in the IV / content or in a byte the BER reader tolerates can still
        // decrypt; the result is then at most one 32-byte value, which the envelope's AEAD catches later.
        expect(out.length, `byte ${i}`).toBeLessThanOrEqual(48);
      } catch (e) {
        expect((e as { code?: string }).code, `byte ${i}`).toMatch(/^(FORMAT_INVALID|UNWRAP_FAILED)$/);
        refused++;
      }
    }
    expect(refused).toBeGreaterThan(der.length * 0.8);
    // The OAEP-encrypted CEK (256 bytes) sits before the content; every flip in it must fail.
    const at = der.indexOf(Buffer.from([0x04, 0x82, 0x01, 0x00])) + 4;
    expect(at).toBeGreaterThan(4);
    for (const i of [at, at + 100, at + 255]) {
      const flipped = Buffer.from(der);
      flipped[i]! ^= 0x80;
      await expect(unwrapCiphertextForRecipient(flipped, privateKey)).rejects.toMatchObject({ code: 'UNWRAP_FAILED', message: 'unwrapping the data key failed' });
    }
  });

  it('bad argument types are TypeErrors', async () => {
    await expect(unwrapCiphertextForRecipient('x' as unknown as Uint8Array, privateKey)).rejects.toBeInstanceOf(TypeError);
  });
});
