/**
 * End-to-end CRC32C as Google documents it, through the real SDK clients: a response whose checksum or data was
 * corrupted in transit is caught and retried (bounded by the shared policy), an Encrypt the service did not verify
 * is refused, and the AAD the provider sends is exactly the documented construction (checked with raw SDK calls).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rejectionOf } from '@keyfold/conformance';
import { encodeContext, isKeyfoldError } from '@keyfold/envelope-core';
import { ChecksumMismatchError, createGcpKmsProvider } from '../src/index.js';
import { crc32c } from '../src/crc32c.js';
import { asProviderClient, freshKeyId, sdkClient, startGcpKmsEmulator, type GcpKmsEmulator, type Transport } from './helpers.js';

let emu: GcpKmsEmulator;
const clients: Partial<Record<Transport, ReturnType<typeof sdkClient>>> = {};

beforeAll(async () => {
  emu = await startGcpKmsEmulator();
  clients.grpc = sdkClient(emu, 'grpc');
  clients.rest = sdkClient(emu, 'rest');
});

afterAll(async () => {
  await Promise.all([clients.grpc?.close(), clients.rest?.close()]);
  await emu.close();
});

const KEY = Uint8Array.from({ length: 32 }, (_, i) => i + 1);
const fast = { retry: { baseDelayMs: 1, maxDelayMs: 2 }, circuitBreaker: false as const };

for (const transport of ['grpc', 'rest'] as const) {
  describe(`Cloud KMS over ${transport}: CRC32C end to end`, () => {
    for (const mode of ['checksum', 'data'] as const) {
      it(`catches a corrupted Encrypt response (${mode}) and retries`, async () => {
        const provider = await createGcpKmsProvider({ keyName: emu.createKey(freshKeyId()), client: asProviderClient(clients[transport]!), resilience: fast });
        emu.resetCounters();
        emu.corruption.set({ next: 2, mode, operations: ['Encrypt'] });
        try {
          const wrapped = await provider.wrapKey(KEY, { t: '1' });
          expect(emu.counters.corrupted).toBe(2);
          expect(emu.counters.byOperation.Encrypt).toBe(3);
          expect(provider.resilienceStats()?.retries).toBe(2);
          // What was kept is the intact ciphertext.
          expect(Buffer.from(await provider.unwrapKey(wrapped, { t: '1' }))).toEqual(Buffer.from(KEY));
        } finally {
          emu.corruption.clear();
          await provider.close();
        }
      });

      it(`catches a corrupted Decrypt response (${mode}) and retries`, async () => {
        const provider = await createGcpKmsProvider({ keyName: emu.createKey(freshKeyId()), client: asProviderClient(clients[transport]!), resilience: fast });
        const wrapped = await provider.wrapKey(KEY, { t: '2' });
        emu.resetCounters();
        emu.corruption.set({ next: 1, mode, operations: ['Decrypt'] });
        try {
          const back = await provider.unwrapKey(wrapped, { t: '2' });
          expect(Buffer.from(back)).toEqual(Buffer.from(KEY));
          expect(emu.counters.corrupted).toBe(1);
          expect(emu.counters.byOperation.Decrypt).toBe(2);
        } finally {
          emu.corruption.clear();
          await provider.close();
        }
      });
    }

    it('gives up after the bounded number of attempts with a clear UNAVAILABLE', async () => {
      const provider = await createGcpKmsProvider({
        keyName: emu.createKey(freshKeyId()),
        client: asProviderClient(clients[transport]!),
        resilience: { ...fast, retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 2 } },
      });
      const wrapped = await provider.wrapKey(KEY, {});
      emu.corruption.set({ ratio: 1, mode: 'checksum' });
      try {
        const wrapErr = await rejectionOf(provider.wrapKey(KEY, {}));
        expect(wrapErr).toBeInstanceOf(ChecksumMismatchError);
        expect(isKeyfoldError(wrapErr, 'UNAVAILABLE')).toBe(true);
        expect((wrapErr as Error).message).toMatch(/CRC32C/);
        // On unwrap too the failure is operational (the path to the service), not "this ciphertext is bad".
        const unwrapErr = await rejectionOf(provider.unwrapKey(wrapped, {}));
        expect(isKeyfoldError(unwrapErr, 'UNAVAILABLE')).toBe(true);
        expect((unwrapErr as Error).message).toMatch(/CRC32C/);
      } finally {
        emu.corruption.clear();
        await provider.close();
      }
    });

    it('refuses an Encrypt answer whose verified_* flags are false', async () => {
      const provider = await createGcpKmsProvider({
        keyName: emu.createKey(freshKeyId()),
        client: asProviderClient(clients[transport]!),
        resilience: { ...fast, retry: false },
      });
      emu.corruption.set({ next: 1, mode: 'unverified' });
      try {
        const err = await rejectionOf(provider.wrapKey(KEY, {}));
        expect(err).toBeInstanceOf(ChecksumMismatchError);
        expect((err as Error).message).toMatch(/verified/);
        // The next answer is verified again: the provider works.
        await provider.wrapKey(KEY, {});
      } finally {
        emu.corruption.clear();
        await provider.close();
      }
    });
  });
}

describe('Cloud KMS: what is sent', () => {
  it('binds the canonical context and the version through the documented AAD', async () => {
    const client = clients.grpc!;
    const keyName = emu.createKey(freshKeyId('aad'));
    const provider = await createGcpKmsProvider({ keyName, client: asProviderClient(client) });
    const context = { tenant: 'acme', table: 'users' };
    const wrapped = await provider.wrapKey(KEY, context);
    expect(wrapped.keyVersion).toBe('1');
    const label = Buffer.from('keyfold/v1/gcp-kms\0', 'latin1');
    const len = Buffer.alloc(4);
    len.writeUInt32BE(1);
    const aad = Buffer.concat([label, len, Buffer.from('1'), encodeContext(context)]);
    const [res] = await client.decrypt({
      name: keyName,
      ciphertext: wrapped.ciphertext,
      additionalAuthenticatedData: aad,
      ciphertextCrc32c: { value: crc32c(wrapped.ciphertext) },
      additionalAuthenticatedDataCrc32c: { value: crc32c(aad) },
    });
    expect(Buffer.from(res.plaintext as Uint8Array)).toEqual(Buffer.from(KEY));
    expect(Number(res.plaintextCrc32c?.value)).toBe(crc32c(KEY));
    // The bare canonical context (without the version and label) does not open it.
    const bare = Buffer.from(encodeContext(context));
    await expect(client.decrypt({ name: keyName, ciphertext: wrapped.ciphertext, additionalAuthenticatedData: bare })).rejects.toMatchObject({ code: 3 });
    await provider.close();
  });

  it('has the service verify every checksum it sends (and the service refuses a wrong one)', async () => {
    const client = clients.grpc!;
    const keyName = emu.createKey(freshKeyId('crc'));
    const plaintext = Buffer.from(KEY);
    const [unverified] = await client.encrypt({ name: keyName, plaintext });
    expect(unverified.verifiedPlaintextCrc32c).toBe(false);
    const [verified] = await client.encrypt({
      name: keyName,
      plaintext,
      plaintextCrc32c: { value: crc32c(plaintext) },
      additionalAuthenticatedDataCrc32c: { value: crc32c(new Uint8Array(0)) },
    });
    expect(verified.verifiedPlaintextCrc32c).toBe(true);
    expect(verified.verifiedAdditionalAuthenticatedDataCrc32c).toBe(true);
    expect(Number(verified.ciphertextCrc32c?.value)).toBe(crc32c(verified.ciphertext as Uint8Array));
    expect(verified.name).toBe(`${keyName}/cryptoKeyVersions/1`);
    await expect(client.encrypt({ name: keyName, plaintext, plaintextCrc32c: { value: crc32c(plaintext) ^ 1 } })).rejects.toMatchObject({
      code: 3,
      details: 'The checksum in field plaintext_crc32c did not match the data in field plaintext.',
    });
  });
});
