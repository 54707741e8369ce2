/**
 * Test wiring: the Key Vault emulator of tooling/emulators (HTTPS with a self-signed certificate made here, and
 * HTTP) and the real `@azure/keyvault-keys` clients the provider creates, with a static TokenCredential.
 */
import { randomBytes } from 'node:crypto';
import {
  createSelfSignedCertificate,
  startAzureKeyVaultEmulator,
  type AzureKeyVaultEmulator,
  type SelfSignedCertificate,
} from '../../../tooling/emulators/src/azure-kv/index.js';
import type { AzureClientOptions, TokenCredentialLike } from '../src/index.js';

export { createSelfSignedCertificate, startAzureKeyVaultEmulator, type AzureKeyVaultEmulator, type SelfSignedCertificate };

/** A TokenCredential with a fixed token (the emulator accepts any; the provider never sees or logs it). */
export function staticCredential(token = `test-${randomBytes(8).toString('hex')}`): TokenCredentialLike & { calls: number } {
  const cred = {
    calls: 0,
    getToken: () => {
      cred.calls++;
      return Promise.resolve({ token, expiresOnTimestamp: Date.now() + 3_600_000 });
    },
  };
  return cred;
}

/** SDK client options for the emulator: challenge resource check off, and the emulator's CA or plain http. */
export function clientOptionsFor(url: string, tls: SelfSignedCertificate | undefined): AzureClientOptions {
  return url.startsWith('https:')
    ? { disableChallengeResourceVerification: true, tlsOptions: { ca: tls?.cert } }
    : { disableChallengeResourceVerification: true, allowInsecureConnection: true };
}

let counter = 0;
/** A fresh key name, unique within the test process. */
export function freshName(prefix = 'kek'): string {
  counter++;
  return `${prefix}-${process.pid}-${counter}`;
}
