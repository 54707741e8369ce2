/**
 * @keyfold/provider-vault: a HashiCorp Vault (or OpenBao) transit key as a Keyfold KeyProvider — encrypt, decrypt,
 * rewrap, datakey and their batch forms, plain or derived keys, token or AppRole authentication with renewal.
 * @packageDocumentation
 */
export { createVaultTransitProvider } from './create-provider.js';
export { resolveVaultNamespace, vaultKeyId } from './vault-namespace.js';
export type { VaultTransitProviderOptions } from './create-provider.js';
export { VaultTransitProvider } from './vault-transit-provider.js';
export type { BatchResult } from './vault-transit-provider.js';
export type { VaultAppRole } from './vault-auth.js';
export type { VaultFetch } from './vault-http.js';
