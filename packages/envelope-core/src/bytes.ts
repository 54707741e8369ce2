/**
 * Small asserting helpers for bytes, and the wipe / constant-time primitives every package uses.
 * @module
 */
import { timingSafeEqual } from 'node:crypto';

/**
 * Asserts `value` is a `Uint8Array` (optionally of exactly `length` bytes). Throws `TypeError` / `RangeError`
 * naming the argument, as caller mistakes are not coded errors.
 */
export function assertBytes(value: unknown, length: number | undefined, name: string): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new TypeError(`${name} must be a Uint8Array; got ${describeType(value)}`);
  }
  if (length !== undefined && value.length !== length) {
    throw new RangeError(`${name} must be ${length} bytes; got ${value.length}`);
  }
}

/**
 * Asserts `key` is a 32-byte key that owns its memory. A key that is a view into a larger shared buffer is
 * refused: wiping it would leave copies elsewhere in that buffer, and other code could read it.
 */
export function assertOwnedKey(key: unknown, name: string, length = 32): asserts key is Uint8Array {
  assertBytes(key, length, name);
  if (key.byteOffset !== 0 || key.buffer.byteLength !== key.byteLength) {
    throw new TypeError(`${name} must not be a view into a larger buffer; copy it into its own Uint8Array first`);
  }
}

function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'object') return (value).constructor?.name ?? 'object';
  return typeof value;
}

/** Overwrites `buf` with zeros. Safe to call with `undefined`. */
export function wipe(buf: Uint8Array | undefined | null): void {
  if (buf) buf.fill(0);
}

/** Constant-time equality of two byte arrays (length is not secret). */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  return timingSafeEqual(a, b);
}

/** A fresh copy that owns its memory (never a view into a shared pool). */
export function copyBytes(src: Uint8Array): Uint8Array {
  const out = new Uint8Array(src.length);
  out.set(src);
  return out;
}

/** Concatenates byte arrays into one fresh buffer. */
export function concatBytes(...parts: readonly Uint8Array[]): Uint8Array {
  let len = 0;
  for (const p of parts) len += p.length;
  const out = new Uint8Array(len);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** base64url without padding. */
export function toBase64Url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

const B64URL = /^[A-Za-z0-9_-]*$/;

/** Strict base64url decode: refuses characters outside the alphabet and impossible lengths; returns `undefined`. */
export function fromBase64Url(text: string): Uint8Array | undefined {
  if (!B64URL.test(text) || text.length % 4 === 1) return undefined;
  const buf = Buffer.from(text, 'base64url');
  // Refuse non-canonical encodings (trailing bits set), so one envelope has exactly one armor.
  if (buf.toString('base64url') !== text) return undefined;
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder('utf-8', { fatal: true });

export function utf8(text: string): Uint8Array {
  return textEncoder.encode(text);
}

const LABEL_CACHE_LIMIT = 512;
const labelCache = new Map<string, Uint8Array>();

/**
 * UTF-8 of a short, non-secret label (provider kind, key id, key version), memoised in a small bounded map because
 * the same few labels are encoded for every wrapped key. The returned bytes are shared: never modify them.
 */
export function utf8Label(text: string): Uint8Array {
  let bytes = labelCache.get(text);
  if (bytes === undefined) {
    bytes = textEncoder.encode(text);
    if (labelCache.size >= LABEL_CACHE_LIMIT) labelCache.clear();
    labelCache.set(text, bytes);
  }
  return bytes;
}

/** Strict UTF-8 decode; throws `TypeError` on invalid sequences. */
export function fromUtf8(bytes: Uint8Array): string {
  return textDecoder.decode(bytes);
}

/**
 * Length-prefixed concatenation: a u32 big-endian length before each part (strings as UTF-8), so no two different
 * part lists share an encoding. The building block of every AAD and MAC input that binds several fields.
 */
export function lengthPrefixed(parts: ReadonlyArray<string | Uint8Array>): Uint8Array {
  const bytes = parts.map((p) => (typeof p === 'string' ? textEncoder.encode(p) : p));
  let len = 0;
  for (const p of bytes) len += 4 + p.length;
  const out = new Uint8Array(len);
  const view = new DataView(out.buffer);
  let off = 0;
  for (const p of bytes) {
    view.setUint32(off, p.length);
    out.set(p, off + 4);
    off += 4 + p.length;
  }
  return out;
}
