/**
 * Envelope format v1: serialisation and a parser that enforces limits before allocating.
 * The byte-by-byte description is docs/FORMAT.md; keep the two in step.
 *
 * ```
 * header  = magic "KF" | version u8 = 1 | suite u8 = 1 | frameSize u32 (0 = single-shot body)
 *         | context (canonical: u16 count, per entry u16 len + key, u16 len + value; keys strictly ascending)
 *         | wrappedCount u8 | wrappedCount x (u8 len + kind, u16 len + keyId, u8 len + keyVersion, u16 len + ciphertext)
 *         | salt (16) | commitment (32)
 * body    = single-shot: ciphertext || tag(16)
 *         | framed: frames, each u32 (FINAL_BIT | plaintextLength) || ciphertext || tag(16)
 * ```
 * @module
 */
import { adoptContext, assertContext, isAdoptedContext, MAX_CONTEXT_ENTRIES, MAX_CONTEXT_FIELD } from './context.js';
import { fromBase64Url, utf8Label } from './bytes.js';
import { FormatError, LimitExceededError, UnsupportedFormatError } from './errors.js';
import type { EncryptionContext, WrappedKey } from './types.js';

export const MAGIC_0 = 0x4b; // 'K'
export const MAGIC_1 = 0x46; // 'F'
export const FORMAT_VERSION = 1;
/** Suite 1: AES-256-GCM, HKDF-SHA-256 per-message key from a 16-byte salt, HMAC-SHA-256 key commitment. */
export const SUITE_AES256GCM_HKDF_COMMIT = 1;
export const SUITE_NAMES: Readonly<Record<number, string>> = {
  [SUITE_AES256GCM_HKDF_COMMIT]: 'AES-256-GCM/HKDF-SHA-256/HMAC-SHA-256-commit',
};
export const SALT_LENGTH = 16;
export const COMMITMENT_LENGTH = 32;
export const TAG_LENGTH = 16;
export const FRAME_HEADER_LENGTH = 4;
export const FINAL_FRAME_BIT = 0x8000_0000;
export const FIXED_PREFIX_LENGTH = 8;
export const ARMOR_PREFIX = 'kf1.';

/** Parser limits; every one is checked before memory is allocated for what it bounds. */
export interface FormatLimits {
  /** Wrapped keys in one envelope. Default 8. */
  maxWrappedKeys: number;
  /** Bytes of header (everything before the body). Default 64 KiB. */
  maxHeaderBytes: number;
  /** Plaintext bytes of one frame. Default 16 MiB. */
  maxFrameSize: number;
}

export const DEFAULT_LIMITS: Readonly<FormatLimits> = Object.freeze({
  maxWrappedKeys: 8,
  maxHeaderBytes: 64 * 1024,
  maxFrameSize: 16 * 1024 * 1024,
});

/**
 * Parser limits from a caller's partial override of {@link DEFAULT_LIMITS}.
 * @throws RangeError naming the limit when a value is not a positive integer or is out of the format's range.
 */
export function resolveLimits(partial: Partial<FormatLimits> | undefined): FormatLimits {
  const l = { ...DEFAULT_LIMITS, ...(partial ?? {}) };
  for (const [k, v] of Object.entries(l)) {
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`policy.limits.${k} must be a positive integer; got ${String(v)}`);
  }
  if (l.maxWrappedKeys > 255) throw new RangeError('policy.limits.maxWrappedKeys must be at most 255');
  if (l.maxFrameSize > 0x7fff_ffff) throw new RangeError('policy.limits.maxFrameSize must be below 2^31');
  return l;
}

/** The parsed header. `bytes` is the exact header as it appeared (its prefix up to the salt is HMAC'd). */
export interface ParsedHeader {
  readonly version: number;
  readonly suiteId: number;
  readonly frameSize: number;
  readonly context: EncryptionContext;
  /** Canonical context bytes as they appear in the header. */
  readonly contextBytes: Uint8Array;
  readonly wrappedKeys: readonly WrappedKey[];
  readonly salt: Uint8Array;
  readonly commitment: Uint8Array;
  /** Length of `magic..context`: the header core authenticated by every frame. */
  readonly coreLength: number;
  /** Offset of the salt (= end of the wrapped-key section). */
  readonly saltOffset: number;
  /** Offset at which the commitment starts (= bytes HMAC'd). */
  readonly commitmentOffset: number;
  /** Total header length; the body starts here. */
  readonly length: number;
}

/** Thrown internally by the parser when the input ends early; streaming callers wait for more bytes. */
export class NeedMoreBytes extends Error {
  constructor() {
    super('need more bytes');
  }
}

const decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * Reads the header's fields in order, checking each length against the input and the header limit first. One
 * reader per parse (no closures per field); strings that are plain ASCII, as kinds, key ids, versions and most
 * contexts are, are built without the TextDecoder (same result: ASCII decodes to itself, and a BOM is not ASCII).
 */
class HeaderReader {
  off = 0;
  /** True once a string needed the UTF-8 decoder (non-ASCII bytes). */
  decodedNonAscii = false;
  constructor(
    readonly bytes: Uint8Array,
    readonly maxHeaderBytes: number,
    readonly complete: boolean,
  ) {}

  need(n: number): void {
    const end = this.off + n;
    if (end > this.maxHeaderBytes) {
      throw new LimitExceededError(`envelope header is longer than the limit of ${this.maxHeaderBytes} bytes`);
    }
    if (end > this.bytes.length) {
      if (this.complete) throw new FormatError('envelope is truncated inside its header');
      throw new NeedMoreBytes();
    }
  }

  u8(): number {
    this.need(1);
    return this.bytes[this.off++] as number;
  }

  u16(): number {
    this.need(2);
    const b = this.bytes;
    const v = ((b[this.off] as number) << 8) | (b[this.off + 1] as number);
    this.off += 2;
    return v;
  }

  u32(): number {
    this.need(4);
    const b = this.bytes;
    const o = this.off;
    const v = (b[o] as number) * 0x1000000 + (((b[o + 1] as number) << 16) | ((b[o + 2] as number) << 8) | (b[o + 3] as number));
    this.off += 4;
    return v;
  }

  /** `len` bytes (already checked with {@link need}) as a string; advances. */
  string(len: number, what: string): string {
    const b = this.bytes;
    const start = this.off;
    const end = start + len;
    let ascii = len <= 256;
    for (let i = start; ascii && i < end; i++) if ((b[i] as number) >= 0x80) ascii = false;
    this.off = end;
    if (ascii) return String.fromCharCode.apply(null, b.subarray(start, end) as unknown as number[]);
    this.decodedNonAscii = true;
    try {
      return decoder.decode(b.subarray(start, end));
    } catch (cause) {
      throw new FormatError(`${what} is not valid UTF-8`, { cause });
    }
  }
}

/**
 * Parses a header from the start of `bytes`. Throws {@link NeedMoreBytes} when `bytes` ends inside the header
 * and `complete` is false; with `complete` true, a short input is a FormatError ("truncated").
 * @throws FormatError, UnsupportedFormatError, LimitExceededError
 */
export function parseHeader(bytes: Uint8Array, limits: FormatLimits, complete: boolean): ParsedHeader {
  const r = new HeaderReader(bytes, limits.maxHeaderBytes, complete);
  r.need(2);
  if (bytes[0] !== MAGIC_0 || bytes[1] !== MAGIC_1) {
    throw new FormatError('not a Keyfold envelope (bad magic bytes)');
  }
  r.off = 2;
  const version = r.u8();
  if (version !== FORMAT_VERSION) {
    throw new UnsupportedFormatError(
      `envelope format version ${version} is not supported by this version of @keyfold/envelope-core (supports ${FORMAT_VERSION}); upgrade to open it`,
    );
  }
  const suiteId = r.u8();
  if (SUITE_NAMES[suiteId] === undefined) {
    throw new UnsupportedFormatError(`envelope algorithm suite ${suiteId} is not supported (supports ${SUITE_AES256GCM_HKDF_COMMIT})`);
  }
  const frameSize = r.u32();
  if (frameSize > limits.maxFrameSize) {
    throw new LimitExceededError(`envelope frame size ${frameSize} exceeds the limit of ${limits.maxFrameSize} bytes`);
  }

  const contextStart = r.off;
  const count = r.u16();
  if (count > MAX_CONTEXT_ENTRIES) {
    throw new LimitExceededError(`envelope context has ${count} entries; the limit is ${MAX_CONTEXT_ENTRIES}`);
  }
  const context: Record<string, string> = Object.create(null) as Record<string, string>;
  let prevKeyStart = -1;
  let prevKeyLength = 0;
  for (let i = 0; i < count; i++) {
    const klen = r.u16();
    if (klen === 0) throw new FormatError('envelope context has an empty key');
    if (klen > MAX_CONTEXT_FIELD) throw new LimitExceededError(`envelope context key longer than ${MAX_CONTEXT_FIELD} bytes`);
    r.need(klen);
    if (prevKeyStart >= 0 && compareRanges(bytes, prevKeyStart, prevKeyLength, r.off, klen) >= 0) {
      throw new FormatError('envelope context is not in canonical order (keys must be unique and ascending)');
    }
    prevKeyStart = r.off;
    prevKeyLength = klen;
    const key = r.string(klen, 'envelope context key');
    const vlen = r.u16();
    if (vlen > MAX_CONTEXT_FIELD) throw new LimitExceededError(`envelope context value longer than ${MAX_CONTEXT_FIELD} bytes`);
    r.need(vlen);
    context[key] = r.string(vlen, 'envelope context value');
  }
  const coreLength = r.off;
  const contextAscii = !r.decodedNonAscii;
  const contextBytes = bytes.slice(contextStart, coreLength);

  const wrappedCount = r.u8();
  if (wrappedCount === 0) throw new FormatError('envelope has no wrapped keys');
  if (wrappedCount > limits.maxWrappedKeys) {
    throw new LimitExceededError(
      `envelope has ${wrappedCount} wrapped keys; the limit is ${limits.maxWrappedKeys} (raise limits.maxWrappedKeys to accept it)`,
    );
  }
  const wrappedKeys: WrappedKey[] = [];
  for (let i = 0; i < wrappedCount; i++) {
    const kindLen = r.u8();
    r.need(kindLen);
    const kind = r.string(kindLen, 'wrapped key kind');
    const keyIdLen = r.u16();
    r.need(keyIdLen);
    const keyId = r.string(keyIdLen, 'wrapped key id');
    const versionLen = r.u8();
    r.need(versionLen);
    const keyVersion = r.string(versionLen, 'wrapped key version');
    const ctLen = r.u16();
    if (ctLen === 0) throw new FormatError('wrapped key has an empty ciphertext');
    r.need(ctLen);
    const ciphertext = bytes.slice(r.off, r.off + ctLen);
    r.off += ctLen;
    if (kind.length === 0 || keyId.length === 0 || keyVersion.length === 0) {
      throw new FormatError('wrapped key has an empty kind, key id or version');
    }
    wrappedKeys.push(Object.freeze({ kind, keyId, keyVersion, ciphertext }));
  }
  const saltOffset = r.off;
  r.need(SALT_LENGTH);
  const salt = bytes.slice(saltOffset, saltOffset + SALT_LENGTH);
  r.off += SALT_LENGTH;
  const commitmentOffset = r.off;
  r.need(COMMITMENT_LENGTH);
  const commitment = bytes.slice(commitmentOffset, commitmentOffset + COMMITMENT_LENGTH);
  r.off += COMMITMENT_LENGTH;
  const frozenContext: EncryptionContext = Object.freeze({ ...context });
  // Made here from parsed data (frozen data properties): providers need not validate or copy it again. Only an
  // all-ASCII context is adopted: a decoded non-ASCII one (the decoder drops a leading BOM, which could leave an
  // empty key) keeps being validated where it is used, exactly as before.
  if (contextAscii) adoptContext(frozenContext);
  return Object.freeze({
    version,
    suiteId,
    frameSize,
    context: frozenContext,
    contextBytes,
    wrappedKeys: Object.freeze(wrappedKeys),
    salt,
    commitment,
    coreLength,
    saltOffset,
    commitmentOffset,
    length: r.off,
  });
}

/** Compares `bytes[aStart, +aLength)` with `bytes[bStart, +bLength)` as unsigned byte strings. */
function compareRanges(bytes: Uint8Array, aStart: number, aLength: number, bStart: number, bLength: number): number {
  const n = Math.min(aLength, bLength);
  for (let i = 0; i < n; i++) {
    const d = (bytes[aStart + i] as number) - (bytes[bStart + i] as number);
    if (d !== 0) return d;
  }
  return aLength - bLength;
}



/** Header fields needed to serialise one. */
export interface HeaderFields {
  suiteId: number;
  frameSize: number;
  contextBytes: Uint8Array;
  /** The wrapped-key section as made by {@link serializeWrappedKeys}. */
  wrappedSection: Uint8Array;
  salt: Uint8Array;
}

/**
 * Serialises the wrapped-key section (count byte and entries). Done once per data key: the encrypt cache keeps it.
 * @throws RangeError when a field is too long for its length prefix or the count is over the limit.
 */
export function serializeWrappedKeys(wrappedKeys: readonly WrappedKey[], limits: FormatLimits): Uint8Array {
  if (wrappedKeys.length === 0) throw new RangeError('at least one wrapped key is required');
  if (wrappedKeys.length > Math.min(255, limits.maxWrappedKeys)) {
    throw new RangeError(`at most ${Math.min(255, limits.maxWrappedKeys)} wrapped keys fit in one envelope; got ${wrappedKeys.length}`);
  }
  const encoded = wrappedKeys.map((w) => {
    const kind = utf8Label(w.kind);
    const keyId = utf8Label(w.keyId);
    const version = utf8Label(w.keyVersion);
    if (kind.length === 0 || kind.length > 255) throw new RangeError(`wrapped key kind must be 1..255 bytes; got ${kind.length}`);
    if (keyId.length === 0 || keyId.length > 0xffff) throw new RangeError(`wrapped key id must be 1..65535 bytes`);
    if (version.length === 0 || version.length > 255) throw new RangeError(`wrapped key version must be 1..255 bytes`);
    if (w.ciphertext.length === 0 || w.ciphertext.length > 0xffff) {
      throw new RangeError(`wrapped key ciphertext must be 1..65535 bytes; got ${w.ciphertext.length}`);
    }
    return { kind, keyId, version, ct: w.ciphertext };
  });
  let len = 1;
  for (const e of encoded) len += 1 + e.kind.length + 2 + e.keyId.length + 1 + e.version.length + 2 + e.ct.length;
  const out = new Uint8Array(len);
  const view = new DataView(out.buffer);
  let off = 0;
  out[off++] = encoded.length;
  for (const e of encoded) {
    out[off++] = e.kind.length;
    out.set(e.kind, off);
    off += e.kind.length;
    view.setUint16(off, e.keyId.length);
    off += 2;
    out.set(e.keyId, off);
    off += e.keyId.length;
    out[off++] = e.version.length;
    out.set(e.version, off);
    off += e.version.length;
    view.setUint16(off, e.ct.length);
    off += 2;
    out.set(e.ct, off);
    off += e.ct.length;
  }
  return out;
}

/**
 * Serialises a header with a zeroed commitment; the caller computes the commitment over
 * `bytes.subarray(0, commitmentOffset)` and writes it at `commitmentOffset`.
 * @throws RangeError when the header would exceed `limits.maxHeaderBytes`.
 */
export function serializeHeader(
  fields: HeaderFields,
  limits: FormatLimits,
): { bytes: Uint8Array; coreLength: number; commitmentOffset: number } {
  const coreLength = FIXED_PREFIX_LENGTH + fields.contextBytes.length;
  const len = coreLength + fields.wrappedSection.length + SALT_LENGTH + COMMITMENT_LENGTH;
  if (len > limits.maxHeaderBytes) {
    throw new RangeError(`the envelope header would be ${len} bytes, over the limit of ${limits.maxHeaderBytes}`);
  }
  const out = new Uint8Array(len);
  out[0] = MAGIC_0;
  out[1] = MAGIC_1;
  out[2] = FORMAT_VERSION;
  out[3] = fields.suiteId;
  new DataView(out.buffer).setUint32(4, fields.frameSize);
  out.set(fields.contextBytes, FIXED_PREFIX_LENGTH);
  out.set(fields.wrappedSection, coreLength);
  const saltOffset = coreLength + fields.wrappedSection.length;
  out.set(fields.salt, saltOffset);
  return { bytes: out, coreLength, commitmentOffset: saltOffset + SALT_LENGTH };
}

/** Text armor: `kf1.` + base64url (no padding) of the binary envelope. */
export function armor(envelope: Uint8Array): string {
  return ARMOR_PREFIX + Buffer.from(envelope.buffer, envelope.byteOffset, envelope.byteLength).toString('base64url');
}

/** True when `text` starts with the `kf1.` armor prefix. */
export function isArmored(text: string): boolean {
  return text.startsWith(ARMOR_PREFIX);
}

/**
 * Decodes a `kf1.` armored envelope. Surrounding whitespace (a trailing newline from a file) is ignored.
 * @throws FormatError for a missing prefix or characters outside base64url.
 */
export function dearmor(text: string): Uint8Array {
  const t = text.trim();
  if (!t.startsWith(ARMOR_PREFIX)) {
    if (/^kf\d+\./.test(t)) throw new UnsupportedFormatError(`armor ${t.slice(0, t.indexOf('.') + 1)} is not supported (supports kf1.)`);
    throw new FormatError('not a Keyfold armored envelope (expected the prefix "kf1.")');
  }
  // Strict and canonical (no stray padding bits), so one envelope has exactly one armor.
  const bytes = fromBase64Url(t.slice(ARMOR_PREFIX.length));
  if (bytes === undefined) throw new FormatError('armored envelope is not valid canonical base64url');
  return bytes;
}

/**
 * Validates and freezes a context given by a caller (defaults to the empty context). The result is adopted (see
 * `adoptContext`): the layers below neither validate nor copy it again, and its canonical bytes are encoded once.
 * @throws TypeError / RangeError for caller mistakes, naming `name`.
 */
export function normalizeContext(context: EncryptionContext | undefined, name = 'context'): EncryptionContext {
  if (context === undefined) {
    const empty = Object.freeze({});
    adoptContext(empty);
    return empty;
  }
  if (context === null || typeof context !== 'object' || Array.isArray(context)) assertContext(context, name); // throws
  if (isAdoptedContext(context)) return context;
  // Copy first, then validate the copy: a getter cannot show one value to the check and another to the header.
  const copy: EncryptionContext = Object.freeze({ ...context });
  assertContext(copy, name);
  adoptContext(copy);
  return copy;
}
