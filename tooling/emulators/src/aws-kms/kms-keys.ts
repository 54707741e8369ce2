/**
 * The AWS KMS emulator's key store: keys, aliases, key material versions, and the real crypto behind them
 * (AES-256-GCM for symmetric keys, RSA-OAEP for RSA keys).
 *
 * Symmetric ciphertext blobs use this emulator's own format (real KMS blobs are opaque too):
 * `format(1) || key id (16) || material index (u16) || iv (12) || ciphertext || tag (16)`, with everything before
 * the iv plus the canonical encryption context as AAD. So the context must match exactly, and any modified byte fails.
 * @module
 */
import { createCipheriv, createDecipheriv, createHash, generateKeyPair, privateDecrypt, publicEncrypt, randomBytes, randomUUID, constants, type KeyObject } from 'node:crypto';
import { KmsError } from './kms-errors.js';

export type KeySpec = 'SYMMETRIC_DEFAULT' | 'RSA_2048' | 'RSA_3072' | 'RSA_4096';
export const KEY_SPECS: readonly KeySpec[] = ['SYMMETRIC_DEFAULT', 'RSA_2048', 'RSA_3072', 'RSA_4096'];
/**
 * Key states ("Key states of AWS KMS keys", AWS KMS Developer Guide, key-state.html): every key can be Enabled,
 * Disabled or PendingDeletion; PendingImport is a key with imported key material that has none (yet, or any more);
 * Unavailable is a key in a custom key store that is disconnected; Creating (a multi-Region replica being made) and
 * Updating (while UpdatePrimaryRegion completes) are transient states of multi-Region keys.
 */
export type KeyState = 'Enabled' | 'Disabled' | 'PendingDeletion' | 'PendingImport' | 'Unavailable' | 'Creating' | 'Updating';
export const KEY_STATES: readonly KeyState[] = ['Enabled', 'Disabled', 'PendingDeletion', 'PendingImport', 'Unavailable', 'Creating', 'Updating'];
export type EncryptionAlgorithm = 'SYMMETRIC_DEFAULT' | 'RSAES_OAEP_SHA_1' | 'RSAES_OAEP_SHA_256';

/** One version of a symmetric key's backing key. `id` is a KeyMaterialId: 64 hex characters, as in real KMS. */
export interface KeyMaterial {
  readonly id: string;
  readonly key: Buffer;
  readonly createdAt: number;
  readonly rotationType?: 'ON_DEMAND';
}

export interface KmsKey {
  readonly id: string;
  readonly arn: string;
  readonly spec: KeySpec;
  readonly multiRegion: boolean;
  readonly createdAt: number;
  description: string;
  state: KeyState;
  deletionDate?: number;
  pendingWindowInDays?: number;
  /** Symmetric keys: every material, oldest first; the last is current. */
  readonly materials: KeyMaterial[];
  /** RSA keys. */
  readonly rsa?: { readonly privateKey: KeyObject; readonly publicDer: Buffer; readonly modulusBytes: number };
}

export type EncryptionContextMap = Readonly<Record<string, string>>;

const FORMAT_SINGLE = 0x01;
const FORMAT_MRK = 0x02;
const HEADER = 1 + 16 + 2;
const IV = 12;
const TAG = 16;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const MRK = /^mrk-[0-9a-f]{32}$/;

/** Canonical AAD of an encryption context: entries sorted by key, as JSON. Exact strings, no normalisation. */
export function canonicalContext(ctx: EncryptionContextMap | undefined): Buffer {
  const entries = Object.entries(ctx ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return Buffer.from(JSON.stringify(entries), 'utf8');
}

function keyIdBytes(id: string): Buffer {
  return Buffer.from(id.startsWith('mrk-') ? id.slice(4) : id.replaceAll('-', ''), 'hex');
}

function keyIdFromBytes(format: number, raw: Buffer): string {
  const hex = raw.toString('hex');
  if (format === FORMAT_MRK) return `mrk-${hex}`;
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function newMaterial(rotationType?: 'ON_DEMAND'): KeyMaterial {
  const key = randomBytes(32);
  // A KeyMaterialId is an opaque 64-hex identifier; derive it from fresh randomness, never from the key itself.
  const id = createHash('sha256').update(randomBytes(32)).digest('hex');
  return { id, key, createdAt: Date.now(), ...(rotationType ? { rotationType } : {}) };
}

const RSA_BITS: Record<Exclude<KeySpec, 'SYMMETRIC_DEFAULT'>, number> = { RSA_2048: 2048, RSA_3072: 3072, RSA_4096: 4096 };

/** Keys and aliases of one emulated account in one region. */
export class KeyStore {
  readonly region: string;
  readonly accountId: string;
  readonly #keys = new Map<string, KmsKey>();
  readonly #aliases = new Map<string, string>();

  constructor(region: string, accountId: string) {
    this.region = region;
    this.accountId = accountId;
  }

  arnOf(id: string): string {
    return `arn:aws:kms:${this.region}:${this.accountId}:key/${id}`;
  }

  aliasArn(name: string): string {
    return `arn:aws:kms:${this.region}:${this.accountId}:${name}`;
  }

  async create(spec: KeySpec, options: { description?: string; multiRegion?: boolean } = {}): Promise<KmsKey> {
    const multiRegion = options.multiRegion === true;
    const id = multiRegion ? `mrk-${randomBytes(16).toString('hex')}` : randomUUID();
    let rsa: KmsKey['rsa'];
    if (spec !== 'SYMMETRIC_DEFAULT') {
      const bits = RSA_BITS[spec];
      const { privateKey, publicKey } = await new Promise<{ privateKey: KeyObject; publicKey: KeyObject }>((resolve, reject) =>
        generateKeyPair('rsa', { modulusLength: bits }, (err, publicKey, privateKey) => (err ? reject(err) : resolve({ publicKey, privateKey }))),
      );
      rsa = { privateKey, publicDer: publicKey.export({ format: 'der', type: 'spki' }), modulusBytes: bits / 8 };
    }
    const key: KmsKey = {
      id,
      arn: this.arnOf(id),
      spec,
      multiRegion,
      createdAt: Date.now(),
      description: options.description ?? '',
      state: 'Enabled',
      materials: spec === 'SYMMETRIC_DEFAULT' ? [newMaterial()] : [],
      ...(rsa ? { rsa } : {}),
    };
    this.#keys.set(id, key);
    return key;
  }

  createAlias(aliasName: string, target: KmsKey): void {
    if (!/^alias\/[a-zA-Z0-9/_-]{1,250}$/.test(aliasName) || aliasName.startsWith('alias/aws/')) {
      throw new KmsError('ValidationException', `Alias must start with the prefix "alias/" and use only a-zA-Z0-9/_-; got ${aliasName}`);
    }
    if (this.#aliases.has(aliasName)) throw new KmsError('AlreadyExistsException', `An alias with the name ${this.aliasArn(aliasName)} already exists`);
    this.#aliases.set(aliasName, target.id);
  }

  /**
   * Finds a key by key id, key ARN, alias name or alias ARN.
   * @throws KmsError NotFoundException.
   */
  resolve(keyId: string): KmsKey {
    let id: string | undefined;
    if (keyId.startsWith('alias/')) {
      id = this.#aliases.get(keyId);
      if (id === undefined) throw new KmsError('NotFoundException', `Alias ${this.aliasArn(keyId)} is not found.`);
    } else if (keyId.startsWith('arn:')) {
      const m = /^arn:aws:kms:([^:]+):(\d{12}):(key\/.+|alias\/.+)$/.exec(keyId);
      if (!m) throw new KmsError('NotFoundException', `Invalid arn ${keyId}`);
      const [, region, account, rest = ''] = m;
      if (region !== this.region || account !== this.accountId) throw new KmsError('NotFoundException', `Key '${keyId}' does not exist`);
      if (rest.startsWith('alias/')) {
        id = this.#aliases.get(rest);
        if (id === undefined) throw new KmsError('NotFoundException', `Alias ${keyId} is not found.`);
      } else {
        id = rest.slice('key/'.length);
      }
    } else if (UUID.test(keyId) || MRK.test(keyId)) {
      id = keyId;
    } else {
      throw new KmsError('NotFoundException', `Invalid keyId '${keyId}'`);
    }
    const key = this.#keys.get(id);
    if (!key) throw new KmsError('NotFoundException', `Key '${this.arnOf(id)}' does not exist`);
    return key;
  }

  /** Finds the key a symmetric blob names, without state checks. */
  keyOfBlob(blob: Buffer): KmsKey | undefined {
    if (blob.length < HEADER + IV + TAG) return undefined;
    const format = blob[0];
    if (format !== FORMAT_SINGLE && format !== FORMAT_MRK) return undefined;
    return this.#keys.get(keyIdFromBytes(format, blob.subarray(1, 17)));
  }
}

/** How KMS names a state in a KMSInvalidStateException message: `<arn> is pending deletion.` */
const STATE_WORDS: Readonly<Record<KeyState, string>> = {
  Enabled: 'enabled',
  Disabled: 'disabled',
  PendingDeletion: 'pending deletion',
  PendingImport: 'pending import',
  Unavailable: 'unavailable',
  Creating: 'creating',
  Updating: 'updating',
};

/** KMSInvalidStateException naming the key's state, the way KMS words it. */
export function invalidState(key: KmsKey): KmsError {
  return new KmsError('KMSInvalidStateException', `${key.arn} is ${STATE_WORDS[key.state]}.`);
}

/**
 * Refuses a cryptographic operation on a key whose state does not allow it, as the key state table says:
 * Disabled is DisabledException; PendingDeletion, PendingImport, Unavailable and Creating are
 * KMSInvalidStateException; Enabled and Updating ("you can use the keys in cryptographic operations",
 * multi-region-update.html) are usable.
 * @throws KmsError DisabledException / KMSInvalidStateException.
 */
export function assertUsable(key: KmsKey): void {
  if (key.state === 'Enabled' || key.state === 'Updating') return;
  if (key.state === 'Disabled') throw new KmsError('DisabledException', `${key.arn} is disabled.`);
  throw invalidState(key);
}

export function currentMaterial(key: KmsKey): KeyMaterial {
  const m = key.materials[key.materials.length - 1];
  if (!m) throw new KmsError('UnsupportedOperationException', `${key.arn} key usage is not supported for this operation`);
  return m;
}

/** Encrypts under the current material of a symmetric key. */
export function symmetricEncrypt(key: KmsKey, plaintext: Buffer, ctx: EncryptionContextMap | undefined): { blob: Buffer; material: KeyMaterial } {
  const index = key.materials.length - 1;
  const material = currentMaterial(key);
  const header = Buffer.alloc(HEADER);
  header[0] = key.multiRegion ? FORMAT_MRK : FORMAT_SINGLE;
  keyIdBytes(key.id).copy(header, 1);
  header.writeUInt16BE(index, 17);
  const iv = randomBytes(IV);
  const cipher = createCipheriv('aes-256-gcm', material.key, iv, { authTagLength: TAG });
  cipher.setAAD(Buffer.concat([header, canonicalContext(ctx)]));
  const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return { blob: Buffer.concat([header, iv, ct, cipher.getAuthTag()]), material };
}

/**
 * Decrypts a symmetric blob of `key`.
 * @throws KmsError InvalidCiphertextException for any malformed or inauthentic blob or a context mismatch.
 */
export function symmetricDecrypt(key: KmsKey, blob: Buffer, ctx: EncryptionContextMap | undefined): { plaintext: Buffer; material: KeyMaterial } {
  const invalid = (): KmsError => new KmsError('InvalidCiphertextException', '');
  if (blob.length < HEADER + IV + TAG) throw invalid();
  const index = blob.readUInt16BE(17);
  const material = key.materials[index];
  if (!material) throw invalid();
  const header = blob.subarray(0, HEADER);
  const iv = blob.subarray(HEADER, HEADER + IV);
  const ct = blob.subarray(HEADER + IV, blob.length - TAG);
  const tag = blob.subarray(blob.length - TAG);
  try {
    const decipher = createDecipheriv('aes-256-gcm', material.key, iv, { authTagLength: TAG });
    decipher.setAAD(Buffer.concat([header, canonicalContext(ctx)]));
    decipher.setAuthTag(tag);
    return { plaintext: Buffer.concat([decipher.update(ct), decipher.final()]), material };
  } catch {
    throw invalid();
  }
}

const OAEP_HASH: Record<string, string> = { RSAES_OAEP_SHA_1: 'sha1', RSAES_OAEP_SHA_256: 'sha256' };

/** RSA-OAEP limits: modulus bytes - 2 * hash bytes - 2. */
export function rsaMaxPlaintext(key: KmsKey, algorithm: EncryptionAlgorithm): number {
  const hashLen = algorithm === 'RSAES_OAEP_SHA_1' ? 20 : 32;
  return (key.rsa?.modulusBytes ?? 0) - 2 * hashLen - 2;
}

export function rsaEncrypt(key: KmsKey, plaintext: Buffer, algorithm: EncryptionAlgorithm): Buffer {
  if (!key.rsa) throw new KmsError('InvalidKeyUsageException', `${key.arn} is not an RSA key`);
  return publicEncrypt({ key: key.rsa.privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: OAEP_HASH[algorithm] ?? 'sha256' }, plaintext);
}

/** @throws KmsError InvalidCiphertextException for any failure of OAEP decoding. */
export function rsaDecrypt(key: KmsKey, ciphertext: Buffer, algorithm: EncryptionAlgorithm): Buffer {
  if (!key.rsa) throw new KmsError('InvalidKeyUsageException', `${key.arn} is not an RSA key`);
  if (ciphertext.length !== key.rsa.modulusBytes) throw new KmsError('InvalidCiphertextException', '');
  try {
    return privateDecrypt({ key: key.rsa.privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: OAEP_HASH[algorithm] ?? 'sha256' }, ciphertext);
  } catch {
    throw new KmsError('InvalidCiphertextException', '');
  }
}

/** Adds a new current material (RotateKeyOnDemand); older materials keep decrypting. */
export function rotate(key: KmsKey): KeyMaterial {
  const m = newMaterial('ON_DEMAND');
  key.materials.push(m);
  return m;
}
