/**
 * The Recipient hook: with an enclave recipient, Decrypt and GenerateDataKey carry the attestation document and KMS
 * answers with CMS that only the enclave key opens; no plaintext key crosses the wire.
 */
import { describe, expect, it } from 'vitest';
import { createEnvelope } from '@keyfold/envelope-core';
import { testEnclave } from './enclave.js';
import { freshProvider, kmsEmulator, randomKey } from './helpers.js';

const emu = await kmsEmulator();

describe('aws-kms recipient (enclaves)', () => {
  it('symmetric key: generateDataKey and unwrap go through the recipient; envelopes round-trip', async () => {
    const enclave = testEnclave();
    const provider = await freshProvider(emu, 'SYMMETRIC_DEFAULT', { recipient: enclave });
    const envelope = createEnvelope({ providers: [provider], cache: false });
    const sealed = await envelope.seal('for the enclave only', { tenant: 't1' });
    expect(new TextDecoder().decode(await envelope.open(sealed, { context: { tenant: 't1' } }))).toBe('for the enclave only');
    expect(enclave.documents).toBe(2); // one fresh document per GenerateDataKey / Decrypt
    expect(enclave.opened).toBe(2);
    // Labels come from DescribeKey in this mode (KMS omits KeyMaterialId with a Recipient).
    expect(envelope.inspect(sealed).wrappedKeys[0]!.keyVersion).toBe((await provider.describe()).activeVersion);
    const key = randomKey();
    const wrapped = await provider.wrapKey(key, { a: '1' });
    expect(Buffer.from(await provider.unwrapKey(wrapped, { a: '1' })).equals(Buffer.from(key))).toBe(true);
    await expect(provider.unwrapKey(wrapped, { a: '2' })).rejects.toMatchObject({ code: 'UNWRAP_FAILED' });
    await envelope.close();
    await provider.close();
  });

  it('RSA key: Decrypt with a Recipient', async () => {
    const enclave = testEnclave();
    const provider = await freshProvider(emu, 'RSA_2048', { recipient: enclave });
    const key = randomKey();
    const wrapped = await provider.wrapKey(key, { a: '1' });
    expect(Buffer.from(await provider.unwrapKey(wrapped, { a: '1' })).equals(Buffer.from(key))).toBe(true);
    expect(enclave.opened).toBe(1);
    await provider.close();
  });

  it('required (default): no attestation document is CONFIG_INVALID; not required: plain Decrypt outside the enclave', async () => {
    const missing = { attestationDocument: (): Uint8Array => { throw new Error('no /dev/nsm'); }, decrypt: (): Uint8Array => new Uint8Array() };
    const strict = await freshProvider(emu, 'SYMMETRIC_DEFAULT', { recipient: missing });
    await expect(strict.generateDataKey({})).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    await strict.close();
    const lenient = await freshProvider(emu, 'SYMMETRIC_DEFAULT', { recipient: { ...missing, required: false } });
    const { dataKey, wrapped } = await lenient.generateDataKey({});
    expect(Buffer.from(await lenient.unwrapKey(wrapped, {})).equals(Buffer.from(dataKey))).toBe(true);
    await lenient.close();
  });

  it('not required: each fallback goes to onFallback (default console.warn); a rejected document is retried once via onDocumentRejected', async () => {
    const reasons: unknown[] = [];
    const missing = {
      attestationDocument: (): Uint8Array => { throw new Error('no /dev/nsm'); },
      decrypt: (): Uint8Array => new Uint8Array(),
      required: false,
      onFallback: (reason: unknown) => reasons.push(reason),
    };
    const lenient = await freshProvider(emu, 'SYMMETRIC_DEFAULT', { recipient: missing });
    await lenient.generateDataKey({});
    expect(reasons).toHaveLength(1);
    await lenient.close();

    const enclave = testEnclave();
    const rejected: Uint8Array[] = [];
    let first = true;
    const flaky = {
      attestationDocument: (): Uint8Array => {
        if (!first) return enclave.attestationDocument();
        first = false;
        return new Uint8Array([0x84, 0x40, 0xa0, 0x40, 0x40]); // a COSE_Sign1 whose payload is not a map: KMS refuses it
      },
      decrypt: enclave.decrypt,
      onDocumentRejected: (doc: Uint8Array) => void rejected.push(doc),
    };
    const provider = await freshProvider(emu, 'SYMMETRIC_DEFAULT', { recipient: flaky });
    const { dataKey, wrapped } = await provider.generateDataKey({});
    expect(rejected).toHaveLength(1);
    expect(enclave.documents).toBe(1);
    expect(Buffer.from(await provider.unwrapKey(wrapped, {})).equals(Buffer.from(dataKey))).toBe(true);
    await provider.close();

    const alwaysBad = { ...flaky, attestationDocument: (): Uint8Array => new Uint8Array([0x84, 0x40, 0xa0, 0x40, 0x40]) };
    rejected.length = 0;
    const stuck = await freshProvider(emu, 'SYMMETRIC_DEFAULT', { recipient: alwaysBad });
    await expect(stuck.generateDataKey({})).rejects.toThrow();
    expect(rejected).toHaveLength(1); // one retry, never a loop
    await stuck.close();
  });
});
