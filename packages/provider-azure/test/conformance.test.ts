/**
 * The shared KeyProvider conformance suite against Key Vault through the real `@azure/keyvault-keys` clients the
 * provider creates, over HTTPS (a self-signed certificate made here) to the emulator: RSA-OAEP-256 with an RSA key,
 * and A256KW with an oct-HSM key of a Managed HSM. Every provider gets a fresh key; `rotate` creates a new version;
 * the failing backend is a second emulator in outage.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runProviderConformance } from '@keyfold/conformance';
import type { KeyProvider } from '@keyfold/envelope-core';
import { createAzureKeyVaultProvider, type AzureKeyVaultProvider, type AzureWrapAlgorithm } from '../src/index.js';
import {
  clientOptionsFor,
  createSelfSignedCertificate,
  freshName,
  startAzureKeyVaultEmulator,
  staticCredential,
  type AzureKeyVaultEmulator,
  type SelfSignedCertificate,
} from './helpers.js';

let tls: SelfSignedCertificate;
let emu: AzureKeyVaultEmulator;
let down: AzureKeyVaultEmulator;

beforeAll(async () => {
  tls = createSelfSignedCertificate();
  emu = await startAzureKeyVaultEmulator({ tls, managedHsm: true });
  down = await startAzureKeyVaultEmulator({ tls, managedHsm: true });
});

afterAll(async () => {
  await Promise.all([emu.close(), down.close()]);
});

const fastRetry = { retry: { baseDelayMs: 1, maxDelayMs: 5 } };
const KEY_TYPES: Record<AzureWrapAlgorithm, string> = { 'RSA-OAEP-256': 'RSA', A256KW: 'oct-HSM' };

async function make(e: AzureKeyVaultEmulator, algorithm: AzureWrapAlgorithm, resilience: object): Promise<AzureKeyVaultProvider> {
  const url = e.httpsUrl!;
  const name = freshName(algorithm === 'A256KW' ? 'oct' : 'rsa');
  e.createKey(name, { kty: KEY_TYPES[algorithm] });
  return createAzureKeyVaultProvider({
    keyId: `${url}/keys/${name}`,
    credential: staticCredential(),
    algorithm,
    clientOptions: clientOptionsFor(url, tls),
    resilience,
  });
}

for (const algorithm of ['RSA-OAEP-256', 'A256KW'] as const) {
  runProviderConformance({
    name: `azure-kv ${algorithm}`,
    makeProvider: () => make(emu, algorithm, fastRetry),
    rotate: async (p: KeyProvider) => {
      await (p as AzureKeyVaultProvider).rotate();
      return p;
    },
    makeFailingProvider: async () => {
      down.faults.clear();
      const provider = await make(down, algorithm, { ...fastRetry, circuitBreaker: false });
      const context = { tenant: 'acme' };
      const wrapped = await provider.wrapKey(new Uint8Array(32).fill(1), context);
      down.faults.set({ outage: true });
      return { provider, expectCode: 'UNAVAILABLE', wrapped, context };
    },
    describe,
    it,
    expect,
    timeoutMs: 60_000,
  });
}
