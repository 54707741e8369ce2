/**
 * @keyfold/emulators: wire-protocol emulators of the AWS KMS, Vault transit, Cloud KMS and Key Vault APIs, with real crypto, key
 * versions, key states and runtime fault injection. Private: for Keyfold's tests, the bench and local demos.
 * @packageDocumentation
 */
export { startAwsKmsEmulator } from './aws-kms/emulator.js';
export type { AwsKmsEmulator, AwsKmsEmulatorOptions, KeyMetadataJson } from './aws-kms/emulator.js';
export type { KeySpec, KeyState } from './aws-kms/kms-keys.js';
export { startVaultTransitEmulator } from './vault/emulator.js';
export type { VaultTransitEmulator, VaultTransitEmulatorOptions } from './vault/emulator.js';
export { FaultController } from './faults.js';
export type { CallCounters, FaultDecision, FaultSettings, LatencySpec, QuotaSettings } from './faults.js';
export type { EmulatorServer } from './http-server.js';
export { startGcpKmsEmulator, CorruptionController, KmsError, KmsState } from './gcp-kms/index.js';
export type { GcpKmsEmulator, GcpKmsEmulatorOptions, GcpKmsCounters, CorruptionSettings, CorruptionMode } from './gcp-kms/index.js';
export { startAzureKeyVaultEmulator, createSelfSignedCertificate, KvError } from './azure-kv/index.js';
export type { AzureKeyVaultEmulator, AzureKeyVaultEmulatorOptions, AzureKvCounters, AccessPolicy, SelfSignedCertificate } from './azure-kv/index.js';
export { startNsmEmulator, buildNsmDeviceShim, signNitroDocument, EMULATED_PCRS, NSM_FIELD_LIMITS } from './nsm/index.js';
export type { NsmEmulator, NsmEmulatorOptions, NsmFaults, NsmErrorCode, NitroSigner, NitroDocumentFields } from './nsm/index.js';
export { createTestNitroCa } from './nsm/test-ca.js';
export type { TestNitroCa } from './nsm/test-ca.js';
