/**
 * The Recipient error mapping: KMS refusing the attested request (a document it rejects: ValidationException; a key
 * policy whose kms:RecipientAttestation conditions the document does not meet: AccessDeniedException) is
 * ATTESTATION_REFUSED on every operation and key type, never UNWRAP_FAILED / INTERNAL; an attestation source that is
 * down keeps its UNAVAILABLE; without a Recipient, a denial stays ACCESS_DENIED.
 */
import { describe, expect, it } from 'vitest';
import { ProviderError } from '@keyfold/envelope-core';
import { testEnclave } from './enclave.js';
import { freshProvider, kmsEmulator, randomKey } from './helpers.js';

const emu = await kmsEmulator();
const OTHER_IMAGE = 'aa'.repeat(48);

describe('aws-kms: KMS refuses the attestation', () => {
  it('symmetric key with a PCR0 condition the enclave does not meet: generateDataKey and unwrapKey are ATTESTATION_REFUSED', async () => {
    const enclave = testEnclave();
    const provider = await freshProvider(emu, 'SYMMETRIC_DEFAULT', { recipient: enclave });
    const wrapped = await provider.wrapKey(randomKey(), { a: '1' }); // Encrypt carries no Recipient and is not conditioned
    emu.requireRecipientAttestation(provider.arn, { PCR0: OTHER_IMAGE });
    await expect(provider.generateDataKey({})).rejects.toMatchObject({
      code: 'ATTESTATION_REFUSED',
      message: expect.stringMatching(/^AWS KMS denied kms:GenerateDataKey on arn:aws:kms:.* \(AccessDeniedException\): the key policy's kms:RecipientAttestation conditions/) as unknown,
    });
    await expect(provider.unwrapKey(wrapped, { a: '1' })).rejects.toMatchObject({
      code: 'ATTESTATION_REFUSED',
      message: expect.stringContaining(`kms:Decrypt on ${provider.arn}`) as unknown,
    });
    expect(enclave.opened).toBe(0);
    await provider.close();

    // The same key without a Recipient: an ordinary denial.
    const { createAwsKmsProvider } = await import('../src/index.js');
    const plain = await createAwsKmsProvider({ keyId: provider.arn, region: emu.region, endpoint: emu.url, credentials: { accessKeyId: 'AKIDKEYFOLDTEST', secretAccessKey: 'x' } });
    await expect(plain.unwrapKey(wrapped, { a: '1' })).rejects.toMatchObject({ code: 'ACCESS_DENIED' });
    await plain.close();
    emu.requireRecipientAttestation(provider.arn, undefined);
  });

  it('RSA key: Decrypt with a refused Recipient is ATTESTATION_REFUSED', async () => {
    const provider = await freshProvider(emu, 'RSA_2048', { recipient: testEnclave() });
    const wrapped = await provider.wrapKey(randomKey(), {});
    emu.requireRecipientAttestation(provider.arn, { ImageSha384: OTHER_IMAGE });
    await expect(provider.unwrapKey(wrapped, {})).rejects.toMatchObject({ code: 'ATTESTATION_REFUSED' });
    await provider.close();
  });

  it('a document KMS rejects (ValidationException) is ATTESTATION_REFUSED with KMS words, after at most one retry', async () => {
    let documents = 0;
    const rejected: unknown[] = [];
    const garbage = {
      attestationDocument: () => (documents++, new Uint8Array([0x84, 0x40, 0xa0, 0x40])), // not a COSE_Sign1
      decrypt: () => new Uint8Array(32),
      onDocumentRejected: (_doc: Uint8Array, err: unknown) => void rejected.push(err),
    };
    const provider = await freshProvider(emu, 'SYMMETRIC_DEFAULT', { recipient: garbage });
    emu.resetCounters();
    await expect(provider.generateDataKey({})).rejects.toMatchObject({
      code: 'ATTESTATION_REFUSED',
      message: expect.stringContaining('(ValidationException: The attestation document is not valid') as unknown,
    });
    expect(rejected).toHaveLength(1);
    expect(documents).toBe(2);
    expect(emu.counters.byOperation.GenerateDataKey).toBe(2);
    await provider.close();
  });

  it('an attestation source that is down is UNAVAILABLE (its own message), with no KMS call', async () => {
    const down = {
      attestationDocument: (): Uint8Array => {
        throw new ProviderError('UNAVAILABLE', 'the attestation endpoint http://127.0.0.1:9 could not be reached');
      },
      decrypt: () => new Uint8Array(32),
    };
    const provider = await freshProvider(emu, 'SYMMETRIC_DEFAULT', { recipient: down, resilience: { retry: { maxAttempts: 1 } } });
    emu.resetCounters();
    await expect(provider.generateDataKey({})).rejects.toMatchObject({
      code: 'UNAVAILABLE',
      message: 'no attestation document for the KMS recipient: the attestation endpoint http://127.0.0.1:9 could not be reached',
    });
    expect(emu.counters.byOperation.GenerateDataKey ?? 0).toBe(0);
    await provider.close();
  });
});
