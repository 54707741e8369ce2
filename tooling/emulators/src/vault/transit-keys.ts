/**
 * The Vault transit emulator's keys and crypto: `aes256-gcm96` keys with versions, optional key derivation from a
 * per-request context, `min_decryption_version` / `min_encryption_version`, and `vault:vN:` ciphertexts
 * (`base64(nonce(12) || ciphertext || tag(16))`, as Vault writes them).
 * @module
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

/** A user error: Vault answers it with 400 and `{"errors": [message]}`. */
export class TransitError extends Error {
  readonly status: number;
  constructor(message: string, status = 400) {
    super(message);
    this.name = 'TransitError';
    this.status = status;
  }
}

export interface TransitKey {
  readonly name: string;
  readonly type: 'aes256-gcm96';
  readonly derived: boolean;
  readonly versions: Map<number, { readonly key: Buffer; readonly createdAt: number }>;
  latest: number;
  minDecryptionVersion: number;
  /** 0 means "the latest". */
  minEncryptionVersion: number;
  deletionAllowed: boolean;
}

const NONCE = 12;
const TAG = 16;
const B64 = /^[A-Za-z0-9+/]*={0,2}$/;

export function decodeB64(value: unknown, what: string): Buffer {
  if (typeof value !== 'string' || !B64.test(value) || value.length % 4 !== 0) throw new TransitError(`failed to base64-decode ${what}`);
  return Buffer.from(value, 'base64');
}

export function newKey(name: string, derived: boolean, now: number): TransitKey {
  return {
    name,
    type: 'aes256-gcm96',
    derived,
    versions: new Map([[1, { key: randomBytes(32), createdAt: now }]]),
    latest: 1,
    minDecryptionVersion: 1,
    minEncryptionVersion: 0,
    deletionAllowed: false,
  };
}

export function rotateKey(key: TransitKey, now: number): void {
  key.latest += 1;
  key.versions.set(key.latest, { key: randomBytes(32), createdAt: now });
}

function versionKey(key: TransitKey, version: number, context: Buffer | undefined): Buffer {
  const v = key.versions.get(version);
  if (!v) throw new TransitError('invalid key version');
  if (!key.derived) return v.key;
  if (!context || context.length === 0) {
    throw new TransitError(
      "missing 'context' for key derivation; the key was created using a derived key, which means additional, per-request information must be included in order to perform operations with the key",
    );
  }
  return Buffer.from(hkdfSync('sha256', v.key, Buffer.alloc(0), context, 32));
}

/** The version an encrypt uses: `requested` (0 = latest), checked against min_encryption_version. */
export function encryptionVersion(key: TransitKey, requested: number): number {
  if (requested === 0) return key.latest;
  if (requested < 0 || requested > key.latest) throw new TransitError('cannot encrypt with a key version greater than the latest');
  if (key.minEncryptionVersion > 0 && requested < key.minEncryptionVersion) {
    throw new TransitError('requested version for encryption is less than the minimum encryption key version');
  }
  return requested;
}

export function encrypt(key: TransitKey, version: number, plaintext: Buffer, context: Buffer | undefined, aad: Buffer | undefined): string {
  const k = versionKey(key, version, context);
  const nonce = randomBytes(NONCE);
  const cipher = createCipheriv('aes-256-gcm', k, nonce, { authTagLength: TAG });
  if (aad && aad.length > 0) cipher.setAAD(aad);
  const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return `vault:v${version}:${Buffer.concat([nonce, ct, cipher.getAuthTag()]).toString('base64')}`;
}

/** Parses `vault:vN:<base64>`; the errors are Vault's. */
export function parseCiphertext(ciphertext: unknown): { version: number; body: Buffer } {
  if (typeof ciphertext !== 'string' || ciphertext.length === 0) throw new TransitError('missing ciphertext to decrypt');
  if (!ciphertext.startsWith('vault:')) throw new TransitError('invalid ciphertext: no prefix');
  const rest = ciphertext.slice('vault:'.length);
  const colon = rest.indexOf(':');
  if (colon < 0 || !rest.startsWith('v')) throw new TransitError('invalid ciphertext: wrong number of fields');
  const digits = rest.slice(1, colon);
  if (!/^\d+$/.test(digits)) throw new TransitError('invalid ciphertext: version number could not be decoded');
  const version = Number.parseInt(digits, 10);
  const encoded = rest.slice(colon + 1);
  if (!B64.test(encoded) || encoded.length % 4 !== 0) throw new TransitError('invalid ciphertext: could not decode base64');
  return { version, body: Buffer.from(encoded, 'base64') };
}

export function decrypt(key: TransitKey, ciphertext: unknown, context: Buffer | undefined, aad: Buffer | undefined): { plaintext: Buffer; version: number } {
  const { version, body } = parseCiphertext(ciphertext);
  if (version < key.minDecryptionVersion) throw new TransitError('ciphertext or signature version is disallowed by policy (too old)');
  const k = versionKey(key, version, context);
  if (body.length < NONCE + TAG) throw new TransitError('invalid ciphertext: unable to decrypt');
  try {
    const decipher = createDecipheriv('aes-256-gcm', k, body.subarray(0, NONCE), { authTagLength: TAG });
    if (aad && aad.length > 0) decipher.setAAD(aad);
    decipher.setAuthTag(body.subarray(body.length - TAG));
    return { plaintext: Buffer.concat([decipher.update(body.subarray(NONCE, body.length - TAG)), decipher.final()]), version };
  } catch {
    throw new TransitError('cipher: message authentication failed');
  }
}

/** The `data` of a key read, as Vault returns it. */
export function keyInfo(key: TransitKey): Record<string, unknown> {
  const keys: Record<string, number> = {};
  for (const [v, { createdAt }] of key.versions) keys[String(v)] = Math.floor(createdAt / 1000);
  return {
    name: key.name,
    type: key.type,
    derived: key.derived,
    ...(key.derived ? { kdf: 'hkdf_sha256' } : {}),
    exportable: false,
    allow_plaintext_backup: false,
    deletion_allowed: key.deletionAllowed,
    keys,
    latest_version: key.latest,
    min_available_version: 0,
    min_decryption_version: key.minDecryptionVersion,
    min_encryption_version: key.minEncryptionVersion,
    supports_encryption: true,
    supports_decryption: true,
    supports_derivation: true,
    supports_signing: false,
    convergent_encryption: false,
    imported_key: false,
    auto_rotate_period: 0,
  };
}
