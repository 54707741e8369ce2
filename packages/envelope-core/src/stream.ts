/**
 * Framed streaming (format v1, frameSize > 0). Each frame: `u32 (FINAL_BIT | plaintextLength) || ct || tag`.
 * Non-final frames carry exactly `frameSize` plaintext bytes; the last frame carries 0..frameSize and the final
 * flag. The opener pushes a frame's plaintext only after `decipher.final()` verified its tag, so no unverified
 * plaintext is ever released; a stream that ends without a final frame, or continues after it, is refused.
 * @module
 */
import { createCipheriv } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { DecryptFailedError, KeyfoldError, LimitExceededError } from './errors.js';
import { FINAL_FRAME_BIT, FRAME_HEADER_LENGTH, NeedMoreBytes, TAG_LENGTH, parseHeader, type FormatLimits, type ParsedHeader } from './format.js';
import { frameAad, frameNonce, openFrame, type MessageKeys } from './message-crypto.js';

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
  const sealFrame = (s: SealState, t: Transform, plaintext: Buffer, final: boolean): void => {
    const len = plaintext.length;
    const cipher = createCipheriv('aes-256-gcm', s.keys.encKey, frameNonce(index), { authTagLength: TAG_LENGTH });
    cipher.setAAD(frameAad(s.core, index, final, len));
    const word = Buffer.allocUnsafe(FRAME_HEADER_LENGTH);
    word.writeUInt32BE((final ? FINAL_FRAME_BIT : 0) + len, 0);
    t.push(word);
    const ct = cipher.update(plaintext);
    if (ct.length > 0) t.push(ct);
    const rest = cipher.final();
    if (rest.length > 0) t.push(rest);
    t.push(cipher.getAuthTag());
    index++;
  };

  const sealChunk = (s: SealState, t: Transform, chunk: Buffer): void => {
    let pos = 0;
    while (pos < chunk.length) {
      // Keep the last full frame until more data arrives: only then do we know it is not final.
      if (filled === frameSize) {
        sealFrame(s, t, frame, false);
        filled = 0;
      }
      if (filled === 0 && chunk.length - pos > frameSize) {
        // A whole frame, with more data after it, straight from the chunk: no copy.
        sealFrame(s, t, chunk.subarray(pos, pos + frameSize), false);
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
            sealFrame(s, this, frame.subarray(0, filled), true);
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
  const chunks: Buffer[] = [];
  let buffered = 0;
  let header: ParsedHeader | undefined;
  let core: Uint8Array | undefined;
  let keys: MessageKeys | undefined;
  let index = 0;
  let done = false;

  const take = (n: number): Buffer => {
    // Gather exactly n bytes from the chunk list.
    const first = chunks[0] as Buffer;
    if (first.length >= n) {
      const out = first.subarray(0, n);
      if (first.length === n) chunks.shift();
      else chunks[0] = first.subarray(n);
      buffered -= n;
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    while (off < n) {
      const c = chunks[0] as Buffer;
      const k = Math.min(c.length, n - off);
      c.copy(out, off, 0, k);
      off += k;
      if (k === c.length) chunks.shift();
      else chunks[0] = c.subarray(k);
    }
    buffered -= n;
    return out;
  };
  const peekU32 = (): number => {
    const first = chunks[0] as Buffer;
    if (first.length >= 4) return first.readUInt32BE(0);
    // Read across chunk boundaries without concatenating everything buffered.
    let v = 0;
    let got = 0;
    for (const c of chunks) {
      for (let i = 0; i < c.length && got < 4; i++, got++) v = v * 256 + (c[i] as number);
      if (got === 4) break;
    }
    return v;
  };
  // Header parse attempts happen at doubling sizes, so tiny chunks cost O(n), not O(n^2), before the header is known.
  let nextHeaderAttempt = 64;

  const wipeAll = (): void => {
    keys?.wipe();
  };

  const processFrames = (t: Transform, ending: boolean): void => {
    if (!header || !keys || !core) return;
    if (header.frameSize === 0) {
      // Single-shot body inside a stream: it can only be verified once it is complete, so it is held in memory,
      // bounded by limits.maxFrameSize (large data should be sealed with sealStream, which frames it).
      if (buffered > limits.maxFrameSize + TAG_LENGTH) {
        throw new LimitExceededError(
          `a single-shot envelope opened as a stream is limited to ${limits.maxFrameSize} bytes; open it with open() or seal large data with sealStream()`,
        );
      }
      if (!ending) return;
      if (buffered < TAG_LENGTH) throw new DecryptFailedError();
      const body = take(buffered);
      const ctLen = body.length - TAG_LENGTH;
      t.push(openFrame(keys.encKey, 0, true, core, body.subarray(0, ctLen), body.subarray(ctLen)));
      done = true;
      return;
    }
    while (!done && buffered >= FRAME_HEADER_LENGTH) {
      const word = peekU32();
      const final = (word & FINAL_FRAME_BIT) !== 0;
      const len = word & ~FINAL_FRAME_BIT;
      if (len > header.frameSize || (!final && len !== header.frameSize)) throw new DecryptFailedError();
      if (buffered < FRAME_HEADER_LENGTH + len + TAG_LENGTH) break;
      take(FRAME_HEADER_LENGTH);
      const ct = take(len);
      const tag = take(TAG_LENGTH);
      const pt = openFrame(keys.encKey, index, final, core, ct, tag);
      index++;
      if (pt.length > 0) t.push(pt);
      if (final) done = true;
    }
    if (done && buffered > 0) throw new DecryptFailedError();
  };

  const step = async (t: Transform, ending: boolean): Promise<void> => {
    if (done) {
      if (buffered > 0) throw new DecryptFailedError();
      return;
    }
    if (!header) {
      if (!ending && buffered < nextHeaderAttempt) return;
      const all = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
      chunks.length = 0;
      if (all.length > 0) chunks.push(all);
      let parsed: ParsedHeader;
      try {
        parsed = parseHeader(all, limits, ending);
      } catch (err) {
        if (err instanceof NeedMoreBytes) {
          nextHeaderAttempt = Math.max(nextHeaderAttempt, buffered) * 2;
          return;
        }
        throw err;
      }
      const headerBytes = Buffer.from(all.subarray(0, parsed.length));
      take(parsed.length);
      keys = await unlock(parsed, headerBytes);
      header = parsed;
      core = headerBytes.subarray(0, parsed.coreLength);
    }
    processFrames(t, ending);
    if (ending && !done) throw new DecryptFailedError();
  };

  return new Transform({
    transform(this: Transform, chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
      chunks.push(chunk);
      buffered += chunk.length;
      if (header && keys) {
        // Keys ready: stay synchronous (no promise per chunk).
        try {
          if (done) throw new DecryptFailedError();
          processFrames(this, false);
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
