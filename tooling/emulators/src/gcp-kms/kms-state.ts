/**
 * The Cloud KMS model behind both transports of the emulator: key rings, ENCRYPT_DECRYPT crypto keys with numbered
 * versions, a primary, version states, and Encrypt / Decrypt with real AES-256-GCM (node:crypto). Operations take
 * and return transport-neutral values (Buffers, checksums as numbers, enum names, Dates); the gRPC and REST layers
 * convert. Errors are {@link KmsError}s with a gRPC status code and the service's wording where it matters
 * (checksum mismatches, "Decryption failed", "is not enabled, current state is: ...").
 *
 * Ciphertext layout (the emulator's own: real Cloud KMS ciphertexts are opaque):
 * `u32 version id || 12-byte IV || AES-256-GCM(ciphertext) || 16-byte tag`, with the GCM AAD
 * `key name || 0x00 || u32 version id || additional authenticated data`, so AAD, key and version are all bound.
 * @module
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { crc32c } from './crc32c.js';

/** gRPC status codes (google.rpc.Code). */
export const Code = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

/** The status name of a code (`NOT_FOUND`), as REST error bodies carry it. */
export function codeName(code: number): string {
  for (const [name, value] of Object.entries(Code)) if (value === code) return name;
  return 'UNKNOWN';
}

/** An error the emulated service answers with. */
export class KmsError extends Error {
  constructor(
    readonly code: number,
    message: string,
    /** Seconds the client is asked to wait before retrying (sent as a google.rpc.RetryInfo detail), if any. */
    readonly retryDelaySeconds?: number,
  ) {
    super(message);
    this.name = 'KmsError';
  }
}

export type VersionState = 'ENABLED' | 'DISABLED' | 'DESTROYED' | 'DESTROY_SCHEDULED';
export type ProtectionLevel = 'SOFTWARE' | 'HSM';
const ALGORITHM = 'GOOGLE_SYMMETRIC_ENCRYPTION';
/**
 * Size limits of Encrypt / Decrypt by the key version's protection level (Cloud KMS reference, EncryptRequest and
 * DecryptRequest, fields `plaintext` and `additional_authenticated_data`): SOFTWARE keys take up to 64 KiB of
 * plaintext and 64 KiB of AAD; for HSM keys the plaintext and the AAD together may be at most 8 KiB.
 */
const MAX_DATA = 65_536;
const MAX_HSM_DATA = 8192;
const ID = /^[a-zA-Z0-9_-]{1,63}$/;
const LOCATION = /^projects\/([^/]+)\/locations\/([^/]+)$/;
const RING = /^projects\/[^/]+\/locations\/[^/]+\/keyRings\/[^/]+$/;
const KEY = /^projects\/[^/]+\/locations\/[^/]+\/keyRings\/[^/]+\/cryptoKeys\/[^/]+$/;
const VERSION = /^(projects\/[^/]+\/locations\/[^/]+\/keyRings\/[^/]+\/cryptoKeys\/[^/]+)\/cryptoKeyVersions\/([1-9][0-9]*)$/;

/** Refuses plaintext + AAD over 8 KiB on an HSM key, as Cloud KMS does (INVALID_ARGUMENT). */
function checkHsmSize(level: ProtectionLevel, plaintextLength: number, aadLength: number): void {
  if (level === 'HSM' && plaintextLength + aadLength > MAX_HSM_DATA) {
    throw new KmsError(
      Code.INVALID_ARGUMENT,
      `The combined length of the plaintext and additional_authenticated_data is ${plaintextLength + aadLength} bytes; for a key with protection level HSM it must be no larger than ${MAX_HSM_DATA} bytes.`,
    );
  }
}

interface Version {
  readonly id: number;
  readonly name: string;
  state: VersionState;
  readonly material: Buffer;
  readonly createTime: Date;
  destroyTime: Date | undefined;
}

interface Key {
  readonly name: string;
  readonly purpose: string;
  readonly protectionLevel: ProtectionLevel;
  readonly createTime: Date;
  readonly versions: Map<number, Version>;
  primaryId: number | undefined;
  nextId: number;
}

/** A CryptoKeyVersion as the emulator returns it. */
export interface VersionView {
  name: string;
  state: VersionState;
  protectionLevel: ProtectionLevel;
  algorithm: string;
  createTime: Date;
  generateTime: Date;
  destroyTime?: Date;
}

/** A CryptoKey as the emulator returns it. */
export interface KeyView {
  name: string;
  purpose: string;
  createTime: Date;
  primary?: VersionView;
  versionTemplate: { protectionLevel: ProtectionLevel; algorithm: string };
}

export interface EncryptInput {
  name: string;
  plaintext: Buffer;
  additionalAuthenticatedData: Buffer;
  plaintextCrc32c: number | undefined;
  additionalAuthenticatedDataCrc32c: number | undefined;
}

export interface EncryptOutput {
  name: string;
  ciphertext: Buffer;
  ciphertextCrc32c: number;
  verifiedPlaintextCrc32c: boolean;
  verifiedAdditionalAuthenticatedDataCrc32c: boolean;
  protectionLevel: ProtectionLevel;
}

export interface DecryptInput {
  name: string;
  ciphertext: Buffer;
  additionalAuthenticatedData: Buffer;
  ciphertextCrc32c: number | undefined;
  additionalAuthenticatedDataCrc32c: number | undefined;
}

export interface DecryptOutput {
  plaintext: Buffer;
  plaintextCrc32c: number;
  usedPrimary: boolean;
  protectionLevel: ProtectionLevel;
}

function checksumMismatch(field: string, data: string): KmsError {
  return new KmsError(Code.INVALID_ARGUMENT, `The checksum in field ${field} did not match the data in field ${data}.`);
}

/** The key rings and keys of one emulator. */
export class KmsState {
  readonly #rings = new Map<string, Date>();
  readonly #keys = new Map<string, Key>();

  createKeyRing(parent: string, keyRingId: string): { name: string; createTime: Date } {
    if (!LOCATION.test(parent)) throw new KmsError(Code.INVALID_ARGUMENT, `invalid parent ${parent}`);
    if (!ID.test(keyRingId)) throw new KmsError(Code.INVALID_ARGUMENT, `invalid keyRingId ${keyRingId}`);
    const name = `${parent}/keyRings/${keyRingId}`;
    if (this.#rings.has(name)) throw new KmsError(Code.ALREADY_EXISTS, `KeyRing ${name} already exists.`);
    const createTime = new Date();
    this.#rings.set(name, createTime);
    return { name, createTime };
  }

  createCryptoKey(
    parent: string,
    cryptoKeyId: string,
    options: { purpose?: string; protectionLevel?: string; skipInitialVersionCreation?: boolean } = {},
  ): KeyView {
    if (!RING.test(parent)) throw new KmsError(Code.INVALID_ARGUMENT, `invalid parent ${parent}`);
    if (!this.#rings.has(parent)) throw new KmsError(Code.NOT_FOUND, `KeyRing ${parent} not found.`);
    if (!ID.test(cryptoKeyId)) throw new KmsError(Code.INVALID_ARGUMENT, `invalid cryptoKeyId ${cryptoKeyId}`);
    const purpose = options.purpose ?? 'ENCRYPT_DECRYPT';
    if (purpose !== 'ENCRYPT_DECRYPT') {
      throw new KmsError(Code.INVALID_ARGUMENT, `the emulator supports purpose ENCRYPT_DECRYPT only; got ${purpose}`);
    }
    const level = options.protectionLevel ?? 'SOFTWARE';
    if (level !== 'SOFTWARE' && level !== 'HSM') throw new KmsError(Code.INVALID_ARGUMENT, `unsupported protection level ${level}`);
    const name = `${parent}/cryptoKeys/${cryptoKeyId}`;
    if (this.#keys.has(name)) throw new KmsError(Code.ALREADY_EXISTS, `CryptoKey ${name} already exists.`);
    const key: Key = { name, purpose, protectionLevel: level, createTime: new Date(), versions: new Map(), primaryId: undefined, nextId: 1 };
    this.#keys.set(name, key);
    if (!options.skipInitialVersionCreation) key.primaryId = this.#addVersion(key).id;
    return this.#keyView(key);
  }

  createCryptoKeyVersion(parent: string): VersionView {
    const key = this.#key(parent);
    return this.#versionView(key, this.#addVersion(key));
  }

  updateCryptoKeyPrimaryVersion(name: string, cryptoKeyVersionId: string): KeyView {
    const key = this.#key(name);
    const id = Number(cryptoKeyVersionId);
    const version = Number.isSafeInteger(id) ? key.versions.get(id) : undefined;
    if (!version) throw new KmsError(Code.NOT_FOUND, `CryptoKeyVersion ${name}/cryptoKeyVersions/${cryptoKeyVersionId} not found.`);
    if (version.state !== 'ENABLED') {
      throw new KmsError(Code.FAILED_PRECONDITION, `${version.name} is not enabled, current state is: ${version.state}.`);
    }
    key.primaryId = id;
    return this.#keyView(key);
  }

  destroyCryptoKeyVersion(name: string): VersionView {
    const [key, version] = this.#version(name);
    if (version.state === 'DESTROYED' || version.state === 'DESTROY_SCHEDULED') {
      throw new KmsError(Code.FAILED_PRECONDITION, `${version.name} is already scheduled for destruction or destroyed.`);
    }
    version.state = 'DESTROY_SCHEDULED';
    version.destroyTime = new Date(Date.now() + 24 * 3600 * 1000);
    return this.#versionView(key, version);
  }

  /** UpdateCryptoKeyVersion with update mask `state`: ENABLED <-> DISABLED. */
  updateCryptoKeyVersionState(name: string, state: string): VersionView {
    const [key, version] = this.#version(name);
    if (state !== 'ENABLED' && state !== 'DISABLED') {
      throw new KmsError(Code.INVALID_ARGUMENT, `state can only be updated to ENABLED or DISABLED; got ${state}`);
    }
    if (version.state !== 'ENABLED' && version.state !== 'DISABLED') {
      throw new KmsError(Code.FAILED_PRECONDITION, `${version.name} is not enabled or disabled, current state is: ${version.state}.`);
    }
    version.state = state;
    return this.#versionView(key, version);
  }

  getCryptoKey(name: string): KeyView {
    return this.#keyView(this.#key(name));
  }

  listCryptoKeyVersions(parent: string, filter: string): VersionView[] {
    const key = this.#key(parent);
    let state: string | undefined;
    const f = filter.trim();
    if (f !== '') {
      const m = /^state\s*=\s*([A-Z_]+)$/.exec(f);
      if (!m) throw new KmsError(Code.INVALID_ARGUMENT, `the emulator understands only filters of the form state=STATE; got "${filter}"`);
      state = m[1];
    }
    return [...key.versions.values()].filter((v) => state === undefined || v.state === state).map((v) => this.#versionView(key, v));
  }

  encrypt(input: EncryptInput): EncryptOutput {
    const [key, version] = this.#encryptionVersion(input.name);
    if (input.plaintext.length > MAX_DATA) throw new KmsError(Code.INVALID_ARGUMENT, `The plaintext is larger than ${MAX_DATA} bytes.`);
    if (input.additionalAuthenticatedData.length > MAX_DATA) {
      throw new KmsError(Code.INVALID_ARGUMENT, `The additional authenticated data is larger than ${MAX_DATA} bytes.`);
    }
    checkHsmSize(key.protectionLevel, input.plaintext.length, input.additionalAuthenticatedData.length);
    if (input.plaintextCrc32c !== undefined && input.plaintextCrc32c !== crc32c(input.plaintext)) {
      throw checksumMismatch('plaintext_crc32c', 'plaintext');
    }
    if (input.additionalAuthenticatedDataCrc32c !== undefined && input.additionalAuthenticatedDataCrc32c !== crc32c(input.additionalAuthenticatedData)) {
      throw checksumMismatch('additional_authenticated_data_crc32c', 'additional_authenticated_data');
    }
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', version.material, iv, { authTagLength: 16 });
    cipher.setAAD(gcmAad(key.name, version.id, input.additionalAuthenticatedData));
    const head = Buffer.alloc(4);
    head.writeUInt32BE(version.id);
    const ciphertext = Buffer.concat([head, iv, cipher.update(input.plaintext), cipher.final(), cipher.getAuthTag()]);
    return {
      name: version.name,
      ciphertext,
      ciphertextCrc32c: crc32c(ciphertext),
      verifiedPlaintextCrc32c: input.plaintextCrc32c !== undefined,
      verifiedAdditionalAuthenticatedDataCrc32c: input.additionalAuthenticatedDataCrc32c !== undefined,
      protectionLevel: key.protectionLevel,
    };
  }

  decrypt(input: DecryptInput): DecryptOutput {
    if (!KEY.test(input.name)) throw new KmsError(Code.INVALID_ARGUMENT, `Decrypt needs a CryptoKey name; got ${input.name}`);
    const key = this.#key(input.name);
    if (input.ciphertextCrc32c !== undefined && input.ciphertextCrc32c !== crc32c(input.ciphertext)) {
      throw checksumMismatch('ciphertext_crc32c', 'ciphertext');
    }
    if (input.additionalAuthenticatedDataCrc32c !== undefined && input.additionalAuthenticatedDataCrc32c !== crc32c(input.additionalAuthenticatedData)) {
      throw checksumMismatch('additional_authenticated_data_crc32c', 'additional_authenticated_data');
    }
    const failed = new KmsError(Code.INVALID_ARGUMENT, "Decryption failed: verify that 'name' refers to the correct CryptoKey.");
    const ct = input.ciphertext;
    if (input.additionalAuthenticatedData.length > MAX_DATA) {
      throw new KmsError(Code.INVALID_ARGUMENT, `The additional authenticated data is larger than ${MAX_DATA} bytes.`);
    }
    if (ct.length < 4 + 12 + 16) throw failed;
    // The plaintext inside is the ciphertext less the emulator's header (version id, IV) and tag.
    checkHsmSize(key.protectionLevel, ct.length - (4 + 12 + 16), input.additionalAuthenticatedData.length);
    const version = key.versions.get(ct.readUInt32BE(0));
    if (!version) throw failed;
    if (version.state !== 'ENABLED') {
      throw new KmsError(Code.FAILED_PRECONDITION, `The request cannot be fulfilled. Resource ${version.name} is not enabled, current state is: ${version.state}.`);
    }
    const decipher = createDecipheriv('aes-256-gcm', version.material, ct.subarray(4, 16), { authTagLength: 16 });
    decipher.setAAD(gcmAad(key.name, version.id, input.additionalAuthenticatedData));
    decipher.setAuthTag(ct.subarray(ct.length - 16));
    let plaintext: Buffer;
    try {
      plaintext = Buffer.concat([decipher.update(ct.subarray(16, ct.length - 16)), decipher.final()]);
    } catch {
      throw failed;
    }
    return { plaintext, plaintextCrc32c: crc32c(plaintext), usedPrimary: key.primaryId === version.id, protectionLevel: key.protectionLevel };
  }

  #addVersion(key: Key): Version {
    const id = key.nextId++;
    const now = new Date();
    const version: Version = { id, name: `${key.name}/cryptoKeyVersions/${id}`, state: 'ENABLED', material: randomBytes(32), createTime: now, destroyTime: undefined };
    key.versions.set(id, version);
    return version;
  }

  #key(name: string): Key {
    if (!KEY.test(name)) throw new KmsError(Code.INVALID_ARGUMENT, `invalid CryptoKey name ${name}`);
    const key = this.#keys.get(name);
    if (!key) throw new KmsError(Code.NOT_FOUND, `CryptoKey ${name} not found.`);
    return key;
  }

  #version(name: string): [Key, Version] {
    const m = VERSION.exec(name);
    if (!m) throw new KmsError(Code.INVALID_ARGUMENT, `invalid CryptoKeyVersion name ${name}`);
    const key = this.#key(m[1] as string);
    const version = key.versions.get(Number(m[2]));
    if (!version) throw new KmsError(Code.NOT_FOUND, `CryptoKeyVersion ${name} not found.`);
    return [key, version];
  }

  /** Encrypt's `name`: a CryptoKey (its primary) or one of its versions; the version must be enabled. */
  #encryptionVersion(name: string): [Key, Version] {
    let key: Key;
    let version: Version | undefined;
    if (VERSION.test(name)) {
      [key, version] = this.#version(name);
    } else {
      key = this.#key(name);
      version = key.primaryId === undefined ? undefined : key.versions.get(key.primaryId);
      if (!version) throw new KmsError(Code.FAILED_PRECONDITION, `CryptoKey ${name} has no primary version.`);
    }
    if (version.state !== 'ENABLED') {
      throw new KmsError(Code.FAILED_PRECONDITION, `The request cannot be fulfilled. Resource ${version.name} is not enabled, current state is: ${version.state}.`);
    }
    return [key, version];
  }

  #versionView(key: Key, v: Version): VersionView {
    return {
      name: v.name,
      state: v.state,
      protectionLevel: key.protectionLevel,
      algorithm: ALGORITHM,
      createTime: v.createTime,
      generateTime: v.createTime,
      ...(v.destroyTime ? { destroyTime: v.destroyTime } : {}),
    };
  }

  #keyView(key: Key): KeyView {
    const primary = key.primaryId === undefined ? undefined : key.versions.get(key.primaryId);
    return {
      name: key.name,
      purpose: key.purpose,
      createTime: key.createTime,
      ...(primary ? { primary: this.#versionView(key, primary) } : {}),
      versionTemplate: { protectionLevel: key.protectionLevel, algorithm: ALGORITHM },
    };
  }
}

function gcmAad(keyName: string, versionId: number, aad: Buffer): Buffer {
  const id = Buffer.alloc(4);
  id.writeUInt32BE(versionId);
  return Buffer.concat([Buffer.from(keyName, 'utf8'), Buffer.from([0]), id, aad]);
}
