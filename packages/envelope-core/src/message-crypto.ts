/**
 * Per-message cryptography of suite 1.
 *
 * - Per-message keys: `HKDF-SHA-256(ikm = dataKey, salt = 16 random bytes, info = "keyfold/v1/suite1/keys", L = 64)`,
 *   split into a 32-byte AES-256-GCM body key and a 32-byte commitment key. A fresh salt per message means a
 *   cached data key seals each message under its own key, so deterministic frame nonces never repeat under a key.
 * - Key commitment: `HMAC-SHA-256(commitKey, header bytes up to and including the salt)`, 32 bytes, checked in
 *   constant time before any decryption. It also authenticates the wrapped keys, the context and the frame size.
 * - Frame nonce: 4 zero bytes || u64 frame index. Frame AAD: header core (magic .. context) || u64 index ||
 *   u8 final flag || u32 plaintext length, so reordering, truncation and frame swapping break a tag.
 * @module
 */
import { createDecipheriv, createHmac, hkdfSync } from 'node:crypto';
import { DecryptFailedError } from './errors.js';

const TAG_LENGTH = 16;

const KEYS_INFO_SUITE1 = new TextEncoder().encode('keyfold/v1/suite1/keys');

export interface MessageKeys {
  readonly encKey: Uint8Array;
  readonly commitKey: Uint8Array;
  /** Overwrites both keys. */
  wipe(): void;
}

/** Derives the body and commitment keys of one message. */
export function deriveMessageKeys(dataKey: Uint8Array, salt: Uint8Array): MessageKeys {
  const okm = new Uint8Array(hkdfSync('sha256', dataKey, salt, KEYS_INFO_SUITE1, 64));
  return {
    encKey: okm.subarray(0, 32),
    commitKey: okm.subarray(32, 64),
    wipe: () => okm.fill(0),
  };
}

/** The 32-byte commitment over the header prefix. */
export function computeCommitment(commitKey: Uint8Array, headerPrefix: Uint8Array): Uint8Array {
  const mac = createHmac('sha256', commitKey).update(headerPrefix).digest();
  return new Uint8Array(mac.buffer, mac.byteOffset, mac.byteLength);
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
  const out = new Uint8Array(ciphertext.length);
  try {
    const a = decipher.update(ciphertext);
    out.set(a, 0);
    a.fill(0);
    decipher.final();
    return out;
  } catch (cause) {
    out.fill(0);
    throw new DecryptFailedError({ cause });
  }
}

