/**
 * The per-file cryptography: value keys derived from the file data key, `ENC[kf1,...]` values sealed with
 * AES-256-GCM bound to their path, and the file MAC.
 * @module
 */
import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { DecryptFailedError, FormatError, fromBase64Url, gcmOpenWithIv, gcmSealWithRandomIv, toBase64Url, wipe } from '@keyfold/envelope-core';
import { IntegrityFailedError } from './errors.js';

/** A path into a file: object keys as strings, sequence indexes as numbers. */
export type SecretPath = readonly (string | number)[];

const SALT = Buffer.from('keyfold-secrets/v1', 'utf8');
const ENC_RE = /^ENC\[kf1,([A-Za-z0-9_-]+)\]$/;

/** True for text that is (or claims to be) an encrypted value: anything starting `ENC[`. */
export function isEncryptedValue(value: unknown): value is string {
  return typeof value === 'string' && value.startsWith('ENC[');
}

/** Keys derived from one file data key. Wipe with {@link wipeFileKeys}. */
export interface FileKeys {
  valueKey: Uint8Array;
  macKey: Uint8Array;
}

function derive(dataKey: Uint8Array, info: string): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', dataKey, SALT, Buffer.from(info, 'utf8'), 32));
}

/** Derives the value key and the MAC key (HKDF-SHA-256, distinct labels) so one key never serves two purposes. */
export function deriveFileKeys(dataKey: Uint8Array): FileKeys {
  return { valueKey: derive(dataKey, 'value key'), macKey: derive(dataKey, 'mac key') };
}

export function wipeFileKeys(keys: FileKeys): void {
  wipe(keys.valueKey);
  wipe(keys.macKey);
}

/** The AAD of a value: its path, JSON-encoded so that no two distinct paths share an encoding. */
function valueAad(path: SecretPath): Buffer {
  return Buffer.from(`keyfold-secrets/v1 value\0${JSON.stringify(path)}`, 'utf8');
}

/**
 * Seals `plaintext` (the value's source text) under the value key, bound to `path`: `iv(12) || ct || tag(16)` with
 * the core's checked AES-256-GCM (16-byte tags only).
 */
export function sealValue(keys: FileKeys, path: SecretPath, plaintext: string): string {
  const bytes = new TextEncoder().encode(plaintext);
  try {
    return `ENC[kf1,${toBase64Url(gcmSealWithRandomIv(keys.valueKey, bytes, valueAad(path)))}]`;
  } finally {
    wipe(bytes);
  }
}

/**
 * Opens an `ENC[kf1,...]` value sealed for `path`.
 * @throws DecryptFailedError for every failure (malformed, truncated, wrong key, wrong path).
 */
export function openValue(keys: FileKeys, path: SecretPath, value: string): string {
  const m = ENC_RE.exec(value);
  const sealed = m?.[1] === undefined ? undefined : fromBase64Url(m[1]);
  const out = sealed === undefined ? undefined : gcmOpenWithIv(keys.valueKey, sealed, valueAad(path));
  if (out === undefined) throw new DecryptFailedError();
  try {
    return Buffer.from(out.buffer, out.byteOffset, out.byteLength).toString('utf8');
  } finally {
    wipe(out);
  }
}

/** One entry the MAC covers: the path and the value's text as stored in the file (ciphertext or plaintext). */
export interface MacEntry {
  path: SecretPath;
  stored: string;
}

function lengthPrefixed(h: ReturnType<typeof createHmac>, text: string): void {
  const bytes = Buffer.from(text, 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32BE(bytes.length);
  h.update(len);
  h.update(bytes);
}

/**
 * HMAC-SHA-256 over the format version, the last-modified stamp and every (path, stored value) pair in file order,
 * each length-prefixed, then the entry count. Removing, adding, reordering or swapping any value changes it.
 */
export function computeMac(keys: FileKeys, lastModified: string, entries: readonly MacEntry[]): string {
  const h = createHmac('sha256', keys.macKey);
  lengthPrefixed(h, 'keyfold-secrets/v1 mac');
  lengthPrefixed(h, lastModified);
  for (const e of entries) {
    lengthPrefixed(h, JSON.stringify(e.path));
    lengthPrefixed(h, e.stored);
  }
  lengthPrefixed(h, String(entries.length));
  return toBase64Url(h.digest());
}

/**
 * Verifies `mac` in constant time.
 * @throws IntegrityFailedError when it does not match; FormatError when it is not a MAC at all.
 */
export function verifyMac(keys: FileKeys, mac: string, lastModified: string, entries: readonly MacEntry[]): void {
  const given = fromBase64Url(mac);
  if (given === undefined || given.length !== 32) throw new FormatError('the keyfold metadata has a malformed mac');
  const expected = fromBase64Url(computeMac(keys, lastModified, entries));
  if (expected === undefined || !timingSafeEqual(given, expected)) throw new IntegrityFailedError();
}
