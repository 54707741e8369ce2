/**
 * The frame codec of suite 1: sealing and opening one frame, and the frame's length word. Every body is made of
 * frames: a single-shot body (`frameSize` 0) is one final frame `ciphertext || tag` without a length word; a framed
 * body is a run of frames `u32 (FINAL_BIT | plaintextLength) || ciphertext || tag`, where every non-final frame
 * carries exactly `frameSize` plaintext bytes and the last one 0..frameSize with the final flag.
 *
 * - Frame nonce: 4 zero bytes || u64 frame index (unique per frame under the per-message key).
 * - Frame AAD: header core (magic .. context) || u64 index || u8 final flag || u32 plaintext length, so reordering,
 *   truncation, frame swapping and moving a frame to another envelope all break its tag.
 * - Tags are always 16 bytes (`authTagLength` set on both sides; a tag of another length is refused).
 * - {@link openFrame} returns a frame's plaintext only after its tag verified; any failure is the one
 *   DECRYPT_FAILED.
 * @module
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { DecryptFailedError } from './errors.js';
import { FINAL_FRAME_BIT, FRAME_HEADER_LENGTH, TAG_LENGTH } from './format.js';

function writeU32(out: Uint8Array, off: number, v: number): void {
  out[off] = v >>> 24;
  out[off + 1] = (v >>> 16) & 0xff;
  out[off + 2] = (v >>> 8) & 0xff;
  out[off + 3] = v & 0xff;
}

/** Writes the 12-byte GCM nonce of frame `index` into `iv` and returns it. */
function writeFrameNonce(iv: Uint8Array, index: number): Uint8Array {
  iv[0] = 0;
  iv[1] = 0;
  iv[2] = 0;
  iv[3] = 0;
  writeU32(iv, 4, Math.floor(index / 0x1_0000_0000));
  writeU32(iv, 8, index >>> 0);
  return iv;
}

/** Writes the AAD of one frame (see the module comment) into `aad`, which is `core.length + 13` bytes long. */
function writeFrameAad(aad: Uint8Array, core: Uint8Array, index: number, final: boolean, length: number): Uint8Array {
  aad.set(core, 0);
  writeU32(aad, core.length, Math.floor(index / 0x1_0000_0000));
  writeU32(aad, core.length + 4, index >>> 0);
  aad[core.length + 8] = final ? 1 : 0;
  writeU32(aad, core.length + 9, length);
  return aad;
}

/** 12-byte GCM nonce of frame `index`, in a fresh buffer. */
export function frameNonce(index: number): Uint8Array {
  return writeFrameNonce(new Uint8Array(12), index);
}

/** AAD of one frame (see the module comment), in a fresh buffer. */
export function frameAad(core: Uint8Array, index: number, final: boolean, length: number): Uint8Array {
  return writeFrameAad(new Uint8Array(core.length + 13), core, index, final, length);
}

// Scratch for the frame nonce and AAD: both are public, and node:crypto copies them during `createCipheriv` /
// `setAAD` (synchronous calls), so one buffer of each is reused across frames instead of two allocations per frame.
const scratchNonce = new Uint8Array(12);
let scratchAad = new Uint8Array(256);

function scratchFrameAad(core: Uint8Array, index: number, final: boolean, length: number): Uint8Array {
  const n = core.length + 13;
  if (scratchAad.length < n) scratchAad = new Uint8Array(Math.max(n, scratchAad.length * 2));
  return writeFrameAad(scratchAad.subarray(0, n), core, index, final, length);
}

const GCM_OPTIONS = Object.freeze({ authTagLength: TAG_LENGTH });

/** One sealed frame: its ciphertext (as long as the plaintext) and its 16-byte tag, each a buffer of its own. */
export interface SealedFrame {
  readonly ciphertext: Buffer;
  readonly tag: Buffer;
}

/** Encrypts one frame of plaintext under the per-message key; the inverse of {@link openFrame}. */
export function sealFrame(encKey: Uint8Array, index: number, final: boolean, core: Uint8Array, plaintext: Uint8Array): SealedFrame {
  const cipher = createCipheriv('aes-256-gcm', encKey, writeFrameNonce(scratchNonce, index), GCM_OPTIONS);
  cipher.setAAD(scratchFrameAad(core, index, final, plaintext.length));
  const ct = cipher.update(plaintext);
  // GCM is a stream mode: final() yields no bytes; joined only if a future OpenSSL ever did.
  const rest = cipher.final();
  return { ciphertext: rest.length === 0 ? ct : Buffer.concat([ct, rest]), tag: cipher.getAuthTag() };
}

/** Decrypts and verifies one frame; returns its plaintext only if the tag verified. @throws DecryptFailedError */
export function openFrame(
  encKey: Uint8Array,
  index: number,
  final: boolean,
  core: Uint8Array,
  ciphertext: Uint8Array,
  tag: Uint8Array,
): Uint8Array {
  if (tag.length !== TAG_LENGTH) throw new DecryptFailedError();
  const decipher = createDecipheriv('aes-256-gcm', encKey, writeFrameNonce(scratchNonce, index), GCM_OPTIONS);
  decipher.setAAD(scratchFrameAad(core, index, final, ciphertext.length));
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

/** The length word that starts a frame of a framed body. */
export function encodeFrameWord(final: boolean, plaintextLength: number): Buffer {
  const word = Buffer.allocUnsafe(FRAME_HEADER_LENGTH);
  word.writeUInt32BE((final ? FINAL_FRAME_BIT : 0) + plaintextLength, 0);
  return word;
}

/**
 * Reads a frame's length word: its final flag and plaintext length, checked against the body's `frameSize`
 * (a non-final frame must be full, no frame may be larger). @throws DecryptFailedError
 */
export function decodeFrameWord(word: number, frameSize: number): { final: boolean; length: number } {
  const final = (word & FINAL_FRAME_BIT) !== 0;
  const length = word & ~FINAL_FRAME_BIT;
  if (length > frameSize || (!final && length !== frameSize)) throw new DecryptFailedError();
  return { final, length };
}
