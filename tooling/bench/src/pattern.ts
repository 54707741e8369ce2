/**
 * A deterministic, nearly free plaintext source for streams and a sink that checks every byte that comes out.
 *
 * The stream is a sequence of blocks of `pattern.length` bytes; block `b` is the pattern with its first 8 bytes
 * replaced by `b mod RING` (big-endian), so a dropped, duplicated or reordered block is detected (within a window
 * of RING blocks), not only a flipped bit. The source hands out the same RING prepared buffers again and again
 * (never modified), so it costs no copy per block and barely dilutes the ratios; a contender that wrote into its
 * input would be caught by the verifier. Checking is a memcmp against the expected block, far cheaper than hashing.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';

export const BLOCK = 64 * 1024;
/** Distinct stamped blocks the source cycles through. */
export const RING = 64;
const STAMP = 8;
const stamp = Buffer.alloc(STAMP);

/** A random pattern block (content is irrelevant to AES speed; random keeps it honest for any compression). */
export function makePattern(size = BLOCK): Buffer {
  return randomBytes(size);
}

/** Expected bytes of block `b` (of length `n <= pattern.length`) written into `into`. */
export function fillBlock(into: Buffer, pattern: Buffer, b: number, n = into.length): Buffer {
  pattern.copy(into, 0, 0, n);
  const v = BigInt(b % RING);
  if (n >= STAMP) into.writeBigUInt64BE(v, 0);
  else {
    // A final block shorter than the stamp carries the stamp's first n bytes, as the verifier expects.
    stamp.writeBigUInt64BE(v, 0);
    stamp.copy(into, 0, 0, n);
  }
  return into;
}

const rings = new WeakMap<Buffer, Buffer[]>();

/** The RING full blocks for `pattern`, built once per pattern. */
function ringFor(pattern: Buffer): Buffer[] {
  let ring = rings.get(pattern);
  if (!ring) {
    ring = Array.from({ length: RING }, (_, b) => fillBlock(Buffer.allocUnsafe(pattern.length), pattern, b));
    rings.set(pattern, ring);
  }
  return ring;
}

/** A Readable of `total` bytes, cycling through the ring of prepared blocks (consumers may keep, not modify). */
export function patternSource(total: number, pattern: Buffer): Readable {
  const ring = ringFor(pattern);
  let b = 0;
  let sent = 0;
  return new Readable({
    highWaterMark: 4 * pattern.length,
    read() {
      for (;;) {
        if (sent >= total) {
          this.push(null);
          return;
        }
        const n = Math.min(pattern.length, total - sent);
        const block = ring[b % RING]!;
        const chunk = n === block.length ? block : block.subarray(0, n);
        b++;
        sent += n;
        if (!this.push(chunk)) return;
      }
    },
  });
}

/** Checks a byte stream against the pattern source's output, chunk boundaries anywhere. */
export class PatternVerifier {
  readonly #pattern: Buffer;
  readonly #expected: Buffer;
  #block = -1;
  #offset = 0;

  constructor(pattern: Buffer) {
    this.#pattern = pattern;
    this.#expected = Buffer.allocUnsafe(pattern.length);
  }

  get offset(): number {
    return this.#offset;
  }

  /** Returns false at the first mismatching byte. */
  update(chunk: Uint8Array): boolean {
    const P = this.#pattern.length;
    let i = 0;
    while (i < chunk.length) {
      const b = Math.floor(this.#offset / P);
      const inner = this.#offset - b * P;
      const n = Math.min(P - inner, chunk.length - i);
      if (b !== this.#block) {
        fillBlock(this.#expected, this.#pattern, b);
        this.#block = b;
      }
      if (Buffer.compare(chunk.subarray(i, i + n), this.#expected.subarray(inner, inner + n)) !== 0) return false;
      i += n;
      this.#offset += n;
    }
    return true;
  }
}

/** A sink that verifies every byte, fails the pipeline on a mismatch or a short stream, and calls `onChunk`. */
export function verifyingSink(pattern: Buffer, total: number, onChunk?: () => void): Writable & { readonly received: () => number } {
  const v = new PatternVerifier(pattern);
  const sink = new Writable({
    highWaterMark: 4 * pattern.length,
    write(chunk: Buffer, _enc, cb) {
      onChunk?.();
      if (!v.update(chunk)) cb(new Error(`output differs from input near byte ${v.offset}`));
      else if (v.offset > total) cb(new Error(`output longer than input (${v.offset} > ${total})`));
      else cb();
    },
    final(cb) {
      cb(v.offset === total ? null : new Error(`output shorter than input (${v.offset} < ${total})`));
    },
  });
  return Object.assign(sink, { received: () => v.offset });
}
