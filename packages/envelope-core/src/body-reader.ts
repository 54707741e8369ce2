/**
 * Opens an envelope body frame by frame as its bytes arrive: the one body opener behind `open`, `rewrap` and
 * `openStream`. A frame's plaintext is handed out only after its tag verified; a body that ends without its final
 * frame, or goes on after it, is refused with the one DECRYPT_FAILED.
 * @module
 */
import type { ByteQueue } from './byte-queue.js';
import { DecryptFailedError, LimitExceededError } from './errors.js';
import { FRAME_HEADER_LENGTH, TAG_LENGTH, type ParsedHeader } from './format.js';
import { decodeFrameWord, openFrame } from './frame-codec.js';

/**
 * Opens a complete single-shot body, `ciphertext || tag`: frame 0, final, without a length word.
 * @throws DecryptFailedError
 */
export function openSingleShotBody(encKey: Uint8Array, core: Uint8Array, body: Uint8Array): Uint8Array {
  if (body.length < TAG_LENGTH) throw new DecryptFailedError();
  const ctLen = body.length - TAG_LENGTH;
  return openFrame(encKey, 0, true, core, body.subarray(0, ctLen), body.subarray(ctLen));
}

/** Reads the body of one envelope (single-shot or framed) under its per-message key. */
export class BodyReader {
  readonly #frameSize: number;
  readonly #core: Uint8Array;
  readonly #encKey: Uint8Array;
  readonly #singleShotLimit: number | undefined;
  #index = 0;
  #done = false;

  /**
   * @param header the parsed header (its `frameSize` says single-shot (0) or framed).
   * @param core the header core (magic .. context), bound into every frame's AAD.
   * @param encKey the per-message key; not owned (the caller wipes it).
   * @param singleShotLimit when set, a single-shot body (which can only be verified once complete, so is held in
   *   memory) larger than this many plaintext bytes is refused with LIMIT_EXCEEDED as soon as that many arrived.
   */
  constructor(header: ParsedHeader, core: Uint8Array, encKey: Uint8Array, singleShotLimit?: number) {
    this.#frameSize = header.frameSize;
    this.#core = core;
    this.#encKey = encKey;
    this.#singleShotLimit = singleShotLimit;
  }

  /** True once the final frame verified: the body is complete. */
  get done(): boolean {
    return this.#done;
  }

  /**
   * Opens every complete frame buffered in `queue`, passing each plaintext to `emit` in order (a single-shot body
   * even when empty, a frame only when not). `ending`: no more bytes will come, so the body must be complete now.
   * @throws DecryptFailedError for any bad frame, a truncated body or bytes after the final frame;
   *   LimitExceededError for a single-shot body over `singleShotLimit`.
   */
  read(queue: ByteQueue, ending: boolean, emit: (plaintext: Uint8Array) => void): void {
    if (this.#frameSize === 0) this.#readSingleShot(queue, ending, emit);
    else this.#readFrames(queue, emit);
    if (this.#done && queue.length > 0) throw new DecryptFailedError();
    if (ending && !this.#done) throw new DecryptFailedError();
  }

  #readSingleShot(queue: ByteQueue, ending: boolean, emit: (plaintext: Uint8Array) => void): void {
    const limit = this.#singleShotLimit;
    if (limit !== undefined && queue.length > limit + TAG_LENGTH) {
      throw new LimitExceededError(
        `a single-shot envelope opened as a stream is limited to ${limit} bytes; open it with open() or seal large data with sealStream()`,
      );
    }
    if (!ending || this.#done) return;
    emit(openSingleShotBody(this.#encKey, this.#core, queue.take(queue.length)));
    this.#done = true;
  }

  #readFrames(queue: ByteQueue, emit: (plaintext: Uint8Array) => void): void {
    while (!this.#done && queue.length >= FRAME_HEADER_LENGTH) {
      const { final, length } = decodeFrameWord(queue.peekU32(), this.#frameSize);
      if (queue.length < FRAME_HEADER_LENGTH + length + TAG_LENGTH) break;
      queue.take(FRAME_HEADER_LENGTH);
      const ct = queue.take(length);
      const tag = queue.take(TAG_LENGTH);
      const pt = openFrame(this.#encKey, this.#index, final, this.#core, ct, tag);
      this.#index++;
      if (final) this.#done = true;
      if (pt.length > 0) emit(pt);
    }
  }
}
