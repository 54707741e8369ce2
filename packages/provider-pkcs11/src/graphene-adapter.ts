/**
 * The few PKCS#11 calls this provider makes, on graphene-pk11 (and, for the hot path, the pkcs11js functions graphene
 * exposes as `session.lib`). Everything that touches the vendor API is here; the rest of the package works with the
 * small {@link P11Session} shape.
 *
 * Buffer rules: data keys are handed to the token as Buffer views over the caller's private copy (never copied
 * into Node's shared small-buffer pool, which `Buffer.from(bytes)` would use; the provider base wipes that copy after
 * the call); key bytes read back from the token are copied into a fresh Uint8Array and the Buffer they arrived in is
 * wiped. Copies made inside pkcs11js or the PKCS#11
 * library itself are out of reach of JavaScript.
 *
 * Execution: `async` runs the cryptographic calls (C_Encrypt, C_Decrypt, C_WrapKey, C_UnwrapKey) on libuv's thread
 * pool through pkcs11js callbacks, so a network HSM's round trip never blocks the event loop; `sync` runs them on the
 * main thread, which is faster for a token in the same machine (SoftHSM2, a PCIe card) but blocks the event loop
 * for the duration of each call. The *Init calls, object creation and attribute reads are synchronous in pkcs11js.
 * @module
 */
import {
  AesGcmParams,
  KeyType,
  Mechanism,
  Module,
  ObjectClass,
  SessionFlag,
  UserType,
  type Key,
  type SecretKey,
  type Session,
  type Slot,
} from 'graphene-pk11';
import { CKF_OS_LOCKING_OK } from './ckr.js';
import { DATA_KEY_LENGTH, GCM_TAG_LENGTH } from './wrap-format.js';

/** How the cryptographic calls run (see the module comment). */
export type Pkcs11Execution = 'async' | 'sync';

export type { Module, Slot, Session, SecretKey, Key };

/** Loads a PKCS#11 library and initialises it with CKF_OS_LOCKING_OK (calls come from several threads). */
export function loadModule(path: string): Module {
  const module = Module.load(path);
  try {
    // graphene tolerates CKR_CRYPTOKI_ALREADY_INITIALIZED (another user of the library in this process).
    module.initialize({ flags: CKF_OS_LOCKING_OK });
  } catch (err) {
    try {
      module.close();
    } catch {
      // the load error is the one to report
    }
    throw err;
  }
  return module;
}

/** Slot id of a graphene slot (handles are 8-byte little-endian CK_ULONGs). */
export function slotId(slot: Slot): bigint {
  return slot.handle.readBigUInt64LE(0);
}

/** Mechanism flag bits (CK_MECHANISM_INFO.flags) by name. */
export const MECHANISM_FLAGS = {
  ENCRYPT: 0x100,
  DECRYPT: 0x200,
  GENERATE: 0x8000,
  WRAP: 0x20000,
  UNWRAP: 0x40000,
} as const;
export type MechanismFlagName = keyof typeof MECHANISM_FLAGS;

/** One mechanism as the token reports it. */
export interface MechanismInfo {
  /** `CKM_AES_GCM`, or `CKM_0x...` for a mechanism graphene does not name. */
  readonly name: string;
  readonly type: number;
  readonly flags: number;
}

/** C_GetMechanismList + C_GetMechanismInfo. */
export function mechanismsOf(slot: Slot): MechanismInfo[] {
  const list = slot.getMechanisms();
  const out: MechanismInfo[] = [];
  for (let i = 0; i < list.length; i++) {
    const m = list.tryGetItem(i);
    if (!m) continue;
    const name = m.name && m.name !== 'unknown' ? `CKM_${m.name}` : `CKM_0x${m.type.toString(16)}`;
    out.push({ name, type: m.type, flags: m.flags });
  }
  return out;
}

/** Opens a session. Read-only is enough for every key operation here (session objects only); RW to create keys. */
export function openSession(slot: Slot, readWrite: boolean): Session {
  return slot.open(SessionFlag.SERIAL_SESSION | (readWrite ? SessionFlag.RW_SESSION : 0));
}

export function login(session: Session, pin: string): void {
  session.login(pin, UserType.USER);
}

/** The attributes read from a KEK object to check it before use. */
export interface KekAttributes {
  readonly label: string;
  readonly keyType: number;
  readonly valueLen: number;
  readonly sensitive: boolean;
  readonly extractable: boolean;
  readonly encrypt: boolean;
  readonly decrypt: boolean;
  readonly wrap: boolean;
  readonly unwrap: boolean;
}

export const CKK_AES = KeyType.AES as number;

/** Every secret key object visible to the session whose label satisfies `accept`, with its label. */
export function findSecretKeys(session: Session, accept: (label: string) => boolean): Array<{ label: string; key: SecretKey }> {
  const found = session.find({ class: ObjectClass.SECRET_KEY });
  const out: Array<{ label: string; key: SecretKey }> = [];
  for (let i = 0; i < found.length; i++) {
    const key = found.items(i).toType<SecretKey>();
    const label = (key.getAttribute({ label: null }).label) ?? '';
    if (accept(label)) out.push({ label, key });
  }
  return out;
}

/** Secret key objects with exactly this label. */
export function findByLabel(session: Session, label: string): SecretKey[] {
  const found = session.find({ class: ObjectClass.SECRET_KEY, label });
  const out: SecretKey[] = [];
  for (let i = 0; i < found.length; i++) out.push(found.items(i).toType<SecretKey>());
  return out;
}

export function readKekAttributes(key: SecretKey): KekAttributes {
  const a = key.getAttribute({
    label: null,
    keyType: null,
    valueLen: null,
    sensitive: null,
    extractable: null,
    encrypt: null,
    decrypt: null,
    wrap: null,
    unwrap: null,
  });
  return {
    label: (a.label) ?? '',
    keyType: Number(a.keyType),
    valueLen: Number(a.valueLen),
    sensitive: a.sensitive === true,
    extractable: a.extractable === true,
    encrypt: a.encrypt === true,
    decrypt: a.decrypt === true,
    wrap: a.wrap === true,
    unwrap: a.unwrap === true,
  };
}

/**
 * C_GenerateKey of a 256-bit AES token key that never leaves the token: private, sensitive, not extractable, usable
 * for both modes (encrypt/decrypt for AES_GCM, wrap/unwrap for AES_KEY_WRAP_PAD), and nothing else.
 */
export function generateKek(session: Session, label: string): SecretKey {
  return session.generateKey('AES_KEY_GEN', {
    class: ObjectClass.SECRET_KEY,
    keyType: KeyType.AES,
    valueLen: DATA_KEY_LENGTH,
    label,
    token: true,
    private: true,
    sensitive: true,
    extractable: false,
    modifiable: false,
    encrypt: true,
    decrypt: true,
    wrap: true,
    unwrap: true,
    sign: false,
    verify: false,
    derive: false,
  });
}

export function destroyObject(key: SecretKey | Key): void {
  key.destroy();
}

function run<T>(
  execution: Pkcs11Execution,
  sync: () => T,
  async: (done: (err: Error | null, value: T | null) => void) => void,
): Promise<T> {
  if (execution === 'sync') {
    try {
      return Promise.resolve(sync());
    } catch (err) {
      return Promise.reject(asError(err));
    }
  }
  return new Promise<T>((resolve, reject) => {
    try {
      async((err, value) => {
        if (err) reject(err);
        else if (value === null) reject(new TypeError('pkcs11js returned no result'));
        else resolve(value);
      });
    } catch (err) {
      reject(asError(err));
    }
  });
}

/** pkcs11js throws Error subclasses; anything else is wrapped so rejections are always Errors. */
export function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

/** A Buffer over the same memory (no copy, so nothing lands in Node's shared small-buffer pool). */
function view(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function gcmMechanism(iv: Uint8Array, aad: Uint8Array): ReturnType<typeof Mechanism.create> {
  return Mechanism.create({
    name: 'AES_GCM',
    params: new AesGcmParams(view(iv), Buffer.isBuffer(aad) ? aad : view(aad), GCM_TAG_LENGTH * 8),
  });
}

/** Either a value (execution `sync`) or a promise of it (`async`): the sync path adds no promise hops. */
export type MaybePromise<T> = T | Promise<T>;

function callbackPromise<T>(start: (done: (err: Error | null, value: T | null) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    try {
      start((err, value) => {
        if (err) reject(err);
        else if (value === null) reject(new TypeError('pkcs11js returned no result'));
        else resolve(value);
      });
    } catch (err) {
      reject(asError(err));
    }
  });
}

/**
 * AES-GCM encrypt of a data key inside the token, writing `ct || tag` straight into `into` at `offset` (no
 * intermediate copy). `dataKey` is read in place: it must be a private copy that stays unchanged until the call
 * settles (the provider base hands in its own copy and wipes it afterwards). Returns the number of bytes written.
 */
export function gcmEncrypt(
  session: Session,
  kek: SecretKey,
  iv: Uint8Array,
  aad: Uint8Array,
  dataKey: Uint8Array,
  execution: Pkcs11Execution,
  into: Uint8Array,
  offset: number,
): MaybePromise<number> {
  const lib = session.lib;
  const input = view(dataKey);
  const output = Buffer.from(into.buffer, into.byteOffset + offset, into.byteLength - offset);
  lib.C_EncryptInit(session.handle, gcmMechanism(iv, aad), kek.handle);
  if (execution === 'sync') return lib.C_Encrypt(session.handle, input, output).length;
  return callbackPromise<Buffer>((done) => lib.C_Encrypt(session.handle, input, output, done)).then((ct) => ct.length);
}

function takePlaintext(pt: Buffer, output: Buffer): Uint8Array {
  const out = new Uint8Array(pt.length);
  out.set(pt);
  output.fill(0);
  return out;
}

/**
 * AES-GCM decrypt inside the token. Returns the plaintext in a fresh Uint8Array; the token checks the tag and fails
 * (CKR_GENERAL_ERROR on SoftHSM2, CKR_ENCRYPTED_DATA_INVALID elsewhere) when it does not verify. The output buffer the
 * token wrote into is wiped either way.
 */
export function gcmDecrypt(
  session: Session,
  kek: SecretKey,
  iv: Uint8Array,
  aad: Uint8Array,
  sealed: Uint8Array,
  execution: Pkcs11Execution,
): MaybePromise<Uint8Array> {
  const lib = session.lib;
  // The token wants room for the whole input (SoftHSM2 answers CKR_BUFFER_TOO_SMALL for less).
  const output = Buffer.alloc(sealed.length);
  const input = view(sealed);
  try {
    lib.C_DecryptInit(session.handle, gcmMechanism(iv, aad), kek.handle);
    if (execution === 'sync') return takePlaintext(lib.C_Decrypt(session.handle, input, output), output);
  } catch (err) {
    output.fill(0);
    throw err;
  }
  return callbackPromise<Buffer>((done) => lib.C_Decrypt(session.handle, input, output, done)).then(
    (pt) => takePlaintext(pt, output),
    (err: unknown) => {
      output.fill(0);
      throw asError(err);
    },
  );
}

const SESSION_AES_KEY = {
  class: ObjectClass.SECRET_KEY,
  keyType: KeyType.AES,
  token: false,
  sensitive: false,
  extractable: true,
  encrypt: false,
  decrypt: false,
  wrap: false,
  unwrap: false,
  sign: false,
  verify: false,
  derive: false,
} as const;

/**
 * RFC 5649 wrap: the data key goes into a session (non-token) AES key object, C_WrapKey wraps it under the KEK, and
 * the session object is destroyed whatever happens.
 */
export async function kwpWrap(session: Session, kek: SecretKey, dataKey: Uint8Array, execution: Pkcs11Execution): Promise<Uint8Array> {
  const value = view(dataKey);
  let object: Key | undefined;
  try {
    object = session.create({ ...SESSION_AES_KEY, value }).toType<SecretKey>();
    const target = object;
    const wrapped = await run<Buffer>(
      execution,
      () => session.wrapKey('AES_KEY_WRAP_PAD', kek, target),
      (done) => session.wrapKey('AES_KEY_WRAP_PAD', kek, target, done),
    );
    return new Uint8Array(wrapped);
  } finally {
    if (object) object.destroy();
  }
}

/** RFC 5649 unwrap into a session object, read its value out, destroy the object. */
export async function kwpUnwrap(session: Session, kek: SecretKey, wrapped: Uint8Array, execution: Pkcs11Execution): Promise<Uint8Array> {
  const template = { ...SESSION_AES_KEY };
  const object = await run<Key>(
    execution,
    () => session.unwrapKey('AES_KEY_WRAP_PAD', kek, view(wrapped), template),
    (done) => session.unwrapKey('AES_KEY_WRAP_PAD', kek, view(wrapped), template, done),
  );
  try {
    const value = object.getAttribute({ value: null }).value;
    if (!value) throw new TypeError('the token returned no CKA_VALUE for the unwrapped key');
    const out = new Uint8Array(value.length);
    out.set(value);
    value.fill(0);
    return out;
  } finally {
    object.destroy();
  }
}
