/**
 * The Key Vault / Managed HSM model behind the emulator: keys with 32-hex versions, the latest version being the
 * current one, per-version attributes (enabled, created, updated), key_ops, soft delete, GET of deleted keys, and wrapKey / unwrapKey with
 * real crypto from node:crypto (RSA-OAEP-256 and RSA-OAEP with RSA keys, A256KW = RFC 3394 AES key wrap with
 * oct-HSM keys). Errors are {@link KvError}s shaped like Key Vault's (`{ error: { code, message, innererror } }`).
 * @module
 */
import { createCipheriv, createDecipheriv, createPublicKey, generateKeyPairSync, privateDecrypt, publicEncrypt, randomBytes, constants, type KeyObject } from 'node:crypto';

/** An error answer of the emulated service. */
export class KvError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly innerCode?: string,
  ) {
    super(message);
    this.name = 'KvError';
  }

  /** The JSON body Key Vault answers with. */
  body(): unknown {
    return { error: { code: this.code, message: this.message, ...(this.innerCode ? { innererror: { code: this.innerCode } } : {}) } };
  }
}

export type KeyType = 'RSA' | 'RSA-HSM' | 'oct' | 'oct-HSM';
export type WrapAlgorithm = 'RSA-OAEP-256' | 'RSA-OAEP' | 'RSA1_5' | 'A128KW' | 'A192KW' | 'A256KW';
const KEY_TYPES: readonly string[] = ['RSA', 'RSA-HSM', 'oct', 'oct-HSM'];
const ALL_OPS = ['encrypt', 'decrypt', 'sign', 'verify', 'wrapKey', 'unwrapKey'];
const NAME = /^[0-9a-zA-Z-]{1,127}$/;
const AES_KW_IV = Buffer.from('a6a6a6a6a6a6a6a6', 'hex');

interface Version {
  readonly version: string;
  readonly kty: KeyType;
  keyOps: string[];
  enabled: boolean;
  readonly created: number;
  updated: number;
  readonly rsa?: { privateKey: KeyObject; n: Buffer; e: Buffer };
  readonly secret?: Buffer;
}

interface Key {
  readonly name: string;
  readonly versions: Map<string, Version>;
  /** Version ids, oldest first; the last is the current version. */
  readonly order: string[];
  deletedOn: number | undefined;
}

/** A key bundle as the service returns it, before the transport adds the vault URL to `kid`. */
export interface KeyBundleView {
  key: { kid: string; kty: KeyType; key_ops: string[]; n?: string; e?: string };
  attributes: { enabled: boolean; created: number; updated: number; recoveryLevel: string; recoverableDays: number; exportable: boolean };
}

/** Options of a create request (the JSON body of `POST /keys/{name}/create`). */
export interface CreateKeyInput {
  kty?: unknown;
  key_size?: unknown;
  key_ops?: unknown;
  attributes?: { enabled?: unknown } | null;
}

function notFound(name: string): KvError {
  return new KvError(
    404,
    'KeyNotFound',
    `A key with (name/id) ${name} was not found in this key vault. If you recently deleted this key you may be able to recover it using the correct recovery command.`,
  );
}

function badParameter(message: string): KvError {
  return new KvError(400, 'BadParameter', message);
}

function seconds(): number {
  return Math.floor(Date.now() / 1000);
}

/** The keys of one emulated vault. `kidBase` is added by the transport (`https://host:port`). */
export class KvState {
  readonly #keys = new Map<string, Key>();

  /**
   * @param managedHsm behave as a Managed HSM (oct-HSM keys allowed).
   * @param softwareKeysOnManagedHsm on a Managed HSM, still accept the software key types RSA and oct. Real Managed HSM
   *   does not ("Managed HSMs only support HSM-protected keys": RSA-HSM, EC-HSM, oct-HSM; Microsoft Learn, "About
   *   keys", azure/key-vault/keys/about-keys): a convenience so one emulator serves RSA and oct-HSM tests.
   */
  constructor(
    readonly managedHsm: boolean,
    readonly softwareKeysOnManagedHsm = true,
  ) {}

  createKey(name: string, input: CreateKeyInput): KeyBundleView {
    if (!NAME.test(name)) throw badParameter(`The key name ${name} is invalid: use 1-127 letters, digits and dashes.`);
    const kty = input.kty as KeyType;
    if (typeof kty !== 'string' || !KEY_TYPES.includes(kty)) throw badParameter(`The key type ${String(kty)} is not supported by the emulator (RSA, RSA-HSM, oct, oct-HSM).`);
    if ((kty === 'oct' || kty === 'oct-HSM') && !this.managedHsm) {
      throw badParameter(`Key type ${kty} is supported by Managed HSM only (start the emulator with managedHsm: true).`);
    }
    if (this.managedHsm && !this.softwareKeysOnManagedHsm && (kty === 'RSA' || kty === 'oct')) {
      // The exact wording of Managed HSM's refusal is not documented; BadParameter 400 is its answer to a bad kty.
      throw badParameter(`Key type ${kty} is not supported: Managed HSM supports HSM-protected keys only (RSA-HSM, EC-HSM, oct-HSM).`);
    }
    let key = this.#keys.get(name);
    if (key?.deletedOn !== undefined) {
      throw new KvError(409, 'Conflict', `Key ${name} is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the key can only be recovered or purged.`);
    }
    const ops = input.key_ops === undefined || input.key_ops === null ? ALL_OPS : input.key_ops;
    if (!Array.isArray(ops) || !ops.every((o) => typeof o === 'string' && ALL_OPS.includes(o))) throw badParameter('key_ops must be an array of key operations.');
    const size = input.key_size ?? (kty.startsWith('RSA') ? 2048 : 256);
    const now = seconds();
    let version: Version;
    const id = randomBytes(16).toString('hex');
    if (kty === 'RSA' || kty === 'RSA-HSM') {
      if (size !== 2048 && size !== 3072 && size !== 4096) throw badParameter(`RSA key_size must be 2048, 3072 or 4096; got ${JSON.stringify(size)}.`);
      const { privateKey } = generateKeyPairSync('rsa', { modulusLength: size, publicExponent: 0x10001 });
      const jwk = createPublicKey(privateKey).export({ format: 'jwk' });
      version = {
        version: id,
        kty,
        keyOps: [...(ops as string[])],
        enabled: input.attributes?.enabled !== false,
        created: now,
        updated: now,
        rsa: { privateKey, n: Buffer.from(jwk.n as string, 'base64url'), e: Buffer.from(jwk.e as string, 'base64url') },
      };
    } else {
      if (size !== 128 && size !== 192 && size !== 256) throw badParameter(`oct key_size must be 128, 192 or 256; got ${JSON.stringify(size)}.`);
      version = { version: id, kty, keyOps: [...(ops as string[])], enabled: input.attributes?.enabled !== false, created: now, updated: now, secret: randomBytes(size / 8) };
    }
    if (!key) {
      key = { name, versions: new Map(), order: [], deletedOn: undefined };
      this.#keys.set(name, key);
    }
    key.versions.set(id, version);
    key.order.push(id);
    return this.#view(key, version);
  }

  /** A new version with the current version's type, size and operations. */
  rotateKey(name: string): KeyBundleView {
    const key = this.#key(name);
    const current = key.versions.get(key.order[key.order.length - 1] as string) as Version;
    const size = current.rsa ? current.rsa.n.length * 8 : (current.secret as Buffer).length * 8;
    return this.createKey(name, { kty: current.kty, key_size: size, key_ops: current.keyOps });
  }

  /** GET of a key (current version) or one version. A disabled version answers 403 KeyDisabled, as Key Vault does. */
  getKey(name: string, version: string | undefined): KeyBundleView {
    const [key, v] = this.#version(name, version);
    if (!v.enabled) throw disabled('get');
    return this.#view(key, v);
  }

  /** Every version's kid and attributes, oldest first. */
  listVersions(name: string): KeyBundleView[] {
    const key = this.#key(name);
    return key.order.map((id) => this.#view(key, key.versions.get(id) as Version));
  }

  /** PATCH of a version: `attributes.enabled` and `key_ops`. */
  updateKey(name: string, version: string | undefined, input: { key_ops?: unknown; attributes?: { enabled?: unknown } | null }): KeyBundleView {
    const [key, v] = this.#version(name, version);
    if (input.attributes && typeof input.attributes.enabled === 'boolean') v.enabled = input.attributes.enabled;
    if (input.key_ops !== undefined && input.key_ops !== null) {
      if (!Array.isArray(input.key_ops) || !input.key_ops.every((o) => typeof o === 'string' && ALL_OPS.includes(o))) {
        throw badParameter('key_ops must be an array of key operations.');
      }
      v.keyOps = [...(input.key_ops as string[])];
    }
    v.updated = seconds();
    return this.#view(key, v);
  }

  /** Soft delete: the key answers 404 KeyNotFound until recovered (the emulator has no recover). */
  deleteKey(name: string): KeyBundleView & { recoveryId: string; deletedDate: number; scheduledPurgeDate: number } {
    const key = this.#key(name);
    const now = seconds();
    key.deletedOn = now;
    const current = key.versions.get(key.order[key.order.length - 1] as string) as Version;
    return { ...this.#view(key, current), recoveryId: `/deletedkeys/${name}`, deletedDate: now, scheduledPurgeDate: now + 90 * 86400 };
  }

  /** GET /deletedkeys/{name}: the deleted key's bundle (404 while it is not deleted). */
  getDeletedKey(name: string): KeyBundleView & { recoveryId: string; deletedDate: number; scheduledPurgeDate: number } {
    const key = this.#keys.get(name);
    if (!key || key.deletedOn === undefined) throw new KvError(404, 'KeyNotFound', `Deleted Key not found: ${name}`);
    const current = key.versions.get(key.order[key.order.length - 1] as string) as Version;
    return { ...this.#view(key, current), recoveryId: `/deletedkeys/${name}`, deletedDate: key.deletedOn, scheduledPurgeDate: key.deletedOn + 90 * 86400 };
  }

  wrapKey(name: string, version: string | undefined, alg: unknown, value: Buffer): { kid: string; value: Buffer } {
    const [, v] = this.#usable(name, version, 'wrapKey');
    const algorithm = checkAlgorithm(v, alg);
    let out: Buffer;
    if (v.rsa) {
      const max = v.rsa.n.length - 2 * (algorithm === 'RSA-OAEP-256' ? 32 : 20) - 2;
      if (value.length === 0 || value.length > max) throw badParameter(`The value to wrap must be 1 to ${max} bytes for this key and algorithm.`);
      out = publicEncrypt(
        { key: v.rsa.privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: algorithm === 'RSA-OAEP-256' ? 'sha256' : 'sha1' },
        value,
      );
    } else {
      const secret = v.secret as Buffer;
      if (value.length < 16 || value.length % 8 !== 0) throw badParameter('The value to wrap must be a multiple of 8 bytes, at least 16.');
      const cipher = createCipheriv(`id-aes${secret.length * 8}-wrap`, secret, AES_KW_IV);
      out = Buffer.concat([cipher.update(value), cipher.final()]);
    }
    return { kid: `/keys/${name}/${v.version}`, value: out };
  }

  unwrapKey(name: string, version: string | undefined, alg: unknown, value: Buffer): { kid: string; value: Buffer } {
    const [, v] = this.#usable(name, version, 'unwrapKey');
    const algorithm = checkAlgorithm(v, alg);
    const failed = badParameter('The wrapped key could not be unwrapped with this key and algorithm.');
    let out: Buffer;
    try {
      if (v.rsa) {
        if (value.length !== v.rsa.n.length) throw failed;
        out = privateDecrypt(
          { key: v.rsa.privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: algorithm === 'RSA-OAEP-256' ? 'sha256' : 'sha1' },
          value,
        );
      } else {
        const secret = v.secret as Buffer;
        if (value.length < 24 || value.length % 8 !== 0) throw failed;
        const decipher = createDecipheriv(`id-aes${secret.length * 8}-wrap`, secret, AES_KW_IV);
        out = Buffer.concat([decipher.update(value), decipher.final()]);
      }
    } catch {
      throw failed;
    }
    return { kid: `/keys/${name}/${v.version}`, value: out };
  }

  #key(name: string): Key {
    const key = this.#keys.get(name);
    if (!key || key.deletedOn !== undefined) throw notFound(name);
    return key;
  }

  #version(name: string, version: string | undefined): [Key, Version] {
    const key = this.#key(name);
    const id = version === undefined || version === '' ? key.order[key.order.length - 1] : version;
    const v = id === undefined ? undefined : key.versions.get(id);
    if (!v) throw notFound(version ? `${name}/${version}` : name);
    return [key, v];
  }

  #usable(name: string, version: string | undefined, op: 'wrapKey' | 'unwrapKey'): [Key, Version] {
    const [key, v] = this.#version(name, version);
    if (!v.enabled) throw disabled(op);
    if (!v.keyOps.includes(op)) throw badParameter(`Operation ${op} is not allowed by the key_ops of this key.`);
    return [key, v];
  }

  #view(key: Key, v: Version): KeyBundleView {
    return {
      key: {
        kid: `/keys/${key.name}/${v.version}`,
        kty: v.kty,
        key_ops: [...v.keyOps],
        ...(v.rsa ? { n: v.rsa.n.toString('base64url'), e: v.rsa.e.toString('base64url') } : {}),
      },
      attributes: {
        enabled: v.enabled,
        created: v.created,
        updated: v.updated,
        recoveryLevel: 'Recoverable+Purgeable',
        recoverableDays: 90,
        exportable: false,
      },
    };
  }
}

function disabled(op: string): KvError {
  return new KvError(403, 'Forbidden', `Operation ${op} is not allowed on a disabled key.`, 'KeyDisabled');
}

function checkAlgorithm(v: Version, alg: unknown): WrapAlgorithm {
  if (typeof alg !== 'string') throw badParameter('The parameter alg is required.');
  const rsa = v.rsa !== undefined;
  if (rsa && (alg === 'RSA-OAEP-256' || alg === 'RSA-OAEP')) return alg;
  if (!rsa && alg === `A${(v.secret as Buffer).length * 8}KW`) return alg as WrapAlgorithm;
  if (alg === 'RSA1_5') throw badParameter('RSA1_5 is not supported by the emulator (Node refuses PKCS#1 v1.5 decryption).');
  throw badParameter(`Algorithm ${alg} is not supported for key type ${v.kty}.`);
}
