/**
 * Cloud KMS size limits by protection level (EncryptRequest / DecryptRequest reference: SOFTWARE keys take up to
 * 64 KiB of plaintext and of AAD; for HSM keys plaintext + AAD together must be no larger than 8 KiB), through the
 * real SDK clients over gRPC and REST: the emulator refuses what the service refuses, and the provider refuses it
 * first, with LIMIT_EXCEEDED, without a call.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyfoldRejectionOf } from '@keyfold/conformance';
import { createGcpKmsProvider } from '../src/index.js';
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

const KEY = Uint8Array.from({ length: 32 }, (_, i) => i + 7);
/** A context of about `bytes` bytes once encoded (values are at most 4 KiB each). */
function contextOf(bytes: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; bytes > 0; i++, bytes -= 4000) out[`note${i}`] = 'x'.repeat(Math.min(4000, bytes));
  return out;
}

for (const transport of ['grpc', 'rest'] as const) {
  describe(`Cloud KMS over ${transport}: size limits by protection level`, () => {
    it('the emulator refuses plaintext + AAD over 8 KiB on an HSM key (INVALID_ARGUMENT), and takes it on a SOFTWARE key', async () => {
      const client = clients[transport]!;
      const hsm = emu.createKey(freshKeyId('hsm'), { protectionLevel: 'HSM' });
      const soft = emu.createKey(freshKeyId('soft'));
      const plaintext = Buffer.alloc(32, 1);
      const aad = Buffer.alloc(8192 - 32 + 1, 2);
      const refused = await client.encrypt({ name: hsm, plaintext, additionalAuthenticatedData: aad }).then(
        () => undefined,
        (err: unknown) => err as { code?: number; message?: string },
      );
      // gRPC INVALID_ARGUMENT is 3; over REST the SDK reports the HTTP status 400.
      expect(refused?.code).toBe(transport === 'grpc' ? 3 : 400);
      expect(refused?.message).toMatch(/HSM/);
      const [atLimit] = await client.encrypt({ name: hsm, plaintext, additionalAuthenticatedData: aad.subarray(1) });
      expect(atLimit.ciphertext).toBeTruthy();
      const [onSoftware] = await client.encrypt({ name: soft, plaintext, additionalAuthenticatedData: Buffer.alloc(10_000, 3) });
      const [back] = await client.decrypt({ name: soft, ciphertext: onSoftware.ciphertext as Uint8Array, additionalAuthenticatedData: Buffer.alloc(10_000, 3) });
      expect(Buffer.from(back.plaintext as Uint8Array)).toEqual(plaintext);
    });

    it('a 10 KB context on an HSM key: LIMIT_EXCEEDED before any call; the same context seals and opens on a SOFTWARE key', async () => {
      const software = await createGcpKmsProvider({ keyName: emu.createKey(freshKeyId('soft')), client: asProviderClient(clients[transport]!) });
      const hsmKey = emu.createKey(freshKeyId('hsm'), { protectionLevel: 'HSM' });
      const provider = await createGcpKmsProvider({ keyName: hsmKey, client: asProviderClient(clients[transport]!) });
      expect(provider.protection).toBe('hsm');
      emu.resetCounters();
      const err = await keyfoldRejectionOf(provider.wrapKey(KEY, contextOf(10_000)));
      expect(err.code).toBe('LIMIT_EXCEEDED');
      expect(err.message).toContain('8192');
      expect(emu.counters.byOperation.Encrypt ?? 0).toBe(0);
      // A context that fits next to the 32-byte key still works on the HSM key.
      const small = await provider.wrapKey(KEY, contextOf(4000));
      expect(Buffer.from(await provider.unwrapKey(small, contextOf(4000)))).toEqual(Buffer.from(KEY));
      // SOFTWARE keys keep the 64 KiB limit.
      expect(software.protection).toBe('kms');
      const wrapped = await software.wrapKey(KEY, contextOf(10_000));
      expect(Buffer.from(await software.unwrapKey(wrapped, contextOf(10_000)))).toEqual(Buffer.from(KEY));
      await provider.close();
      await software.close();
    });
  });
}
