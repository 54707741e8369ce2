/**
 * Per-message cryptography of suite 1.
 *
 * - Per-message key: `K_enc = HKDF-Expand-SHA-256(PRK = dataKey, info = "keyfold/v1/suite1/enc" || salt, L = 32)`,
 *   i.e. `HMAC-SHA-256(dataKey, "keyfold/v1/suite1/enc" || salt || 0x01)`. The data key is already a uniformly
 *   random 256-bit key, so HKDF's extract step is skipped as RFC 5869 section 3.3 allows, and the 16-byte random
 *   salt goes into `info`. A fresh salt per message means a cached data key seals each message under its own key,
 *   so the deterministic frame nonces never repeat under a key.
 * - Key commitment: `HMAC-SHA-256(dataKey, "keyfold/v1/suite1/commit" || header bytes up to and including the salt)`,
 *   32 bytes, checked in constant time before any decryption. HMAC-SHA-256 is collision resistant across keys, so
 *   no second data key yields the same value; it also authenticates every header field, wrapped keys included.
 *   The two labels differ at byte 18 ('e' vs 'c'), so no input of one use equals an input of the other.
 *
 * Frame nonces, frame AAD and the frame cipher itself are the frame codec (`frame-codec.ts`).
 * @module
 */
import { randomOwnedBytes } from './aead.js';
import { hmacSha256 } from './hmac-sha256.js';

const ENC_LABEL = Buffer.from('keyfold/v1/suite1/enc', 'latin1');
const COMMIT_LABEL = Buffer.from('keyfold/v1/suite1/commit', 'latin1');
/** `salt || 0x01`, the tail of the HKDF-Expand input (the salt is public; reused, so no allocation per message). */
const saltAndBlock1 = new Uint8Array(256 + 1);

export interface MessageKeys {
  readonly encKey: Uint8Array;
  /** The data key the message keys come from; keys the commitment. Not owned: never wiped through here. */
  readonly dataKey: Uint8Array;
  /** Overwrites the per-message key. */
  wipe(): void;
}

/** Derives the body key of one message. */
export function deriveMessageKeys(dataKey: Uint8Array, salt: Uint8Array): MessageKeys {
  let tail: Uint8Array;
  if (salt.length < saltAndBlock1.length) {
    saltAndBlock1.set(salt, 0);
    saltAndBlock1[salt.length] = 1;
    tail = saltAndBlock1.subarray(0, salt.length + 1);
  } else {
    tail = new Uint8Array(salt.length + 1);
    tail.set(salt, 0);
    tail[salt.length] = 1;
  }
  const encKey = hmacSha256(dataKey, ENC_LABEL, tail);
  return { encKey, dataKey, wipe: () => encKey.fill(0) };
}

/** The 32-byte commitment over the header prefix. */
export function computeCommitment(keys: MessageKeys, headerPrefix: Uint8Array): Uint8Array {
  return hmacSha256(keys.dataKey, COMMIT_LABEL, headerPrefix);
}

/** A fresh random salt (not secret), from the CSPRNG-filled block of {@link randomOwnedBytes}. */
export function nextSalt(length: number): Uint8Array {
  return randomOwnedBytes(length);
}
