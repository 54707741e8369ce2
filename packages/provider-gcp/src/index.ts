/**
 * @keyfold/provider-gcp: a Keyfold `KeyProvider` backed by Google Cloud KMS (symmetric ENCRYPT_DECRYPT keys), over
 * gRPC or the REST fallback of `@google-cloud/kms`, with end-to-end CRC32C checks.
 * @packageDocumentation
 */
export { createGcpKmsProvider, GcpKmsProvider, GCP_KMS_KIND } from './gcp-kms-provider.js';
export type { GcpKmsProviderOptions } from './gcp-kms-provider.js';
export { ChecksumMismatchError } from './gcp-errors.js';
export type {
  CryptoKeyLike,
  CryptoKeyVersionLike,
  DecryptRequest,
  DecryptResponse,
  EncryptRequest,
  EncryptResponse,
  GcpCallOptions,
  GcpClientOptions,
  GcpKmsClient,
  Int64ValueLike,
  BytesLike,
} from './kms-client.js';
