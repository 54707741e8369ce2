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
 * - Frame nonce: 4 zero bytes || u64 frame index. Frame AAD: header core (magic .. context) || u64 index ||
 *   u8 final flag || u32 plaintext length, so reordering, truncation and frame swapping break a tag.
 * @module
 */
import { createDecipheriv, createHmac } from 'node:crypto';
import { randomOwnedBytes } from './aead.js';
import { DecryptFailedError } from './errors.js';

const TAG_LENGTH = 16;
const ENC_LABEL = Buffer.from('keyfold/v1/suite1/enc', 'latin1');
const BLOCK_1 = Buffer.from([1]);
const COMMIT_LABEL = Buffer.from('keyfold/v1/suite1/commit', 'latin1');

export interface MessageKeys {
  readonly encKey: Uint8Array;
  /** The data key the message keys come from; keys the commitment. Not owned: never wiped through here. */
  readonly dataKey: Uint8Array;
  /** Overwrites the per-message key. */
  wipe(): void;
}

/** Derives the body key of one message. */
export function deriveMessageKeys(dataKey: Uint8Array, salt: Uint8Array): MessageKeys {
  const encKey = createHmac('sha256', dataKey).update(ENC_LABEL).update(salt).update(BLOCK_1).digest();
  return { encKey, dataKey, wipe: () => encKey.fill(0) };
}

/** The 32-byte commitment over the header prefix. */
export function computeCommitment(keys: MessageKeys, headerPrefix: Uint8Array): Uint8Array {
  return createHmac('sha256', keys.dataKey).update(COMMIT_LABEL).update(headerPrefix).digest();
}

/** 12-byte GCM nonce of frame `index`. */
export function frameNonce(index: number): Uint8Array {
  const iv = new Uint8Array(12);
  const view = new DataView(iv.buffer);
  view.setUint32(4, Math.floor(index / 0x1_0000_0000));
  view.setUint32(8, index >>> 0);
  return iv;
}

/** AAD of one frame (see the module comment). */
export function frameAad(core: Uint8Array, index: number, final: boolean, length: number): Uint8Array {
  const aad = new Uint8Array(core.length + 13);
  aad.set(core, 0);
  const view = new DataView(aad.buffer);
  view.setUint32(core.length, Math.floor(index / 0x1_0000_0000));
  view.setUint32(core.length + 4, index >>> 0);
  aad[core.length + 8] = final ? 1 : 0;
  view.setUint32(core.length + 9, length);
  return aad;
}

/** Decrypts and verifies one frame; returns its plaintext only if the tag verified. */
export function openFrame(
  encKey: Uint8Array,
  index: number,
  final: boolean,
  core: Uint8Array,
  ciphertext: Uint8Array,
  tag: Uint8Array,
): Uint8Array {
  if (tag.length !== TAG_LENGTH) throw new DecryptFailedError();
  const decipher = createDecipheriv('aes-256-gcm', encKey, frameNonce(index), { authTagLength: TAG_LENGTH });
  decipher.setAAD(frameAad(core, index, final, ciphertext.length));
  decipher.setAuthTag(tag);
  // node:crypto returns output in a buffer of its own (never a view into the shared Buffer pool), so it can be
  // handed to the caller as is once the tag has verified, and wiped if it did not.
  let out: Uint8Array | undefined;
  try {
    out = decipher.update(ciphertext);
    decipher.final();
    return out;
  } catch (cause) {
    out?.fill(0);
    throw new DecryptFailedError({ cause });
  }
}


/** A fresh random salt (not secret), from the CSPRNG-filled block of {@link randomOwnedBytes}. */
export function nextSalt(length: number): Uint8Array {
  return randomOwnedBytes(length);
}
