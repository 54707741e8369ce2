/**
 * The shared KeyProvider conformance suite, for a plain transit key (context as AES-GCM associated data) and a
 * derived key (context as the key-derivation context), over HTTP to the Vault transit emulator.
 */
import { describe, expect, it } from 'vitest';
import { runProviderConformance } from '@keyfold/conformance';
import type { KeyProvider } from '@keyfold/envelope-core';
import type { VaultTransitProvider } from '../src/index.js';
import { freshProvider, keyName, randomKey, vaultEmulator } from './helpers.js';

const emu = await vaultEmulator();
emu.setPolicy('kek-user', ['transit/*']);

/** A provider whose token is revoked once it exists: every call is 403. */
async function revokedTokenProvider(derivedKey: boolean) {
  const token = emu.createToken({ policies: ['kek-user'] });
  const provider = await freshProvider(emu, { derivedKey, token, keyName: keyName('revoked') });
  const context = { tenant: 'acme' };
  const wrapped = await provider.wrapKey(randomKey(), context);
  emu.revokeToken(token);
  return { provider, expectCode: 'ACCESS_DENIED' as const, wrapped, context };
}

const rotate = async (p: KeyProvider): Promise<KeyProvider> => {
  await (p as VaultTransitProvider).rotate();
  return p;
};

runProviderConformance({
  name: 'vault-transit plain key (context as associated_data)',
  makeProvider: () => freshProvider(emu),
  rotate,
  makeFailingProvider: () => revokedTokenProvider(false),
  describe,
  it,
  expect,
});

runProviderConformance({
  name: 'vault-transit derived key (context as derivation context)',
  makeProvider: () => freshProvider(emu, { derivedKey: true }),
  rotate,
  makeFailingProvider: () => revokedTokenProvider(true),
  describe,
  it,
  expect,
});
