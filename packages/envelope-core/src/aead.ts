/**
 * AES-256-GCM and HKDF-SHA-256 on node:crypto, with the rules that matter: 12-byte IVs, tags always 16 bytes
 * (`authTagLength` set on both sides, so a truncated tag is refused by OpenSSL and by our length checks),
 * and no plaintext returned unless the tag verified.
 * @module
 */
import { createCipheriv, createDecipheriv, randomFillSync } from 'node:crypto';
import { assertBytes, lengthPrefixed, utf8Label } from './bytes.js';

export const GCM_IV_LENGTH = 12;
export const GCM_TAG_LENGTH = 16;
export const AES_256_KEY_LENGTH = 32;

/**
 * AES-256-GCM encrypt with a 16-byte tag. Returns `ciphertext || tag` in one fresh buffer. The caller guarantees
 * that `iv` is never used twice under `key` (a random 12-byte IV per message, or a counter).
 * @throws RangeError / TypeError when `key` is not 32 bytes or `iv` not 12 (caller mistakes).
 * @example
 * ```ts
 * const sealed = gcmSeal(key, iv, plaintext, aad); // plaintext.length + 16 bytes
 * ```
 */
export function gcmSeal(key: Uint8Array, iv: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Uint8Array {
  assertBytes(key, AES_256_KEY_LENGTH, 'key');
  assertBytes(iv, GCM_IV_LENGTH, 'iv');
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: GCM_TAG_LENGTH });
  cipher.setAAD(aad);
  const out = new Uint8Array(plaintext.length + GCM_TAG_LENGTH);
  const a = cipher.update(plaintext);
  out.set(a, 0);
  const b = cipher.final();
  out.set(b, a.length);
  out.set(cipher.getAuthTag(), a.length + b.length);
  return out;
}

/**
 * AES-256-GCM decrypt of `ciphertext || tag` (the tag is always the last 16 bytes: a shorter, truncated tag is never
 * accepted). Returns the plaintext, in a fresh buffer the caller owns, only if the tag verifies, else `undefined`
 * (callers turn that into their one generic error); a failed attempt leaves no plaintext behind.
 * @throws RangeError / TypeError when `key` is not 32 bytes or `iv` not 12 (caller mistakes); never for bad data.
 * @example
 * ```ts
 * const plaintext = gcmOpen(key, iv, sealed, aad);
 * if (plaintext === undefined) throw new DecryptFailedError();
 * ```
 */
export function gcmOpen(key: Uint8Array, iv: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Uint8Array | undefined {
  assertBytes(key, AES_256_KEY_LENGTH, 'key');
  assertBytes(iv, GCM_IV_LENGTH, 'iv');
  if (sealed.length < GCM_TAG_LENGTH) return undefined;
  const ctLen = sealed.length - GCM_TAG_LENGTH;
  const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: GCM_TAG_LENGTH });
  decipher.setAAD(aad);
  decipher.setAuthTag(sealed.subarray(ctLen));
  const out = new Uint8Array(ctLen);
  try {
    const a = decipher.update(sealed.subarray(0, ctLen));
    out.set(a, 0);
    a.fill(0);
    const b = decipher.final();
    out.set(b, a.length);
    return out;
  } catch {
    out.fill(0);
    return undefined;
  }
}

const RANDOM_POOL_SIZE = 4096;
const randomPool = new Uint8Array(RANDOM_POOL_SIZE);
let randomPoolOffset = RANDOM_POOL_SIZE;

/**
 * `n` cryptographically random bytes in a buffer of their own (never a view into a shared pool). Small requests
 * are served from a private 4 KiB block filled by the CSPRNG (`randomFillSync`); each byte is handed out once and
 * zeroed in the block as it is taken, so the block never holds a key that is in use.
 */
export function randomOwnedBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  if (n > 256) return randomFillSync(out);
  if (randomPoolOffset + n > RANDOM_POOL_SIZE) {
    randomFillSync(randomPool);
    randomPoolOffset = 0;
  }
  const slice = randomPool.subarray(randomPoolOffset, randomPoolOffset + n);
  out.set(slice);
  slice.fill(0);
  randomPoolOffset += n;
  return out;
}

/**
 * AES-256-GCM under a fresh random 12-byte IV: returns `iv(12) || ciphertext || tag(16)` in one buffer, the layout
 * of local wraps and of sealed secret values. A random IV is safe for up to 2^32 messages under one key.
 * @throws RangeError / TypeError when `key` is not 32 bytes (a caller mistake).
 * @example
 * ```ts
 * const sealed = gcmSealWithRandomIv(key, new TextEncoder().encode('s3cret'), aad);
 * ```
 */
export function gcmSealWithRandomIv(key: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Uint8Array {
  const iv = randomOwnedBytes(GCM_IV_LENGTH);
  const sealed = gcmSeal(key, iv, plaintext, aad);
  const out = new Uint8Array(GCM_IV_LENGTH + sealed.length);
  out.set(iv, 0);
  out.set(sealed, GCM_IV_LENGTH);
  return out;
}

/**
 * Inverse of {@link gcmSealWithRandomIv}: opens `iv(12) || ciphertext || tag(16)`. Returns the plaintext only if
 * the tag verifies, else `undefined` (also for input shorter than IV and tag).
 * @throws RangeError / TypeError when `key` is not 32 bytes (a caller mistake); never for bad data.
 * @example
 * ```ts
 * const plaintext = gcmOpenWithIv(key, sealed, aad) ?? fail();
 * ```
 */
export function gcmOpenWithIv(key: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Uint8Array | undefined {
  if (sealed.length < GCM_IV_LENGTH + GCM_TAG_LENGTH) return undefined;
  return gcmOpen(key, sealed.subarray(0, GCM_IV_LENGTH), sealed.subarray(GCM_IV_LENGTH), aad);
}

/**
 * Wraps a 32-byte data key under a local 32-byte KEK with AES-256-GCM. Output: `iv(12) || ct(32) || tag(16)`.
 * `aad` must bind everything the wrapped key is used with (see {@link localWrapAad}).
 */
export function localWrap(kek: Uint8Array, dataKey: Uint8Array, aad: Uint8Array): Uint8Array {
  assertBytes(kek, AES_256_KEY_LENGTH, 'kek');
  assertBytes(dataKey, AES_256_KEY_LENGTH, 'dataKey');
  return gcmSealWithRandomIv(kek, dataKey, aad);
}

/** Inverse of {@link localWrap}; `undefined` on any failure (wrong KEK, wrong AAD, tampered or malformed bytes). */
export function localUnwrap(kek: Uint8Array, wrapped: Uint8Array, aad: Uint8Array): Uint8Array | undefined {
  if (wrapped.length !== GCM_IV_LENGTH + AES_256_KEY_LENGTH + GCM_TAG_LENGTH) return undefined;
  return gcmOpenWithIv(kek, wrapped, aad);
}

const LOCAL_WRAP_LABEL = new TextEncoder().encode('keyfold/local-wrap/v1');

/**
 * The AAD of a local wrap: a label, the wrapped-key metadata (kind, keyId, keyVersion) and the canonical
 * context, each length-prefixed, so a wrapped key moved to another key id, version or context fails to unwrap.
 */
export function localWrapAad(kind: string, keyId: string, keyVersion: string, canonicalContext: Uint8Array): Uint8Array {
  return lengthPrefixed([LOCAL_WRAP_LABEL, utf8Label(kind), utf8Label(keyId), utf8Label(keyVersion), canonicalContext]);
}
