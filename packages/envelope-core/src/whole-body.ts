/**
 * One-shot bodies held in memory, as thin wrappers over the frame codec: `seal` writes the single-shot body (one
 * final frame, no length word), and `open` / `rewrap` read a whole body, single-shot or framed, with the same
 * {@link BodyReader} that `openStream` uses.
 * @module
 */
import { wipe } from './bytes.js';
import { BodyReader, openSingleShotBody } from './body-reader.js';
import { ByteQueue } from './byte-queue.js';
import type { ParsedHeader } from './format.js';
import { sealFrame } from './frame-codec.js';

/**
 * The whole single-shot envelope: `header || ciphertext || tag`, the body sealed as frame 0, final.
 * @param core the header core (magic .. context), a prefix of `header`.
 */
export function sealSingleShot(header: Uint8Array, core: Uint8Array, encKey: Uint8Array, plaintext: Uint8Array): Uint8Array {
  const { ciphertext, tag } = sealFrame(encKey, 0, true, core, plaintext);
  const out = new Uint8Array(header.length + ciphertext.length + tag.length);
  out.set(header, 0);
  out.set(ciphertext, header.length);
  out.set(tag, header.length + ciphertext.length);
  return out;
}

/**
 * Opens the whole body of `envelope` (single-shot or framed) and returns its plaintext in a fresh buffer the caller
 * owns. A framed body is read by the {@link BodyReader} of `openStream`; its frame plaintexts are wiped once joined.
 * @throws DecryptFailedError for any failure, whatever step failed.
 */
export function openWholeBody(envelope: Uint8Array, header: ParsedHeader, encKey: Uint8Array): Uint8Array {
  const core = envelope.subarray(0, header.coreLength);
  if (header.frameSize === 0) return openSingleShotBody(encKey, core, envelope.subarray(header.length));
  const queue = new ByteQueue();
  queue.push(Buffer.from(envelope.buffer, envelope.byteOffset + header.length, envelope.length - header.length));
  const reader = new BodyReader(header, core, encKey);
  const parts: Uint8Array[] = [];
  try {
    reader.read(queue, true, (pt) => parts.push(pt));
    let total = 0;
    for (const p of parts) total += p.length;
    const out = new Uint8Array(total);
    let off = 0;
    for (const p of parts) {
      out.set(p, off);
      off += p.length;
    }
    return out;
  } finally {
    for (const p of parts) wipe(p);
  }
}
