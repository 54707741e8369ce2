/**
 * An independent reference of docs/FORMAT.md (format v1, suite 1) written directly on node:crypto, for cross-checks
 * and for crafting headers by hand. It deliberately does not import the package's own format / crypto code, so a
 * test that compares the two pins the documented construction rather than the implementation against itself.
 */
import { createDecipheriv, createHmac } from 'node:crypto';

export interface RefWrappedKey {
  kind: string;
  keyId: string;
  keyVersion: string;
  ciphertext: Uint8Array;
}

export interface RefHeader {
  version: number;
  suite: number;
  frameSize: number;
  context: Record<string, string>;
  contextBytes: Uint8Array;
  wrappedKeys: RefWrappedKey[];
  salt: Uint8Array;
  commitment: Uint8Array;
  /** End of magic..context (the frames' AAD core). */
  coreLength: number;
  /** Start of the wrapped-key section / of the salt / of the commitment; total header length. */
  wrappedOffset: number;
  saltOffset: number;
  commitmentOffset: number;
  length: number;
}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder('utf-8', { fatal: true });

/** Canonical context bytes: u16 count, entries sorted by key bytes, each u16-length-prefixed key and value. */
export function refEncodeContext(context: Readonly<Record<string, string>>, sort = true): Uint8Array {
  const entries = Object.entries(context).map(([k, v]) => [Buffer.from(utf8.encode(k)), Buffer.from(utf8.encode(v))] as const);
  if (sort) entries.sort((a, b) => Buffer.compare(a[0], b[0]));
  const parts: Buffer[] = [u16(entries.length)];
  for (const [k, v] of entries) parts.push(u16(k.length), k, u16(v.length), v);
  return new Uint8Array(Buffer.concat(parts));
}

export function refEncodeWrappedKeys(keys: readonly RefWrappedKey[]): Uint8Array {
  const parts: Buffer[] = [Buffer.from([keys.length])];
  for (const w of keys) {
    const kind = Buffer.from(w.kind, 'utf8');
    const keyId = Buffer.from(w.keyId, 'utf8');
    const version = Buffer.from(w.keyVersion, 'utf8');
    parts.push(Buffer.from([kind.length]), kind, u16(keyId.length), keyId, Buffer.from([version.length]), version);
    parts.push(u16(w.ciphertext.length), Buffer.from(w.ciphertext));
  }
  return new Uint8Array(Buffer.concat(parts));
}

/**
 * Header bytes per FORMAT.md. With `dataKey` the commitment is computed per suite 1; otherwise `commitment`
 * (default zeros) is written as given.
 */
export function refSerializeHeader(fields: {
  version?: number;
  suite?: number;
  frameSize?: number;
  contextBytes?: Uint8Array;
  wrappedSection?: Uint8Array;
  wrappedKeys?: readonly RefWrappedKey[];
  salt?: Uint8Array;
  dataKey?: Uint8Array;
  commitment?: Uint8Array;
}): Uint8Array {
  const prefix = Buffer.alloc(8);
  prefix[0] = 0x4b;
  prefix[1] = 0x46;
  prefix[2] = fields.version ?? 1;
  prefix[3] = fields.suite ?? 1;
  prefix.writeUInt32BE(fields.frameSize ?? 0, 4);
  const wrapped =
    fields.wrappedSection ??
    refEncodeWrappedKeys(fields.wrappedKeys ?? [{ kind: 'test', keyId: 'x', keyVersion: '1', ciphertext: new Uint8Array(60) }]);
  const beforeCommitment = Buffer.concat([prefix, fields.contextBytes ?? new Uint8Array(2), wrapped, fields.salt ?? new Uint8Array(16)]);
  const commitment = fields.dataKey ? refCommitment(fields.dataKey, beforeCommitment) : (fields.commitment ?? new Uint8Array(32));
  return new Uint8Array(Buffer.concat([beforeCommitment, commitment]));
}

/** A straightforward parser of a well-formed header (no limits: tests only feed it envelopes they made). */
export function refParseHeader(bytes: Uint8Array): RefHeader {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (b[0] !== 0x4b || b[1] !== 0x46) throw new Error('reference parser: bad magic');
  let off = 8;
  const count = b.readUInt16BE(off);
  off += 2;
  const context: Record<string, string> = {};
  for (let i = 0; i < count; i++) {
    const kl = b.readUInt16BE(off);
    const k = fromUtf8.decode(b.subarray(off + 2, off + 2 + kl));
    off += 2 + kl;
    const vl = b.readUInt16BE(off);
    context[k] = fromUtf8.decode(b.subarray(off + 2, off + 2 + vl));
    off += 2 + vl;
  }
  const coreLength = off;
  const wrappedOffset = off;
  const n = b[off++]!;
  const wrappedKeys: RefWrappedKey[] = [];
  for (let i = 0; i < n; i++) {
    const kindLen = b[off++]!;
    const kind = b.subarray(off, off + kindLen).toString('utf8');
    off += kindLen;
    const idLen = b.readUInt16BE(off);
    const keyId = b.subarray(off + 2, off + 2 + idLen).toString('utf8');
    off += 2 + idLen;
    const vLen = b[off++]!;
    const keyVersion = b.subarray(off, off + vLen).toString('utf8');
    off += vLen;
    const ctLen = b.readUInt16BE(off);
    const ciphertext = new Uint8Array(b.subarray(off + 2, off + 2 + ctLen));
    off += 2 + ctLen;
    wrappedKeys.push({ kind, keyId, keyVersion, ciphertext });
  }
  const saltOffset = off;
  const salt = new Uint8Array(b.subarray(off, off + 16));
  off += 16;
  const commitmentOffset = off;
  const commitment = new Uint8Array(b.subarray(off, off + 32));
  off += 32;
  return {
    version: b[2]!,
    suite: b[3]!,
    frameSize: b.readUInt32BE(4),
    context,
    contextBytes: new Uint8Array(b.subarray(8, coreLength)),
    wrappedKeys,
    salt,
    commitment,
    coreLength,
    wrappedOffset,
    saltOffset,
    commitmentOffset,
    length: off,
  };
}

/** RFC 5869 HKDF-Expand with SHA-256 (any L), written out block by block. */
export function refHkdfExpand(prk: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  const blocks: Buffer[] = [];
  let prev = Buffer.alloc(0);
  for (let i = 1; blocks.length * 32 < length; i++) {
    prev = createHmac('sha256', prk).update(prev).update(info).update(Buffer.from([i])).digest();
    blocks.push(prev);
  }
  return new Uint8Array(Buffer.concat(blocks).subarray(0, length));
}

/** Suite 1 per-message key: HKDF-Expand-SHA-256(PRK = DK, info = "keyfold/v1/suite1/enc" || salt, L = 32). */
export function refMessageKey(dataKey: Uint8Array, salt: Uint8Array): Uint8Array {
  return refHkdfExpand(dataKey, Buffer.concat([Buffer.from('keyfold/v1/suite1/enc'), salt]), 32);
}

/** Suite 1 commitment: HMAC-SHA-256(DK, "keyfold/v1/suite1/commit" || header[0 .. start of commitment]). */
export function refCommitment(dataKey: Uint8Array, headerBeforeCommitment: Uint8Array): Uint8Array {
  return new Uint8Array(createHmac('sha256', dataKey).update('keyfold/v1/suite1/commit').update(headerBeforeCommitment).digest());
}

export function refNonce(index: number): Uint8Array {
  const iv = Buffer.alloc(12);
  iv.writeBigUInt64BE(BigInt(index), 4);
  return new Uint8Array(iv);
}

export function refFrameAad(core: Uint8Array, index: number, final: boolean, length: number): Uint8Array {
  const tail = Buffer.alloc(13);
  tail.writeBigUInt64BE(BigInt(index), 0);
  tail[8] = final ? 1 : 0;
  tail.writeUInt32BE(length, 9);
  return new Uint8Array(Buffer.concat([core, tail]));
}

/** Decrypts one frame with node:crypto; `undefined` when the tag does not verify. */
export function refOpenFrame(encKey: Uint8Array, core: Uint8Array, index: number, final: boolean, ct: Uint8Array, tag: Uint8Array): Buffer | undefined {
  const d = createDecipheriv('aes-256-gcm', encKey, refNonce(index), { authTagLength: 16 });
  d.setAAD(refFrameAad(core, index, final, ct.length));
  d.setAuthTag(tag);
  try {
    return Buffer.concat([d.update(ct), d.final()]);
  } catch {
    return undefined;
  }
}

/** Decrypts a whole envelope (single-shot or framed) with `dataKey` per FORMAT.md; `undefined` on any failure. */
export function refOpen(envelope: Uint8Array, dataKey: Uint8Array): Buffer | undefined {
  const h = refParseHeader(envelope);
  const encKey = refMessageKey(dataKey, h.salt);
  const core = envelope.subarray(0, h.coreLength);
  const body = envelope.subarray(h.length);
  if (h.frameSize === 0) {
    if (body.length < 16) return undefined;
    return refOpenFrame(encKey, core, 0, true, body.subarray(0, body.length - 16), body.subarray(body.length - 16));
  }
  const out: Buffer[] = [];
  let off = 0;
  for (let i = 0; off < body.length; i++) {
    const word = Buffer.from(body.subarray(off, off + 4)).readUInt32BE(0);
    const final = word >= 0x8000_0000;
    const len = word & 0x7fff_ffff;
    const pt = refOpenFrame(encKey, core, i, final, body.subarray(off + 4, off + 4 + len), body.subarray(off + 4 + len, off + 4 + len + 16));
    if (!pt) return undefined;
    out.push(pt);
    off += 4 + len + 16;
    if (final) return off === body.length ? Buffer.concat(out) : undefined;
  }
  return undefined;
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}
