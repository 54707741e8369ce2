/**
 * @keyfold/provider-azure: a Keyfold `KeyProvider` backed by Azure Key Vault or Managed HSM (`wrapKey` /
 * `unwrapKey` with RSA-OAEP-256 or A256KW), the encryption context bound by a keyed digest stored beside the
 * wrapped key.
 * @packageDocumentation
 */
export { AZURE_KV_KIND, AzureKeyVaultProvider, createAzureKeyVaultProvider } from './azure-kv-provider.js';
export type { AzureKeyVaultProviderOptions } from './azure-kv-provider.js';
export type {
  AzureCallOptions,
  AzureClientOptions,
  AzureKeyVaultClients,
  AzureWrapAlgorithm,
  CryptographyClientLike,
  KeyClientLike,
  KeyOperationResultLike,
  KeyPropertiesLike,
  KeyVaultKeyLike,
  TokenCredentialLike,
} from './azure-client.js';
