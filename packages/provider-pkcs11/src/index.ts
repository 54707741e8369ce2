/**
 * @keyfold/provider-pkcs11: a Keyfold KeyProvider for PKCS#11 HSMs (tested on SoftHSM2). Data keys are wrapped
 * inside the token with AES-GCM or RFC 5649 AES key wrap under a versioned KEK that never leaves it.
 * @packageDocumentation
 */
export { createPkcs11Provider, Pkcs11Provider, PKCS11_KIND } from './pkcs11-provider.js';
export type { Pkcs11ProviderStats } from './pkcs11-provider.js';
export { generatePkcs11KekVersion } from './generate-version.js';
export type { Pkcs11KekVersionResult } from './generate-version.js';
export { listPkcs11Tokens } from './token-listing.js';
export type { Pkcs11LibraryListing, Pkcs11MechanismListing, Pkcs11TokenListing } from './token-listing.js';
export type { Pkcs11KekVersionOptions, Pkcs11ProviderOptions, Pkcs11TokenOptions } from './options.js';
export type { Pkcs11Execution } from './graphene-adapter.js';
export type { SessionPoolStats } from './session-pool.js';
export type { Pkcs11WrapMechanism } from './wrap-format.js';
export { objectLabel as pkcs11KekObjectLabel } from './kek-labels.js';
