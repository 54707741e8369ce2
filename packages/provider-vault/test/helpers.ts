/**
 * Test wiring: one Vault transit emulator per test file (started here, closed after the file), and providers talking
 * HTTP to it with the global fetch.
 */
import { afterAll } from 'vitest';
import { startVaultTransitEmulator, type VaultTransitEmulator, type VaultTransitEmulatorOptions } from '@keyfold/emulators';
import { createVaultTransitProvider, type VaultTransitProvider, type VaultTransitProviderOptions } from '../src/index.js';

export async function vaultEmulator(options: VaultTransitEmulatorOptions = {}): Promise<VaultTransitEmulator> {
  const emu = await startVaultTransitEmulator({ port: 0, ...options });
  afterAll(() => emu.close());
  return emu;
}

let n = 0;
/** A unique transit key name. */
export function keyName(prefix = 'kek'): string {
  return `${prefix}-${process.pid}-${n++}`;
}

/** A provider for a fresh key (created in the emulator) with the root token unless options say otherwise. */
export async function freshProvider(
  emu: VaultTransitEmulator,
  options: Partial<VaultTransitProviderOptions> & { derivedKey?: boolean } = {},
): Promise<VaultTransitProvider> {
  const { derivedKey, ...rest } = options;
  const name = rest.keyName ?? keyName(derivedKey ? 'derived' : 'plain');
  emu.createKey(name, { derived: derivedKey === true, ...(rest.namespace ? { namespace: rest.namespace } : {}) });
  return createVaultTransitProvider({
    endpoint: emu.url,
    ...(rest.appRole ? {} : { token: emu.rootToken }),
    ...rest,
    keyName: name,
    env: {},
  });
}

export function randomKey(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(32));
}
