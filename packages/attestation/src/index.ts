/**
 * @keyfold/attestation: AWS Nitro Enclave attestation for Keyfold. An attestation manager (ephemeral RSA key pair +
 * attestation document) that plugs into `@keyfold/provider-aws` as its KMS `recipient`, the CMS EnvelopedData
 * unwrap of `CiphertextForRecipient`, and a verifier of Nitro attestation documents.
 * @packageDocumentation
 */
export { createAttestationManager } from './manager.js';
export type { AttestationLogger, AttestationManager, AttestationManagerOptions, AttestationStatus, ManagedRecipient } from './manager.js';
export { functionSource, httpSource, nsmSource, DEFAULT_ATTESTATION_PATH, NSM_LIMITS } from './sources.js';
export type { AttestationFunction, AttestationRequest, AttestationSource, HttpSourceOptions, HttpSourceParameters, NsmSourceOptions } from './sources.js';
export { unwrapCiphertextForRecipient } from './cms-unwrap.js';
export type { UnwrapOptions } from './cms-unwrap.js';
export { verifyAttestationDocument } from './verify-document.js';
export type { AttestationDocument, VerifyAttestationOptions } from './verify-document.js';
export { AttestationError } from './errors.js';
export type { AttestationFailure } from './errors.js';
export { AWS_NITRO_ROOT_PEM } from './nitro-root.js';
