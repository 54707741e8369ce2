/**
 * The two shapes every contender is adapted to, so the sections never see a library's own API.
 * @module
 */
import type { Duplex } from 'node:stream';

/** One-shot seal/open of a whole buffer. Results may be synchronous (raw node:crypto) or promises. */
export interface OneShot {
  readonly id: string;
  readonly label: string;
  /** True when seal/open return results, not promises. */
  readonly sync: boolean;
  seal(plaintext: Uint8Array): Uint8Array | Promise<Uint8Array>;
  open(sealed: Uint8Array): Uint8Array | Promise<Uint8Array>;
  close(): Promise<void>;
}

/** A streaming seal -> open pair. Each call makes fresh transforms for one message. */
export interface StreamPair {
  readonly id: string;
  readonly label: string;
  /** Transforms for one message: `seal` output is piped into `open`. */
  pair(): { seal: Duplex; open: Duplex };
  close(): Promise<void>;
}

/** A deterministic 32-byte key for a label, so runs are reproducible (these keys protect nothing). */
export async function benchKey(label: string): Promise<Uint8Array> {
  const { createHash } = await import('node:crypto');
  // Copy into an own ArrayBuffer: libraries may (rightly) refuse a key that is a view into a shared pool.
  return new Uint8Array(createHash('sha256').update(`keyfold-bench:${label}`).digest());
}
