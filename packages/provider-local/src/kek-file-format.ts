/**
 * The sealed KEK file format of the file provider: one JSON file, `keyring.json`, holding every KEK version of one
 * key id sealed under a key stretched from a passphrase.
 *
 * ```json
 * {
 *   "format": 1,
 *   "keyId": "file-3f9a2c1b",
 *   "kdf": { "name": "pbkdf2-sha256", "iterations": 600000, "salt": "<16 bytes, base64url>" },
 *   "check": "<passphrase check, base64url>",
 *   "active": "2",
 *   "versions": [{ "version": "1", "createdAt": "2025-01-01T00:00:00.000Z", "sealed": "<iv || ct || tag, base64url>" }],
 *   "mac": "<HMAC-SHA-256, base64url>"
 * }
 * ```
 *
 * Cryptography, and why:
 * - The passphrase (NFC-normalised UTF-8) is stretched once per KEK file, with the salt and parameters stored in the
 *   file: PBKDF2-HMAC-SHA-256 (600,000 iterations by default, the OWASP 2023 figure) or scrypt (N=2^17, r=8, p=1).
 *   One salt for the whole KEK file means opening it costs one stretch, however many versions it holds.
 * - HKDF-SHA-256 splits the stretched key into a sealing key and a MAC key, so no key serves two algorithms.
 * - Each KEK is sealed with AES-256-GCM (`localWrap`: fresh 96-bit IV, 128-bit tag) with AAD binding the format
 *   version, key id, KDF parameters and salt, version number and creation time: a sealed KEK copied into another
 *   version slot, another KEK file, or a file with weakened KDF parameters fails to open.
 * - An HMAC over every field (including `active` and the list of versions) detects a version removed, sealed KEKs
 *   swapped, or the active version changed by someone without the passphrase.
 * - `check`, an HMAC of the key id and KDF parameters under the MAC key, tells a wrong passphrase
 *   (WRONG_PASSPHRASE) from a modified file (INTEGRITY_FAILED). It gives a guesser nothing the sealed KEKs do not
 *   already give: each guess still costs one full stretch.
 * - Parsing is strict and bounded: unknown fields, out-of-range KDF parameters (a file cannot make us run a
 *   billion iterations or allocate gigabytes), malformed base64url and oversized files are refused before any
 *   key derivation.
 * @module
 */
import { hkdfSync, createHmac, pbkdf2, randomBytes, scrypt } from 'node:crypto';
import {
  FormatError,
  KeyfoldError,
  UnsupportedFormatError,
  constantTimeEqual,
  fromBase64Url,
  lengthPrefixed,
  localUnwrap,
  localWrap,
  toBase64Url,
  wipe,
} from '@keyfold/envelope-core';

/** The format version this build writes and reads. */
export const KEK_FILE_FORMAT = 1;
/**
 * Name of the KEK file inside the key directory (`keyring.json`: the on-disk name stays what existing
 * installations have).
 * @example
 * ```ts
 * const path = join(dir, KEK_FILE_NAME); // <dir>/keyring.json
 * ```
 */
export const KEK_FILE_NAME = 'keyring.json';
/** @deprecated The earlier name of {@link KEK_FILE_NAME}. */
export const KEYRING_FILE = KEK_FILE_NAME;
/** Files larger than this are refused before parsing. */
export const MAX_KEK_FILE_BYTES = 1024 * 1024;
/** At most this many versions in one KEK file. */
export const MAX_KEK_FILE_VERSIONS = 4096;

/**
 * PBKDF2 iterations used when none are given (OWASP 2023 recommendation for PBKDF2-HMAC-SHA-256).
 * @example
 * ```ts
 * await initKekFile({ dir, passphrase, kdf: { name: 'pbkdf2-sha256', iterations: DEFAULT_PBKDF2_ITERATIONS * 2 } });
 * ```
 */
export const DEFAULT_PBKDF2_ITERATIONS = 600_000;
/**
 * scrypt parameters used when none are given (128 MiB of memory per stretch).
 * @example
 * ```ts
 * await initKekFile({ dir, passphrase, kdf: { name: 'scrypt', ...DEFAULT_SCRYPT, N: 2 ** 18 } });
 * ```
 */
export const DEFAULT_SCRYPT = Object.freeze({ N: 2 ** 17, r: 8, p: 1 });

const PBKDF2_MIN = 1_000;
const PBKDF2_MAX = 10_000_000;
const SCRYPT_N_MIN = 2 ** 10;
const SCRYPT_N_MAX = 2 ** 20;
const SCRYPT_MAX_MEMORY = 1024 * 1024 * 1024;
const SALT_LENGTH = 16;
const SEALED_LENGTH = 12 + 32 + 16;
const MAC_LENGTH = 32;

/**
 * KDF choice for a new KEK file or a passphrase change. Omitted parameters take the defaults. Accepted ranges:
 * PBKDF2 iterations 1,000 to 10,000,000 (use the default 600,000 or more outside tests); scrypt N a power of two
 * from 2^10 to 2^20, r 1 to 32, p 1 to 16, at most 1 GiB of memory. Out of range is a RangeError.
 * @example
 * ```ts
 * const kdf: KdfOptions = { name: 'scrypt', N: 2 ** 17 };
 * ```
 */
export type KdfOptions =
  | { readonly name: 'pbkdf2-sha256'; readonly iterations?: number }
  | { readonly name: 'scrypt'; readonly N?: number; readonly r?: number; readonly p?: number };

/**
 * The KDF parameters of a KEK file, without the salt (what `describe()` and the admin functions report).
 * @example
 * ```ts
 * const kdf: KdfDescription = (await initKekFile({ dir, passphrase })).kdf; // { name: 'pbkdf2-sha256', iterations: 600000 }
 * ```
 */
export type KdfDescription =
  | { readonly name: 'pbkdf2-sha256'; readonly iterations: number }
  | { readonly name: 'scrypt'; readonly N: number; readonly r: number; readonly p: number };

/** KDF parameters as stored: the description plus the salt (base64url). */
export type KdfParams = KdfDescription & { readonly salt: string };

/** One sealed version as stored. */
export interface KekFileEntry {
  readonly version: string;
  readonly createdAt: string;
  /** `iv || ciphertext || tag` of the 32-byte KEK, base64url. */
  readonly sealed: string;
}

/** The parsed KEK file. */
export interface KekFileDocument {
  readonly format: typeof KEK_FILE_FORMAT;
  readonly keyId: string;
  readonly kdf: KdfParams;
  /** Passphrase check: HMAC-SHA-256 of the key id and KDF parameters under the MAC key. */
  readonly check: string;
  readonly active: string;
  /** Oldest first. */
  readonly versions: readonly KekFileEntry[];
  readonly mac: string;
}

/** The keys stretched from the passphrase. Wipe with {@link wipeKekFileKeys}. */
export interface KekFileKeys {
  readonly sealKey: Uint8Array;
  readonly macKey: Uint8Array;
}

const VERSION = /^[1-9][0-9]{0,8}$/;
const KEY_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/;
const CREATED_AT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z$/;

/**
 * Validates KDF options and fills in defaults.
 * @throws TypeError / RangeError for an unknown name or parameters out of range.
 */
export function resolveKdfOptions(options: KdfOptions | undefined): KdfDescription {
  if (options === undefined) return { name: 'pbkdf2-sha256', iterations: DEFAULT_PBKDF2_ITERATIONS };
  if (options === null || typeof options !== 'object') throw new TypeError('kdf must be an object');
  if (options.name === 'pbkdf2-sha256') {
    const iterations = options.iterations ?? DEFAULT_PBKDF2_ITERATIONS;
    const problem = pbkdf2Problem(iterations);
    if (problem) throw new RangeError(`kdf.${problem}`);
    return { name: 'pbkdf2-sha256', iterations };
  }
  if (options.name === 'scrypt') {
    const params = { N: options.N ?? DEFAULT_SCRYPT.N, r: options.r ?? DEFAULT_SCRYPT.r, p: options.p ?? DEFAULT_SCRYPT.p };
    const problem = scryptProblem(params.N, params.r, params.p);
    if (problem) throw new RangeError(`kdf.${problem}`);
    return { name: 'scrypt', ...params };
  }
  throw new TypeError(`kdf.name must be "pbkdf2-sha256" or "scrypt"; got ${JSON.stringify((options as { name?: unknown }).name)}`);
}

function pbkdf2Problem(iterations: unknown): string | undefined {
  if (!Number.isInteger(iterations) || (iterations as number) < PBKDF2_MIN || (iterations as number) > PBKDF2_MAX) {
    return `iterations must be an integer from ${PBKDF2_MIN} to ${PBKDF2_MAX}`;
  }
  return undefined;
}

function scryptProblem(N: unknown, r: unknown, p: unknown): string | undefined {
  if (!Number.isInteger(N) || (N as number) < SCRYPT_N_MIN || (N as number) > SCRYPT_N_MAX || ((N as number) & ((N as number) - 1)) !== 0) {
    return `N must be a power of two from 2^10 to 2^20`;
  }
  if (!Number.isInteger(r) || (r as number) < 1 || (r as number) > 32) return 'r must be an integer from 1 to 32';
  if (!Number.isInteger(p) || (p as number) < 1 || (p as number) > 16) return 'p must be an integer from 1 to 16';
  if (128 * (N as number) * (r as number) > SCRYPT_MAX_MEMORY) return 'N * r needs more than 1 GiB of memory (128 * N * r bytes)';
  return undefined;
}

/** New KDF parameters: the description plus a fresh random salt. */
export function newKdfParams(description: KdfDescription): KdfParams {
  return { ...description, salt: toBase64Url(new Uint8Array(randomBytes(SALT_LENGTH))) };
}

/** The description part of stored parameters (no salt). */
export function describeKdf(kdf: KdfParams): KdfDescription {
  return kdf.name === 'pbkdf2-sha256'
    ? { name: kdf.name, iterations: kdf.iterations }
    : { name: kdf.name, N: kdf.N, r: kdf.r, p: kdf.p };
}

/** One unambiguous string for the KDF parameters, bound into every AAD and the MAC. */
function canonicalKdf(kdf: KdfParams): string {
  return kdf.name === 'pbkdf2-sha256'
    ? `pbkdf2-sha256;iterations=${kdf.iterations};salt=${kdf.salt}`
    : `scrypt;N=${kdf.N};r=${kdf.r};p=${kdf.p};salt=${kdf.salt}`;
}

/** Same KDF parameters and salt (so the same passphrase gives the same keys). */
export function sameKdf(a: KdfParams, b: KdfParams): boolean {
  return canonicalKdf(a) === canonicalKdf(b);
}

const KEK_LABEL = 'keyfold/file-keyring/v1 kek';
const MAC_LABEL = 'keyfold/file-keyring/v1 mac';
const CHECK_LABEL = 'keyfold/file-keyring/v1 check';
const SEAL_INFO = new TextEncoder().encode('keyfold/file-keyring/v1 seal key');
const MAC_INFO = new TextEncoder().encode('keyfold/file-keyring/v1 mac key');

function kekAad(keyId: string, kdf: KdfParams, version: string, createdAt: string): Uint8Array {
  return lengthPrefixed([KEK_LABEL, String(KEK_FILE_FORMAT), keyId, canonicalKdf(kdf), version, createdAt]);
}

function stretch(passphrase: Uint8Array, kdf: KdfParams): Promise<Uint8Array> {
  const salt = fromBase64Url(kdf.salt);
  if (!salt) return Promise.reject(new FormatError('the KEK file salt is not base64url'));
  return new Promise((resolve, reject) => {
    const done = (err: Error | null, out: Buffer): void => {
      if (err) {
        reject(new KeyfoldError('INTERNAL', `stretching the passphrase with ${kdf.name} failed`, { cause: err }));
        return;
      }
      const key = new Uint8Array(out.length);
      key.set(out);
      out.fill(0);
      resolve(key);
    };
    if (kdf.name === 'pbkdf2-sha256') {
      pbkdf2(passphrase, salt, kdf.iterations, 32, 'sha256', done);
    } else {
      scrypt(passphrase, salt, 32, { N: kdf.N, r: kdf.r, p: kdf.p, maxmem: 128 * kdf.N * kdf.r + 128 * kdf.r * kdf.p + 1024 * 1024 }, done);
    }
  });
}

function hkdf32(ikm: Uint8Array, info: Uint8Array): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', ikm, new Uint8Array(0), info, 32));
}

/**
 * Stretches `passphrase` with the KEK file's KDF (the one expensive step) and derives the sealing and MAC keys.
 * The caller wipes `passphrase`; the stretched intermediate is wiped here.
 */
export async function deriveKekFileKeys(passphrase: Uint8Array, kdf: KdfParams): Promise<KekFileKeys> {
  const stretched = await stretch(passphrase, kdf);
  try {
    return { sealKey: hkdf32(stretched, SEAL_INFO), macKey: hkdf32(stretched, MAC_INFO) };
  } finally {
    wipe(stretched);
  }
}

/** Wipes both keys. */
export function wipeKekFileKeys(keys: KekFileKeys | undefined): void {
  if (!keys) return;
  wipe(keys.sealKey);
  wipe(keys.macKey);
}

/** Seals one KEK version. */
export function sealKek(keys: KekFileKeys, keyId: string, kdf: KdfParams, version: string, createdAt: string, kek: Uint8Array): KekFileEntry {
  const sealed = localWrap(keys.sealKey, kek, kekAad(keyId, kdf, version, createdAt));
  return { version, createdAt, sealed: toBase64Url(sealed) };
}

function hmac(key: Uint8Array, parts: ReadonlyArray<string | Uint8Array>): Uint8Array {
  const h = createHmac('sha256', key);
  h.update(lengthPrefixed(parts));
  return new Uint8Array(h.digest());
}

function checkOf(keys: KekFileKeys, keyId: string, kdf: KdfParams): Uint8Array {
  return hmac(keys.macKey, [CHECK_LABEL, String(KEK_FILE_FORMAT), keyId, canonicalKdf(kdf)]);
}

function macOf(keys: KekFileKeys, doc: Omit<KekFileDocument, 'mac'>): Uint8Array {
  const parts: Array<string | Uint8Array> = [
    MAC_LABEL,
    String(doc.format),
    doc.keyId,
    canonicalKdf(doc.kdf),
    doc.check,
    doc.active,
    String(doc.versions.length),
  ];
  for (const v of doc.versions) parts.push(v.version, v.createdAt, v.sealed);
  return hmac(keys.macKey, parts);
}

/** Builds a complete document (versions sorted, check and MAC computed) from its parts. */
export function finishKekFile(keys: KekFileKeys, parts: Omit<KekFileDocument, 'mac' | 'format' | 'check'>): KekFileDocument {
  const versions = [...parts.versions].sort((a, b) => Number(a.version) - Number(b.version));
  const check = toBase64Url(checkOf(keys, parts.keyId, parts.kdf));
  const body = { format: KEK_FILE_FORMAT, keyId: parts.keyId, kdf: parts.kdf, check, active: parts.active, versions } as const;
  return { ...body, mac: toBase64Url(macOf(keys, body)) };
}

/**
 * Verifies the KEK file and opens every version.
 * @returns the KEKs by version; the caller owns (and wipes) them.
 * @throws KeyfoldError `WRONG_PASSPHRASE` when the passphrase check fails, `INTEGRITY_FAILED` when the passphrase
 *   is right but the MAC or a sealed version fails (the file was modified).
 */
export function openKekFile(keys: KekFileKeys, doc: KekFileDocument, path: string): Map<string, Uint8Array> {
  if (!constantTimeEqual(checkOf(keys, doc.keyId, doc.kdf), fromBase64Url(doc.check) ?? new Uint8Array(0))) {
    throw new KeyfoldError('WRONG_PASSPHRASE', `the passphrase does not open ${path}`);
  }
  const macOk = constantTimeEqual(macOf(keys, doc), fromBase64Url(doc.mac) ?? new Uint8Array(0));
  const keks = new Map<string, Uint8Array>();
  let failed = 0;
  for (const v of doc.versions) {
    const sealed = fromBase64Url(v.sealed);
    const kek = sealed && localUnwrap(keys.sealKey, sealed, kekAad(doc.keyId, doc.kdf, v.version, v.createdAt));
    if (kek) keks.set(v.version, kek);
    else failed++;
  }
  if (macOk && failed === 0) return keks;
  for (const kek of keks.values()) wipe(kek);
  throw new KeyfoldError(
    'INTEGRITY_FAILED',
    `${path} has been modified or damaged: its authentication code does not match its contents; restore it from a backup`,
  );
}

/** The next version number: one more than the highest. */
export function nextVersion(doc: KekFileDocument): string {
  let max = 0;
  for (const v of doc.versions) max = Math.max(max, Number(v.version));
  if (max >= 999_999_999) throw new RangeError('the KEK file has reached the highest version number');
  return String(max + 1);
}

/** Serialises a document as stable, pretty JSON with a trailing newline. */
export function serializeKekFile(doc: KekFileDocument): string {
  const kdf =
    doc.kdf.name === 'pbkdf2-sha256'
      ? { name: doc.kdf.name, iterations: doc.kdf.iterations, salt: doc.kdf.salt }
      : { name: doc.kdf.name, N: doc.kdf.N, r: doc.kdf.r, p: doc.kdf.p, salt: doc.kdf.salt };
  const ordered = {
    format: doc.format,
    keyId: doc.keyId,
    kdf,
    check: doc.check,
    active: doc.active,
    versions: doc.versions.map((v) => ({ version: v.version, createdAt: v.createdAt, sealed: v.sealed })),
    mac: doc.mac,
  };
  return `${JSON.stringify(ordered, null, 2)}\n`;
}

function bad(path: string, problem: string): never {
  throw new FormatError(`${path} is not a valid KEK file: ${problem}`);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function exactKeys(obj: Record<string, unknown>, keys: readonly string[], path: string, where: string): void {
  for (const k of Object.keys(obj)) if (!keys.includes(k)) bad(path, `${where} has an unknown field ${JSON.stringify(k)}`);
  for (const k of keys) if (!Object.prototype.hasOwnProperty.call(obj, k)) bad(path, `${where} lacks the field "${k}"`);
}

function base64Field(value: unknown, length: number, path: string, where: string): string {
  if (typeof value !== 'string') bad(path, `${where} must be a string`);
  const bytes = fromBase64Url(value);
  if (!bytes || bytes.length !== length) bad(path, `${where} must be ${length} bytes of base64url`);
  return value;
}

function parseKdf(value: unknown, path: string): KdfParams {
  if (!isRecord(value)) bad(path, 'kdf must be an object');
  if (value.name === 'pbkdf2-sha256') {
    exactKeys(value, ['name', 'iterations', 'salt'], path, 'kdf');
    const problem = pbkdf2Problem(value.iterations);
    if (problem) bad(path, `kdf.${problem}`);
    return { name: 'pbkdf2-sha256', iterations: value.iterations as number, salt: base64Field(value.salt, SALT_LENGTH, path, 'kdf.salt') };
  }
  if (value.name === 'scrypt') {
    exactKeys(value, ['name', 'N', 'r', 'p', 'salt'], path, 'kdf');
    const problem = scryptProblem(value.N, value.r, value.p);
    if (problem) bad(path, `kdf.${problem}`);
    return {
      name: 'scrypt',
      N: value.N as number,
      r: value.r as number,
      p: value.p as number,
      salt: base64Field(value.salt, SALT_LENGTH, path, 'kdf.salt'),
    };
  }
  return bad(path, 'kdf.name must be "pbkdf2-sha256" or "scrypt"');
}

/**
 * Parses and validates KEK file JSON (structure only: the passphrase check is {@link openKekFile}).
 * @throws FormatError (`FORMAT_INVALID`) for anything malformed; UnsupportedFormatError (`FORMAT_UNSUPPORTED`) for
 *   a format version this build does not know.
 */
export function parseKekFile(text: string, path: string): KekFileDocument {
  if (text.length > MAX_KEK_FILE_BYTES) bad(path, `it is larger than ${MAX_KEK_FILE_BYTES} bytes`);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (cause) {
    throw new FormatError(`${path} is not a valid KEK file: it is not JSON`, { cause });
  }
  if (!isRecord(raw)) bad(path, 'the top level must be an object');
  if (typeof raw.format === 'number' && raw.format !== KEK_FILE_FORMAT && Number.isInteger(raw.format) && raw.format > 0) {
    throw new UnsupportedFormatError(
      `${path} has KEK file format ${raw.format}; this version of @keyfold/provider-local reads format ${KEK_FILE_FORMAT} (upgrade it)`,
    );
  }
  exactKeys(raw, ['format', 'keyId', 'kdf', 'check', 'active', 'versions', 'mac'], path, 'the KEK file');
  if (raw.format !== KEK_FILE_FORMAT) bad(path, `format must be ${KEK_FILE_FORMAT}`);
  if (typeof raw.keyId !== 'string' || !KEY_ID.test(raw.keyId)) bad(path, 'keyId must be 1-64 characters of A-Z a-z 0-9 . _ : -');
  const kdf = parseKdf(raw.kdf, path);
  if (!Array.isArray(raw.versions) || raw.versions.length === 0) bad(path, 'versions must be a non-empty array');
  if (raw.versions.length > MAX_KEK_FILE_VERSIONS) bad(path, `it holds more than ${MAX_KEK_FILE_VERSIONS} versions`);
  const seen = new Set<string>();
  const versions: KekFileEntry[] = [];
  (raw.versions as unknown[]).forEach((entry, i) => {
    const where = `versions[${i}]`;
    if (!isRecord(entry)) bad(path, `${where} must be an object`);
    exactKeys(entry, ['version', 'createdAt', 'sealed'], path, where);
    const { version, createdAt } = entry;
    if (typeof version !== 'string' || !VERSION.test(version)) bad(path, `${where}.version must be a version number like "1"`);
    if (seen.has(version)) bad(path, `version ${version} appears twice`);
    seen.add(version);
    if (typeof createdAt !== 'string' || !CREATED_AT.test(createdAt) || Number.isNaN(Date.parse(createdAt))) {
      bad(path, `${where}.createdAt must be an ISO 8601 UTC time`);
    }
    versions.push({ version, createdAt, sealed: base64Field(entry.sealed, SEALED_LENGTH, path, `${where}.sealed`) });
  });
  if (typeof raw.active !== 'string' || !seen.has(raw.active)) bad(path, 'active must name one of the versions');
  const check = base64Field(raw.check, MAC_LENGTH, path, 'check');
  const mac = base64Field(raw.mac, MAC_LENGTH, path, 'mac');
  versions.sort((a, b) => Number(a.version) - Number(b.version));
  return { format: KEK_FILE_FORMAT, keyId: raw.keyId, kdf, check, active: raw.active, versions, mac };
}
