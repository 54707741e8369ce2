/**
 * The bytes of a wrapped key made by this provider, and how each mode binds the wrapped key to its identity and
 * encryption context.
 *
 * Every ciphertext starts with one format byte, so a provider in either mode unwraps keys made in the other mode
 * (useful when switching modes) and an unknown byte is refused before the token is called:
 *
 * - `0x01` AES_GCM: `0x01 || iv(12) || ct(32) || tag(16)` = 61 bytes. The token encrypts the data key under the KEK
 *   with a fresh random 96-bit IV and AAD = {@link wrapAad}(`AES_GCM`, ...). A wrapped key moved to another
 *   kind, key id, version or context fails the tag check inside the token.
 * - `0x02` AES_KEY_WRAP_PAD: `0x02 || kwp(40) || bindingTag(32)` = 73 bytes. RFC 5649 (C_WrapKey) has no associated
 *   data, so the binding is added outside it: `bindingKey = HMAC-SHA-256(dataKey, "keyfold/pkcs11/kwp-binding/v1" ||
 *   0x01)` (HKDF-Expand with the data key as PRK, one block) and `bindingTag = HMAC-SHA-256(bindingKey, AAD)` with
 *   AAD = {@link wrapAad}(`AES_KEY_WRAP_PAD`, ...). After C_UnwrapKey the tag is recomputed from the unwrapped key
 *   and compared in constant time; a mismatch wipes the key and fails with UNWRAP_FAILED.
 *
 *   Why this is sound: the tag is a MAC keyed by a secret derived from the data key, so it reveals nothing about the
 *   key (HMAC is a PRF) and nobody without the data key can make a tag for another context or version. Swapping the
 *   RFC 5649 part for another key's fails the tag; changing the tag fails the comparison; changing the RFC 5649 part
 *   fails its own integrity check in the token. The derivation label starts `keyfold/pkcs11/`, distinct from the
 *   envelope's own HMAC inputs (`keyfold/v1/...`), so no value derived here equals one the envelope derives or
 *   publishes.
 * @module
 */
import { createHmac } from 'node:crypto';
import { UnwrapFailedError, concatBytes, constantTimeEqual, lengthPrefixed, wipe } from '@keyfold/envelope-core';
import { utf8 } from './utf8.js';

export const FORMAT_AES_GCM = 0x01;
export const FORMAT_AES_KEY_WRAP_PAD = 0x02;
export const GCM_IV_LENGTH = 12;
export const GCM_TAG_LENGTH = 16;
export const DATA_KEY_LENGTH = 32;
/** RFC 5649 output for a 32-byte key: 32 bytes + the 8-byte integrity block. */
export const KWP_WRAPPED_LENGTH = 40;
export const BINDING_TAG_LENGTH = 32;
export const GCM_WRAPPED_LENGTH = 1 + GCM_IV_LENGTH + DATA_KEY_LENGTH + GCM_TAG_LENGTH;
export const KWP_WRAPPED_TOTAL_LENGTH = 1 + KWP_WRAPPED_LENGTH + BINDING_TAG_LENGTH;

/** The two wrapping mechanisms. */
export type Pkcs11WrapMechanism = 'AES_GCM' | 'AES_KEY_WRAP_PAD';

const AAD_LABEL: Record<Pkcs11WrapMechanism, Uint8Array> = {
  AES_GCM: utf8('keyfold/pkcs11/aes-gcm/v1'),
  AES_KEY_WRAP_PAD: utf8('keyfold/pkcs11/aes-kwp/v1'),
};
const BINDING_LABEL = utf8('keyfold/pkcs11/kwp-binding/v1');
const ONE = Uint8Array.of(1);

/**
 * The associated data of one wrap: a label naming the mode, then kind, key id, version and the canonical context
 * (`encodeContext`), each with a 4-byte big-endian length prefix so no two different tuples share an encoding.
 */
export function wrapAad(mechanism: Pkcs11WrapMechanism, kind: string, keyId: string, version: string, canonicalContext: Uint8Array): Uint8Array {
  return aadWithPrefix(aadPrefix(mechanism, kind, keyId, version), canonicalContext);
}

/** Everything of {@link wrapAad} before the context: fixed per mode, provider and version, so providers cache it. */
export function aadPrefix(mechanism: Pkcs11WrapMechanism, kind: string, keyId: string, version: string): Uint8Array {
  return lengthPrefixed([AAD_LABEL[mechanism], kind, keyId, version]);
}

/** `prefix || u32(len) || canonicalContext`: the AAD from a cached {@link aadPrefix}. */
export function aadWithPrefix(prefix: Uint8Array, canonicalContext: Uint8Array): Uint8Array {
  const out = new Uint8Array(prefix.length + 4 + canonicalContext.length);
  out.set(prefix, 0);
  new DataView(out.buffer).setUint32(prefix.length, canonicalContext.length);
  out.set(canonicalContext, prefix.length + 4);
  return out;
}

/** The AES_KEY_WRAP_PAD binding tag (see the module comment). The derived key is wiped before returning. */
export function kwpBindingTag(dataKey: Uint8Array, aad: Uint8Array): Uint8Array {
  const bindingKey = createHmac('sha256', dataKey).update(BINDING_LABEL).update(ONE).digest();
  try {
    return new Uint8Array(createHmac('sha256', bindingKey).update(aad).digest());
  } finally {
    bindingKey.fill(0);
  }
}

/** Where the token writes `ct || tag` in an `AES_GCM` wrapped key: after the format byte and the IV. */
export const GCM_SEALED_OFFSET = 1 + GCM_IV_LENGTH;

/** A new `AES_GCM` wrapped key with its format byte and `iv` in place; the token fills in `ct || tag`. */
export function newGcmWrapped(iv: Uint8Array): Uint8Array {
  const out = new Uint8Array(GCM_WRAPPED_LENGTH);
  out[0] = FORMAT_AES_GCM;
  out.set(iv, 1);
  return out;
}

/** The `AES_KEY_WRAP_PAD` wrapped key: format byte, the token's RFC 5649 output, the binding tag over `aad`. */
export function kwpWrapped(kwp: Uint8Array, dataKey: Uint8Array, aad: Uint8Array): Uint8Array {
  return concatBytes(Uint8Array.of(FORMAT_AES_KEY_WRAP_PAD), kwp, kwpBindingTag(dataKey, aad));
}

/** A wrapped key split into its parts (views into the ciphertext), by its format byte. */
export type ParsedWrapped =
  | { readonly mode: 'AES_GCM'; readonly iv: Uint8Array; readonly sealed: Uint8Array }
  | { readonly mode: 'AES_KEY_WRAP_PAD'; readonly kwp: Uint8Array; readonly bindingTag: Uint8Array };

/**
 * Splits a wrapped key made in either mode; `undefined` for an unknown format byte or a wrong length (refused before
 * the token is called).
 */
export function parseWrapped(ciphertext: Uint8Array): ParsedWrapped | undefined {
  if (ciphertext[0] === FORMAT_AES_GCM && ciphertext.length === GCM_WRAPPED_LENGTH) {
    return { mode: 'AES_GCM', iv: ciphertext.subarray(1, GCM_SEALED_OFFSET), sealed: ciphertext.subarray(GCM_SEALED_OFFSET) };
  }
  if (ciphertext[0] === FORMAT_AES_KEY_WRAP_PAD && ciphertext.length === KWP_WRAPPED_TOTAL_LENGTH) {
    return {
      mode: 'AES_KEY_WRAP_PAD',
      kwp: ciphertext.subarray(1, 1 + KWP_WRAPPED_LENGTH),
      bindingTag: ciphertext.subarray(1 + KWP_WRAPPED_LENGTH, 1 + KWP_WRAPPED_LENGTH + BINDING_TAG_LENGTH),
    };
  }
  return undefined;
}

/**
 * Accepts a key the token unwrapped from RFC 5649 only when it is 32 bytes and its binding tag over `aad` matches
 * (constant time). Otherwise the key is wiped. @throws UnwrapFailedError
 */
export function checkKwpUnwrapped(key: Uint8Array, aad: Uint8Array, bindingTag: Uint8Array): Uint8Array {
  if (key.length !== DATA_KEY_LENGTH || !constantTimeEqual(kwpBindingTag(key, aad), bindingTag)) {
    wipe(key);
    throw new UnwrapFailedError();
  }
  return key;
}
