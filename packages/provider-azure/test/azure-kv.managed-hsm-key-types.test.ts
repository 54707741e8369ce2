/**
 * Key types on Managed HSM, through the real SDK's KeyClient: "Managed HSMs only support HSM-protected keys"
 * (RSA-HSM, EC-HSM, oct-HSM; Microsoft Learn, "About keys", azure/key-vault/keys/about-keys). With
 * `softwareKeysOnManagedHsm: false` the emulator refuses RSA and oct as the service does; by default it accepts them,
 * a documented convenience.
 */
import { KeyClient } from '@azure/keyvault-keys';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  clientOptionsFor,
  createSelfSignedCertificate,
  startAzureKeyVaultEmulator,
  staticCredential,
  type AzureKeyVaultEmulator,
  type SelfSignedCertificate,
} from './helpers.js';

let tls: SelfSignedCertificate;
let strict: AzureKeyVaultEmulator;
let lenient: AzureKeyVaultEmulator;
const client = (emu: AzureKeyVaultEmulator): KeyClient =>
  new KeyClient(emu.httpsUrl!, staticCredential(), { ...clientOptionsFor(emu.httpsUrl!, tls), retryOptions: { maxRetries: 0 } });

beforeAll(async () => {
  tls = createSelfSignedCertificate();
  strict = await startAzureKeyVaultEmulator({ tls, managedHsm: true, softwareKeysOnManagedHsm: false });
  lenient = await startAzureKeyVaultEmulator({ tls, managedHsm: true });
});
afterAll(async () => {
  await Promise.all([strict.close(), lenient.close()]);
});

describe('Key Vault emulator: key types on Managed HSM', () => {
  it('strict: software RSA and oct keys are 400 BadParameter; RSA-HSM and oct-HSM are created', async () => {
    const kc = client(strict);
    for (const kty of ['RSA', 'oct']) {
      const err = (await kc.createKey(`sw-${kty.toLowerCase()}`, kty).catch((e: unknown) => e)) as { statusCode?: number; code?: string; message?: string };
      expect(err.statusCode).toBe(400);
      expect(err.code).toBe('BadParameter');
      expect(err.message).toMatch(/HSM-protected keys only/);
    }
    expect((await kc.createKey('hsm-rsa', 'RSA-HSM')).keyType).toBe('RSA-HSM');
    expect((await kc.createKey('hsm-oct', 'oct-HSM', { keySize: 256 })).keyType).toBe('oct-HSM');
    expect(() => strict.createKey('direct', { kty: 'RSA' })).toThrow(/HSM-protected keys only/);
  });

  it('default: the software types are still accepted (the documented convenience)', async () => {
    expect((await client(lenient).createKey('sw', 'RSA')).keyType).toBe('RSA');
  });
});
