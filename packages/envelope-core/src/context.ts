/**
 * Canonical encoding of an {@link EncryptionContext}. Providers authenticate this byte string (as AAD or a
 * keyed digest) and the envelope header stores it, so it must be one unique encoding per context:
 * entries sorted by the UTF-8 bytes of the key, each length-prefixed, so `{a:'b', c:'d'}` and
 * `{c:'d', a:'b'}` encode identically and no two different contexts share an encoding.
 *
 * Layout: `u16 count`, then per entry `u16 keyLen, key, u16 valueLen, value` (big-endian, UTF-8).
 * @module
 */
import { utf8 } from './bytes.js';
import type { EncryptionContext } from './types.js';

/** At most this many entries in one context. */
export const MAX_CONTEXT_ENTRIES = 64;
/** At most this many bytes for one key or value. */
export const MAX_CONTEXT_FIELD = 4096;

/**
 * Contexts the core itself made: frozen plain objects of string data properties (no accessors, no prototype
 * tricks), built by `normalizeContext` from a validated caller context or by the header parser. Frozen data
 * properties cannot change, so such a context is validated and canonically encoded once per public call and every
 * layer below (the provider base, a local provider's AAD) reuses that work instead of repeating it. The value is
 * the canonical encoding once computed (`null` until then); it is public data (the header stores it).
 */
const adopted = new WeakMap<object, Uint8Array | null>();

/**
 * Marks a frozen context made by the core as valid, with its canonical bytes when already known. Internal: only
 * for objects the core built itself from validated or parsed data; `bytes` must not be mutated afterwards.
 */
export function adoptContext(context: EncryptionContext, bytes?: Uint8Array): void {
  adopted.set(context, bytes ?? null);
}

/** True for a context made by the core (see {@link adoptContext}): already valid and immutable. */
export function isAdoptedContext(context: EncryptionContext): boolean {
  return adopted.has(context);
}

/**
 * Validates a context given by a caller: a plain object of string values, keys non-empty, within the limits.
 * @throws TypeError / RangeError for caller mistakes.
 */
export function assertContext(context: unknown, name = 'context'): asserts context is EncryptionContext {
  if (context === null || typeof context !== 'object' || Array.isArray(context)) {
    throw new TypeError(`${name} must be a plain object of string values`);
  }
  if (adopted.has(context)) return;
  const entries = Object.entries(context);
  if (entries.length > MAX_CONTEXT_ENTRIES) {
    throw new RangeError(`${name} has ${entries.length} entries; at most ${MAX_CONTEXT_ENTRIES} are allowed`);
  }
  for (const [k, v] of entries) {
    if (k.length === 0) throw new TypeError(`${name} keys must not be empty`);
    if (typeof v !== 'string') throw new TypeError(`${name}[${JSON.stringify(k)}] must be a string; got ${typeof v}`);
    if (!isWellFormed(k) || !isWellFormed(v)) {
      throw new TypeError(`${name}[${JSON.stringify(k)}] contains a lone surrogate; context strings must be valid Unicode`);
    }
    if (utf8(k).length > MAX_CONTEXT_FIELD || utf8(v).length > MAX_CONTEXT_FIELD) {
      throw new RangeError(`${name}[${JSON.stringify(k)}] is longer than ${MAX_CONTEXT_FIELD} bytes`);
    }
  }
}

function isWellFormed(s: string): boolean {
  // String.prototype.isWellFormed is Node >= 20; keep a fallback for type libs that lack it.
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const n = s.charCodeAt(i + 1);
      if (!(n >= 0xdc00 && n <= 0xdfff)) return false;
      i++;
    } else if (c >= 0xdc00 && c <= 0xdfff) {
      return false;
    }
  }
  return true;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

const EMPTY_CONTEXT = new Uint8Array([0, 0]);

/** The canonical bytes of a context (see the module comment). The empty context encodes as `00 00`. */
export function encodeContext(context: EncryptionContext): Uint8Array {
  const known = adopted.get(context);
  if (known) return known.slice();
  const bytes = encodeFresh(context);
  if (known === null) adopted.set(context, bytes.slice());
  return bytes;
}

/**
 * Like {@link encodeContext}, but for a context made by the core the bytes are computed once and the same
 * (shared) array is returned on every call: internal callers only read it.
 */
export function canonicalContextBytes(context: EncryptionContext): Uint8Array {
  const known = adopted.get(context);
  if (known) return known;
  const bytes = encodeFresh(context);
  if (known === null) adopted.set(context, bytes);
  return bytes;
}

function encodeFresh(context: EncryptionContext): Uint8Array {
  const entries = Object.entries(context).map(([k, v]) => [utf8(k), utf8(v)] as const);
  if (entries.length === 0) return EMPTY_CONTEXT.slice();
  entries.sort((x, y) => compareBytes(x[0], y[0]));
  let len = 2;
  for (const [k, v] of entries) len += 4 + k.length + v.length;
  const out = new Uint8Array(len);
  const view = new DataView(out.buffer);
  view.setUint16(0, entries.length);
  let off = 2;
  for (const [k, v] of entries) {
    view.setUint16(off, k.length);
    out.set(k, off + 2);
    off += 2 + k.length;
    view.setUint16(off, v.length);
    out.set(v, off + 2);
    off += 2 + v.length;
  }
  return out;
}

/** True when both contexts hold exactly the same entries (order irrelevant). */
export function contextsEqual(a: EncryptionContext, b: EncryptionContext): boolean {
  const ak = Object.keys(a);
  if (ak.length !== Object.keys(b).length) return false;
  for (const k of ak) {
    if (!Object.prototype.hasOwnProperty.call(b, k) || a[k] !== b[k]) return false;
  }
  return true;
}
