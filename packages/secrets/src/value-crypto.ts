/**
 * The per-file cryptography: value keys derived from the file data key, `ENC[kf1,...]` values sealed with
 * AES-256-GCM bound to their path, and the file MAC.
 * @module
 */
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { DecryptFailedError, FormatError, fromBase64Url, toBase64Url, wipe } from '@keyfold/envelope-core';
import { IntegrityFailedError } from './errors.js';

/** A path into a file: object keys as strings, sequence indexes as numbers. */
export type SecretPath = readonly (string | number)[];

const SALT = Buffer.from('keyfold-secrets/v1', 'utf8');
const IV_LENGTH = 12;
const TAG_LENGTH = 16;
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

/** Seals `plaintext` (the value's source text) under the value key, bound to `path`. */
export function sealValue(keys: FileKeys, path: SecretPath, plaintext: string): string {
  const iv = randomBytes(IV_LENGTH);
  const cipher = createCipheriv('aes-256-gcm', keys.valueKey, iv);
  cipher.setAAD(valueAad(path));
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  const sealed = Buffer.concat([iv, body, cipher.getAuthTag()]);
  return `ENC[kf1,${toBase64Url(sealed)}]`;
}

/**
 * Opens an `ENC[kf1,...]` value sealed for `path`.
 * @throws DecryptFailedError for every failure (malformed, truncated, wrong key, wrong path).
 */
export function openValue(keys: FileKeys, path: SecretPath, value: string): string {
  const m = ENC_RE.exec(value);
  const sealed = m?.[1] === undefined ? undefined : fromBase64Url(m[1]);
  if (sealed === undefined || sealed.length < IV_LENGTH + TAG_LENGTH) throw new DecryptFailedError();
  try {
    const decipher = createDecipheriv('aes-256-gcm', keys.valueKey, sealed.subarray(0, IV_LENGTH));
    decipher.setAAD(valueAad(path));
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_LENGTH));
    const out = Buffer.concat([decipher.update(sealed.subarray(IV_LENGTH, sealed.length - TAG_LENGTH)), decipher.final()]);
    return out.toString('utf8');
  } catch (cause) {
    throw new DecryptFailedError({ cause });
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
