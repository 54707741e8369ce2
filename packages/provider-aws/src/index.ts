/**
 * @keyfold/provider-aws: an AWS KMS key as a Keyfold KeyProvider. Symmetric keys use GenerateDataKey, Encrypt /
 * Decrypt with the envelope context as EncryptionContext, and ReEncrypt; RSA keys wrap locally with the cached public
 * key and unwrap with KMS Decrypt. A Recipient hook lets an enclave receive keys as CMS instead of plaintext.
 * @packageDocumentation
 */
export { createAwsKmsProvider } from './create-provider.js';
export { AwsKmsProvider } from './aws-kms-provider.js';
export type { AwsKmsProviderOptions } from './aws-kms-provider.js';
export { SymmetricKmsProvider, UNVERSIONED } from './symmetric-key-provider.js';
export type { RotateOptions } from './symmetric-key-provider.js';
export { RsaKmsProvider } from './rsa-key-provider.js';
export type { KmsClientLike, KmsCommand } from './kms-client.js';
export type { KmsRecipient } from './recipient.js';
