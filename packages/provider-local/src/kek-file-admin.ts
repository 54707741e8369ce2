/**
 * Administration of a file provider's KEK file: create it, add KEK versions, change the passphrase, pick the active
 * version. Every write holds the KEK file lock and replaces the file atomically; on any error nothing is changed.
 * @module
 */
import { randomBytes } from 'node:crypto';
import {
  KeyfoldError,
  ProviderError,
  randomOwnedBytes,
  resolveSecurityMode,
  wipe,
  type SecurityMode,
} from '@keyfold/envelope-core';
import {
  describeKdf,
  deriveKekFileKeys,
  finishKekFile,
  newKdfParams,
  nextVersion,
  openKekFile,
  resolveKdfOptions,
  sealKek,
  wipeKekFileKeys,
  type KdfDescription,
  type KdfOptions,
  type KekFileDocument,
  type KekFileEntry,
  type KekFileKeys,
} from './kek-file-format.js';
import { assertKeyDirectory, kekFileExists, kekFilePath, readKekFile, withKekFileLock, writeKekFile } from './kek-file-io.js';
import { assertKeyId } from './local-provider.js';
import { assertDir, assertOptions, wipeAll } from './file-provider.js';
import { resolvePassphrase, type PassphraseSource } from './passphrase.js';
/**
 * What the administrative functions report about a KEK file (no secrets).
 * @example
 * ```ts
 * const { keyId, activeVersion, versions, kdf } = await initKekFile({ dir, passphrase });
 * ```
 */
export interface KekFileInfo {
  /** Path of the KEK file. */
  readonly path: string;
  readonly keyId: string;
  readonly activeVersion: string;
  /** Oldest first. */
  readonly versions: readonly string[];
  readonly kdf: KdfDescription;
}

/**
 * Options of {@link initKekFile}.
 * @example
 * ```ts
 * const options: InitKekFileOptions = { dir: './keys', passphrase, kdf: { name: 'scrypt' }, keyId: 'app-kek' };
 * ```
 */
export interface InitKekFileOptions {
  /** The key directory; created with mode 0700 if missing. */
  dir: string;
  passphrase: PassphraseSource;
  /** Default PBKDF2-HMAC-SHA-256 with 600,000 iterations. */
  kdf?: KdfOptions;
  /** Key id stored in every wrapped key. Default `file-<8 random hex>`. */
  keyId?: string;
  securityMode?: SecurityMode;
}

/**
 * Options of {@link addFileKekVersion}.
 * @example
 * ```ts
 * const options: AddFileKekVersionOptions = { dir: './keys', passphrase, activate: false };
 * ```
 */
export interface AddFileKekVersionOptions {
  dir: string;
  passphrase: PassphraseSource;
  /** Make the new version the active one. Default true. */
  activate?: boolean;
  securityMode?: SecurityMode;
}

/**
 * Options of {@link changeFilePassphrase}.
 * @example
 * ```ts
 * const options: ChangeFilePassphraseOptions = { dir: './keys', oldPassphrase, newPassphrase };
 * ```
 */
export interface ChangeFilePassphraseOptions {
  dir: string;
  oldPassphrase: PassphraseSource;
  newPassphrase: PassphraseSource;
  /** New KDF parameters. Default: the KEK file's current algorithm and cost (always with a fresh salt). */
  kdf?: KdfOptions;
  securityMode?: SecurityMode;
}

/**
 * Options of {@link setActiveFileKekVersion}.
 * @example
 * ```ts
 * const options: SetActiveFileKekVersionOptions = { dir: './keys', passphrase, version: '2' };
 * ```
 */
export interface SetActiveFileKekVersionOptions {
  dir: string;
  passphrase: PassphraseSource;
  /** The version new wraps will use; it must exist in the KEK file. */
  version: string;
  securityMode?: SecurityMode;
}

function info(path: string, doc: KekFileDocument): KekFileInfo {
  return {
    path,
    keyId: doc.keyId,
    activeVersion: doc.active,
    versions: doc.versions.map((v) => v.version),
    kdf: describeKdf(doc.kdf),
  };
}

/**
 * Creates a new KEK file in `dir` (created with mode 0700 if missing) holding one random KEK version, sealed under
 * the passphrase.
 * @returns what was created (no secrets).
 * @throws KeyfoldError `ALREADY_EXISTS` when `dir` already holds a KEK file (it is never overwritten);
 *   PolicyError (`INSECURE_PERMISSIONS`) in production when `dir` is accessible to group or other;
 *   ProviderError `UNAVAILABLE` when another process holds the KEK file lock or the write fails;
 *   TypeError / RangeError for a malformed `keyId`, `kdf` or an empty passphrase.
 * @example
 * ```ts
 * const { keyId } = await initKekFile({ dir: '/etc/myapp/keys', passphrase: () => askPassphrase() });
 * ```
 */
export async function initKekFile(options: InitKekFileOptions): Promise<KekFileInfo> {
  assertOptions(options);
  assertDir(options.dir);
  const keyId = options.keyId ?? `file-${randomBytes(4).toString('hex')}`;
  assertKeyId(keyId, 'keyId');
  const kdf = newKdfParams(resolveKdfOptions(options.kdf));
  const securityMode = resolveSecurityMode(options.securityMode);
  await assertKeyDirectory(options.dir, securityMode, true);
  const passphrase = await resolvePassphrase(options.passphrase, undefined, 'passphrase');
  try {
    return await withKekFileLock(options.dir, async () => {
      const path = kekFilePath(options.dir);
      if (await kekFileExists(options.dir)) {
        throw new KeyfoldError('ALREADY_EXISTS', `${path} already exists; it is never overwritten (use addFileKekVersion to add a version)`);
      }
      const keys = await deriveKekFileKeys(passphrase, kdf);
      const kek = randomOwnedBytes(32);
      try {
        const entry = sealKek(keys, keyId, kdf, '1', new Date().toISOString(), kek);
        const doc = finishKekFile(keys, { keyId, kdf, active: '1', versions: [entry] });
        await writeKekFile(options.dir, doc);
        return info(path, doc);
      } finally {
        wipe(kek);
        wipeKekFileKeys(keys);
      }
    });
  } finally {
    wipe(passphrase);
  }
}

/**
 * Runs a read-modify-write of the KEK file of `dir` under its lock: reads it, opens it with the passphrase,
 * lets `change` return the new document, writes it atomically. Secrets are wiped whatever happens; on any error
 * the file is unchanged.
 */
async function modifyKekFile<T>(
  dir: string,
  securityMode: SecurityMode,
  passphrase: PassphraseSource,
  passphraseName: string,
  change: (ctx: { path: string; doc: KekFileDocument; keys: KekFileKeys; keks: Map<string, Uint8Array> }) => Promise<{ doc: KekFileDocument; result: T }>,
): Promise<T> {
  await assertKeyDirectory(dir, securityMode);
  // Ask for the passphrase before taking the lock, so a slow prompt does not hold it.
  const passphraseBytes = await resolvePassphrase(passphrase, undefined, passphraseName);
  try {
    return await withKekFileLock(dir, async () => {
      const { path, doc } = await readKekFile(dir, securityMode);
      const keys = await deriveKekFileKeys(passphraseBytes, doc.kdf);
      let keks: Map<string, Uint8Array> | undefined;
      try {
        keks = openKekFile(keys, doc, path);
        const { doc: next, result } = await change({ path, doc, keys, keks });
        await writeKekFile(dir, next);
        return result;
      } finally {
        if (keks) wipeAll(keks);
        wipeKekFileKeys(keys);
      }
    });
  } finally {
    wipe(passphraseBytes);
  }
}

/**
 * Adds a new random KEK version to the KEK file in `dir`, and by default makes it active. Running providers pick
 * it up with `reload()` (or when reopened).
 * @returns the new version (`'2'`, `'3'`, ...).
 * @throws KeyfoldError `WRONG_PASSPHRASE` (nothing is written), `INTEGRITY_FAILED`; ConfigError when there is no
 *   KEK file; PolicyError for loose permissions in production; ProviderError `UNAVAILABLE` when the lock is held.
 * @example
 * ```ts
 * const version = await addFileKekVersion({ dir: '/etc/myapp/keys', passphrase });
 * ```
 */
export async function addFileKekVersion(options: AddFileKekVersionOptions): Promise<string> {
  assertOptions(options);
  assertDir(options.dir);
  const activate = options.activate ?? true;
  if (typeof activate !== 'boolean') throw new TypeError('activate must be a boolean');
  const securityMode = resolveSecurityMode(options.securityMode);
  return modifyKekFile(options.dir, securityMode, options.passphrase, 'passphrase', ({ doc, keys }) => {
    const version = nextVersion(doc);
    const kek = randomOwnedBytes(32);
    try {
      const entry = sealKek(keys, doc.keyId, doc.kdf, version, new Date().toISOString(), kek);
      const next = finishKekFile(keys, {
        keyId: doc.keyId,
        kdf: doc.kdf,
        active: activate ? version : doc.active,
        versions: [...doc.versions, entry],
      });
      return Promise.resolve({ doc: next, result: version });
    } finally {
      wipe(kek);
    }
  });
}

/**
 * Makes `version` the active version of the KEK file in `dir` (new wraps use it). Running providers pick the change
 * up with `reload()`.
 * @throws ProviderError `KEY_NOT_FOUND` when the KEK file has no such version; KeyfoldError `WRONG_PASSPHRASE` /
 *   `INTEGRITY_FAILED`; ConfigError / PolicyError as {@link addFileKekVersion}.
 * @example
 * ```ts
 * await setActiveFileKekVersion({ dir: '/etc/myapp/keys', passphrase, version: '3' });
 * ```
 */
export async function setActiveFileKekVersion(options: SetActiveFileKekVersionOptions): Promise<void> {
  assertOptions(options);
  assertDir(options.dir);
  if (typeof options.version !== 'string') throw new TypeError('version must be a string');
  const securityMode = resolveSecurityMode(options.securityMode);
  await modifyKekFile(options.dir, securityMode, options.passphrase, 'passphrase', ({ path, doc, keys }) => {
    if (!doc.versions.some((v) => v.version === options.version)) {
      throw new ProviderError(
        'KEY_NOT_FOUND',
        `${path} has no version ${JSON.stringify(options.version)} (versions: ${doc.versions.map((v) => v.version).join(', ')})`,
      );
    }
    const next = finishKekFile(keys, { keyId: doc.keyId, kdf: doc.kdf, active: options.version, versions: doc.versions });
    return Promise.resolve({ doc: next, result: undefined });
  });
}

/**
 * Reseals every KEK version of the KEK file in `dir` under a new passphrase (and, optionally, new KDF parameters;
 * always a fresh salt). The KEKs themselves do not change, so every wrapped key keeps unwrapping. Running
 * providers must be reopened with the new passphrase.
 * @returns the KEK file after the change.
 * @throws KeyfoldError `WRONG_PASSPHRASE` when `oldPassphrase` does not open the KEK file (nothing is written);
 *   TypeError / RangeError for an empty passphrase or bad `kdf`; others as {@link addFileKekVersion}.
 * @example
 * ```ts
 * await changeFilePassphrase({ dir: '/etc/myapp/keys', oldPassphrase, newPassphrase, kdf: { name: 'scrypt' } });
 * ```
 */
export async function changeFilePassphrase(options: ChangeFilePassphraseOptions): Promise<KekFileInfo> {
  assertOptions(options);
  assertDir(options.dir);
  const wanted = options.kdf === undefined ? undefined : resolveKdfOptions(options.kdf);
  const securityMode = resolveSecurityMode(options.securityMode);
  const newPassphrase = await resolvePassphrase(options.newPassphrase, undefined, 'newPassphrase');
  try {
    return await modifyKekFile(options.dir, securityMode, options.oldPassphrase, 'oldPassphrase', async ({ path, doc, keks }) => {
      const kdf = newKdfParams(wanted ?? describeKdf(doc.kdf));
      const newKeys = await deriveKekFileKeys(newPassphrase, kdf);
      try {
        const versions: KekFileEntry[] = doc.versions.map((v) =>
          sealKek(newKeys, doc.keyId, kdf, v.version, v.createdAt, keks.get(v.version) as Uint8Array),
        );
        const next = finishKekFile(newKeys, { keyId: doc.keyId, kdf, active: doc.active, versions });
        return { doc: next, result: info(path, next) };
      } finally {
        wipeKekFileKeys(newKeys);
      }
    });
  } finally {
    wipe(newPassphrase);
  }
}

/** @deprecated Use {@link initKekFile} (same function; the passphrase-sealed file is called the KEK file now). */
export const initFileKeyring = initKekFile;
/** @deprecated Use {@link KekFileInfo}. */
export type FileKeyringInfo = KekFileInfo;
/** @deprecated Use {@link InitKekFileOptions}. */
export type InitFileKeyringOptions = InitKekFileOptions;
