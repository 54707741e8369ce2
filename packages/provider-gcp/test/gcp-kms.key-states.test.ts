/**
 * Key states and configuration through the real SDK clients: disabled and destroyed versions, a missing key, a
 * rotation made elsewhere, HSM protection, the client the provider makes itself, and option validation.
 */
import * as gax from 'google-gax';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rejectionOf } from '@keyfold/conformance';
import { isKeyfoldError } from '@keyfold/envelope-core';
import { createGcpKmsProvider, GCP_KMS_KIND } from '../src/index.js';
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

const KEY = new Uint8Array(32).fill(9);
const noRetry = { retry: false as const, circuitBreaker: false as const };

for (const transport of ['grpc', 'rest'] as const) {
  describe(`Cloud KMS over ${transport}: key states`, () => {
    it('maps a disabled version to KEY_DISABLED on wrap and on unwrap', async () => {
      const client = clients[transport]!;
      const keyName = emu.createKey(freshKeyId('disabled'));
      const provider = await createGcpKmsProvider({ keyName, client: asProviderClient(client), resilience: noRetry });
      const wrapped = await provider.wrapKey(KEY, { a: '1' });
      await client.updateCryptoKeyVersion({
        cryptoKeyVersion: { name: `${keyName}/cryptoKeyVersions/1`, state: 'DISABLED' },
        updateMask: { paths: ['state'] },
      });
      const wrapErr = await rejectionOf(provider.wrapKey(KEY, {}));
      expect(isKeyfoldError(wrapErr, 'KEY_DISABLED')).toBe(true);
      expect((wrapErr as Error).cause).toBeDefined();
      // Operational, so it is not hidden behind UNWRAP_FAILED.
      const unwrapErr = await rejectionOf(provider.unwrapKey(wrapped, { a: '1' }));
      expect(isKeyfoldError(unwrapErr, 'KEY_DISABLED')).toBe(true);
      await client.updateCryptoKeyVersion({
        cryptoKeyVersion: { name: `${keyName}/cryptoKeyVersions/1`, state: 'ENABLED' },
        updateMask: { paths: ['state'] },
      });
      expect(Buffer.from(await provider.unwrapKey(wrapped, { a: '1' }))).toEqual(Buffer.from(KEY));
      await provider.close();
    });

    it('maps a version scheduled for destruction to KEY_DISABLED, and keeps the other versions working', async () => {
      const client = clients[transport]!;
      const keyName = emu.createKey(freshKeyId('destroyed'));
      const provider = await createGcpKmsProvider({ keyName, client: asProviderClient(client), resilience: noRetry });
      const old = await provider.wrapKey(KEY, {});
      expect(await provider.rotate()).toBe('2');
      const current = await provider.wrapKey(KEY, {});
      await client.destroyCryptoKeyVersion({ name: `${keyName}/cryptoKeyVersions/1` });
      expect(isKeyfoldError(await rejectionOf(provider.unwrapKey(old, {})), 'KEY_DISABLED')).toBe(true);
      expect(Buffer.from(await provider.unwrapKey(current, {}))).toEqual(Buffer.from(KEY));
      expect((await provider.describe()).versions).toEqual(['2']);
      await provider.close();
    });

    it('follows a rotation made elsewhere once the cached primary is refreshed', async () => {
      const client = clients[transport]!;
      const keyName = emu.createKey(freshKeyId('elsewhere'));
      const provider = await createGcpKmsProvider({ keyName, client: asProviderClient(client), primaryRefreshMs: 0 });
      expect((await provider.wrapKey(KEY, {})).keyVersion).toBe('1');
      const [created] = await client.createCryptoKeyVersion({ parent: keyName, cryptoKeyVersion: {} });
      await client.updateCryptoKeyPrimaryVersion({ name: keyName, cryptoKeyVersionId: String(created.name).split('/').pop() ?? '' });
      const wrapped = await provider.wrapKey(KEY, {});
      expect(wrapped.keyVersion).toBe('2');
      expect(Buffer.from(await provider.unwrapKey(wrapped, {}))).toEqual(Buffer.from(KEY));
      await provider.close();
    });

    it('moves to the new primary at once when the cached one was disabled', async () => {
      const client = clients[transport]!;
      const keyName = emu.createKey(freshKeyId('switch'));
      const provider = await createGcpKmsProvider({ keyName, client: asProviderClient(client), resilience: noRetry });
      await provider.wrapKey(KEY, {});
      await client.createCryptoKeyVersion({ parent: keyName, cryptoKeyVersion: {} });
      await client.updateCryptoKeyPrimaryVersion({ name: keyName, cryptoKeyVersionId: '2' });
      await client.updateCryptoKeyVersion({ cryptoKeyVersion: { name: `${keyName}/cryptoKeyVersions/1`, state: 'DISABLED' }, updateMask: { paths: ['state'] } });
      expect((await provider.wrapKey(KEY, {})).keyVersion).toBe('2');
      await provider.close();
    });

    it('refuses to start on a missing key with KEY_NOT_FOUND', async () => {
      const keyName = `projects/keyfold-test/locations/global/keyRings/keyfold/cryptoKeys/${freshKeyId('missing')}`;
      const err = await rejectionOf(createGcpKmsProvider({ keyName, client: asProviderClient(clients[transport]!), resilience: noRetry }));
      expect(isKeyfoldError(err, 'KEY_NOT_FOUND')).toBe(true);
      expect((err as Error).message).toContain(keyName);
    });
  });
}

describe('Cloud KMS: configuration', () => {
  it('reports HSM protection for an HSM key', async () => {
    const keyName = emu.createKey(freshKeyId('hsm'), { protectionLevel: 'HSM' });
    const provider = await createGcpKmsProvider({ keyName, client: asProviderClient(clients.grpc!) });
    expect(provider.kind).toBe(GCP_KMS_KIND);
    expect(provider.keyId).toBe(keyName);
    expect(provider.protection).toBe('hsm');
    const d = await provider.describe();
    expect(d.details?.protectionLevel).toBe('HSM');
    expect(d.capabilities).toEqual({ generateDataKey: false, rewrapKey: false, rotate: true, writeVersion: true });
    await provider.close();
  });

  it('makes, uses and closes its own client from clientOptions', async () => {
    const keyName = emu.createKey(freshKeyId('own'));
    const provider = await createGcpKmsProvider({
      keyName,
      clientOptions: {
        apiEndpoint: emu.host,
        port: emu.grpcPort,
        sslCreds: gax.grpc.credentials.createInsecure(),
        authClient: new gax.googleAuthLibrary.PassThroughClient(),
      },
    });
    const wrapped = await provider.wrapKey(KEY, { x: 'y' });
    expect(Buffer.from(await provider.unwrapKey(wrapped, { x: 'y' }))).toEqual(Buffer.from(KEY));
    await provider.close();
    await provider.close();
    expect(isKeyfoldError(await rejectionOf(provider.wrapKey(KEY, {})), 'PROVIDER_CLOSED')).toBe(true);
  });

  it('refuses malformed options with TypeError / RangeError', async () => {
    const client = asProviderClient(clients.grpc!);
    for (const keyName of ['', 'kek', 'projects/p/locations/l/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1', 'projects/p/locations/l/keyRings/r']) {
      await expect(createGcpKmsProvider({ keyName, client })).rejects.toBeInstanceOf(TypeError);
    }
    const keyName = 'projects/p/locations/l/keyRings/r/cryptoKeys/k';
    await expect(createGcpKmsProvider({ keyName, client, clientOptions: {} })).rejects.toBeInstanceOf(TypeError);
    await expect(createGcpKmsProvider({ keyName, client, primaryRefreshMs: -1 })).rejects.toBeInstanceOf(RangeError);
    await expect(createGcpKmsProvider({ keyName, client: {} as never })).rejects.toBeInstanceOf(TypeError);
  });
});
