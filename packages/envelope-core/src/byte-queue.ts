/**
 * A queue of incoming byte chunks that hands out exact byte counts without concatenating everything buffered:
 * a request served by the first chunk alone is a view into it (no copy).
 * @module
 */

/** Bytes received but not consumed yet, as a list of chunks. */
export class ByteQueue {
  readonly #chunks: Buffer[] = [];
  #length = 0;

  /** Bytes buffered. */
  get length(): number {
    return this.#length;
  }

  /** Appends a chunk (kept by reference: the caller must not modify it afterwards). */
  push(chunk: Buffer): void {
    this.#chunks.push(chunk);
    this.#length += chunk.length;
  }

  /** Removes and returns exactly `n` buffered bytes (`n` <= `length`); a view when one chunk holds them all. */
  take(n: number): Buffer {
    const first = this.#chunks[0] as Buffer;
    if (first.length >= n) {
      const out = first.subarray(0, n);
      if (first.length === n) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(n);
      this.#length -= n;
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    while (off < n) {
      const c = this.#chunks[0] as Buffer;
      const k = Math.min(c.length, n - off);
      c.copy(out, off, 0, k);
      off += k;
      if (k === c.length) this.#chunks.shift();
      else this.#chunks[0] = c.subarray(k);
    }
    this.#length -= n;
    return out;
  }

  /** The big-endian u32 at the front, not consumed (`length` >= 4); read across chunk boundaries without copying. */
  peekU32(): number {
    const first = this.#chunks[0] as Buffer;
    if (first.length >= 4) return first.readUInt32BE(0);
    let v = 0;
    let got = 0;
    for (const c of this.#chunks) {
      for (let i = 0; i < c.length && got < 4; i++, got++) v = v * 256 + (c[i] as number);
      if (got === 4) break;
    }
    return v;
  }

  /** Everything buffered as one buffer, which stays queued (joined once, so later calls are cheap). */
  coalesce(): Buffer {
    if (this.#chunks.length === 1) return this.#chunks[0] as Buffer;
    const all = Buffer.concat(this.#chunks);
    this.#chunks.length = 0;
    if (all.length > 0) this.#chunks.push(all);
    return all;
  }
}
