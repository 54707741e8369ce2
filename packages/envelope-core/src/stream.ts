/**
 * Framed streaming (format v1, frameSize > 0). Each frame: `u32 (FINAL_BIT | plaintextLength) || ct || tag`.
 * Non-final frames carry exactly `frameSize` plaintext bytes; the last frame carries 0..frameSize and the final
 * flag. The opener pushes a frame's plaintext only after `decipher.final()` verified its tag, so no unverified
 * plaintext is ever released; a stream that ends without a final frame, or continues after it, is refused.
 * @module
 */
import { Transform, type TransformCallback } from 'node:stream';
import { BodyReader } from './body-reader.js';
import { ByteQueue } from './byte-queue.js';
import { DecryptFailedError, KeyfoldError } from './errors.js';
import { NeedMoreBytes, parseHeader, type FormatLimits, type ParsedHeader } from './format.js';
import { encodeFrameWord, sealFrame } from './frame-codec.js';
import type { MessageKeys } from './message-crypto.js';

interface SealState {
  header: Uint8Array;
  core: Uint8Array;
  keys: MessageKeys;
}

function toError(err: unknown): Error {
  return err instanceof Error ? err : new KeyfoldError('INTERNAL', 'stream failed', { cause: err });
}

/** A Transform that seals its input as a framed envelope. `prepare` yields the header and message keys once. */
export function createSealStream(frameSize: number, prepare: () => Promise<SealState>): Transform {
  let state: SealState | undefined;
  let preparing: Promise<SealState> | undefined;
  const frame = Buffer.allocUnsafe(frameSize);
  let filled = 0;
  let index = 0;

  /** Seals `plaintext` (one frame) and pushes length word, ciphertext and tag without copying them together. */
  const pushFrame = (s: SealState, t: Transform, plaintext: Buffer, final: boolean): void => {
    const { ciphertext, tag } = sealFrame(s.keys.encKey, index, final, s.core, plaintext);
    t.push(encodeFrameWord(final, plaintext.length));
    if (ciphertext.length > 0) t.push(ciphertext);
    t.push(tag);
    index++;
  };

  const sealChunk = (s: SealState, t: Transform, chunk: Buffer): void => {
    let pos = 0;
    while (pos < chunk.length) {
      // Keep the last full frame until more data arrives: only then do we know it is not final.
      if (filled === frameSize) {
        pushFrame(s, t, frame, false);
        filled = 0;
      }
      if (filled === 0 && chunk.length - pos > frameSize) {
        // A whole frame, with more data after it, straight from the chunk: no copy.
        pushFrame(s, t, chunk.subarray(pos, pos + frameSize), false);
        pos += frameSize;
        continue;
      }
      const n = Math.min(frameSize - filled, chunk.length - pos);
      chunk.copy(frame, filled, pos, pos + n);
      filled += n;
      pos += n;
    }
  };

  const ensure = async (t: Transform): Promise<SealState> => {
    if (state) return state;
    preparing ??= prepare();
    state = await preparing;
    t.push(Buffer.from(state.header.buffer, state.header.byteOffset, state.header.byteLength));
    return state;
  };

  const wipeAll = (): void => {
    state?.keys.wipe();
    frame.fill(0);
  };

  return new Transform({
    transform(this: Transform, chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
      if (state) {
        // Keys ready: stay synchronous (no promise per chunk).
        try {
          sealChunk(state, this, chunk);
          cb();
        } catch (err) {
          cb(toError(err));
        }
        return;
      }
      ensure(this).then(
        (s) => {
          try {
            sealChunk(s, this, chunk);
            cb();
          } catch (err) {
            cb(toError(err));
          }
        },
        (err: unknown) => cb(toError(err)),
      );
    },
    flush(this: Transform, cb: TransformCallback) {
      ensure(this).then(
        (s) => {
          try {
            pushFrame(s, this, frame.subarray(0, filled), true);
            wipeAll();
            cb();
          } catch (err) {
            wipeAll();
            cb(toError(err));
          }
        },
        (err: unknown) => {
          wipeAll();
          cb(toError(err));
        },
      );
    },
    destroy(err: Error | null, cb: (error: Error | null) => void) {
      wipeAll();
      cb(err);
    },
  });
}

/**
 * A Transform that opens a framed (or single-shot) envelope. `unlock` checks the context, unwraps the data key,
 * verifies the commitment and yields the message keys.
 */
export function createOpenStream(
  limits: FormatLimits,
  unlock: (header: ParsedHeader, headerBytes: Uint8Array) => Promise<MessageKeys>,
): Transform {
  const queue = new ByteQueue();
  let reader: BodyReader | undefined;
  let keys: MessageKeys | undefined;
  // Header parse attempts happen at doubling sizes, so tiny chunks cost O(n), not O(n^2), before the header is known.
  let nextHeaderAttempt = 64;

  const wipeAll = (): void => {
    keys?.wipe();
  };

  const step = async (t: Transform, ending: boolean): Promise<void> => {
    if (!reader) {
      if (!ending && queue.length < nextHeaderAttempt) return;
      const all = queue.coalesce();
      let parsed: ParsedHeader;
      try {
        parsed = parseHeader(all, limits, ending);
      } catch (err) {
        if (err instanceof NeedMoreBytes) {
          nextHeaderAttempt = Math.max(nextHeaderAttempt, queue.length) * 2;
          return;
        }
        throw err;
      }
      const headerBytes = Buffer.from(all.subarray(0, parsed.length));
      queue.take(parsed.length);
      keys = await unlock(parsed, headerBytes);
      // Single-shot body inside a stream: it can only be verified once it is complete, so it is held in memory,
      // bounded by limits.maxFrameSize (large data should be sealed with sealStream, which frames it).
      reader = new BodyReader(parsed, headerBytes.subarray(0, parsed.coreLength), keys.encKey, limits.maxFrameSize);
    } else if (reader.done) {
      if (queue.length > 0) throw new DecryptFailedError();
      return;
    }
    reader.read(queue, ending, (pt) => t.push(pt));
  };

  return new Transform({
    transform(this: Transform, chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
      queue.push(chunk);
      if (reader) {
        // Keys ready: stay synchronous (no promise per chunk).
        try {
          if (reader.done) throw new DecryptFailedError();
          reader.read(queue, false, (pt) => this.push(pt));
          cb();
        } catch (err) {
          wipeAll();
          cb(toError(err));
        }
        return;
      }
      step(this, false).then(
        () => cb(),
        (err: unknown) => {
          wipeAll();
          cb(toError(err));
        },
      );
    },
    flush(this: Transform, cb: TransformCallback) {
      step(this, true).then(
        () => {
          wipeAll();
          cb();
        },
        (err: unknown) => {
          wipeAll();
          cb(toError(err));
        },
      );
    },
    destroy(err: Error | null, cb: (error: Error | null) => void) {
      wipeAll();
      cb(err);
    },
  });
}
