/**
 * The file provider at run time: KEK versions read from a passphrase-sealed KEK file (`<dir>/keyring.json`,
 * see `kek-file-format.ts`), held as keys stretched from the passphrase until `close()`. Creating the KEK file and changing
 * it (versions, passphrase, active version) is KEK file administration (`kek-file-admin.ts`).
 * @module
 */
import {
  ConfigError,
  ProviderError,
  randomOwnedBytes,
  resolveSecurityMode,
  wipe,
  type BaseProviderOptions,
  type SecurityMode,
} from '@keyfold/envelope-core';
import {
  describeKdf,
  deriveKekFileKeys,
  finishKekFile,
  nextVersion,
  openKekFile,
  sameKdf,
  sealKek,
  wipeKekFileKeys,
  type KdfDescription,
  type KekFileDocument,
  type KekFileKeys,
} from './kek-file-format.js';
import { readKekFile, withKekFileLock, writeKekFile } from './kek-file-io.js';
import { FACTORY, LocalKekProvider, assertFactory, localBaseOptions } from './local-provider.js';
import { PASSPHRASE_ENV, resolvePassphrase, type PassphraseSource } from './passphrase.js';
/**
 * Options of {@link createFileProvider}.
 * @example
 * ```ts
 * const options: FileProviderOptions = { dir: '/etc/myapp/keys', passphraseEnv: 'MYAPP_PASSPHRASE' };
 * ```
 */
export interface FileProviderOptions extends BaseProviderOptions {
  /** The key directory holding `keyring.json`. Mode 0700 (and the file 0600) in production. */
  dir: string;
  /** The passphrase, or a function returning it. Default: the `passphraseEnv` variable. */
  passphrase?: PassphraseSource;
  /** Variable read when `passphrase` is not given. Default `KEYFOLD_PASSPHRASE`. */
  passphraseEnv?: string;
  /** `production` (default, or `KEYFOLD_SECURITY_MODE`) or `development` (skips the permission checks). */
  securityMode?: SecurityMode;
}

/** Asserts `dir` is a non-empty path. @throws TypeError */
export function assertDir(dir: unknown): asserts dir is string {
  if (typeof dir !== 'string' || dir === '') throw new TypeError('dir must be a non-empty path');
}

/** Asserts `options` is an object. @throws TypeError */
export function assertOptions(options: unknown): void {
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
}

function kdfDetails(kdf: KdfDescription): Record<string, string | number> {
  return kdf.name === 'pbkdf2-sha256'
    ? { kdf: kdf.name, iterations: kdf.iterations }
    : { kdf: kdf.name, N: kdf.N, r: kdf.r, p: kdf.p };
}

/** Stretches the passphrase (wiping its bytes) into the KEK file keys. */
export async function deriveFrom(source: PassphraseSource | undefined, envName: string | undefined, name: string, doc: Pick<KekFileDocument, 'kdf'>): Promise<KekFileKeys> {
  const passphrase = await resolvePassphrase(source, envName, name);
  try {
    return await deriveKekFileKeys(passphrase, doc.kdf);
  } finally {
    wipe(passphrase);
  }
}

/** Wipes every KEK of a map of opened versions. */
export function wipeAll(keks: ReadonlyMap<string, Uint8Array>): void {
  for (const kek of keks.values()) wipe(kek);
}

/**
 * A provider whose KEK versions live in a passphrase-sealed KEK file. Create it with {@link createFileProvider}.
 *
 * It keeps the keys stretched from the passphrase (never the passphrase itself) until `close()`, so `rotate()` and
 * `reload()` need neither the passphrase nor another expensive stretch. Methods throw as `BaseKeyProvider`
 * documents: `UNWRAP_FAILED` for any bad wrapped key, `PROVIDER_CLOSED` after `close()`, TypeError / RangeError for
 * malformed arguments.
 * @example
 * ```ts
 * const provider: FileProvider = await createFileProvider({ dir: './keys', passphrase });
 * await provider.rotate();
 * ```
 */
export class FileProvider extends LocalKekProvider {
  override readonly kind = 'file';
  override readonly protection = 'software' as const;
  override readonly keyId: string;
  /** The key directory. */
  readonly dir: string;
  protected override readonly canRotate = true;
  readonly #securityMode: SecurityMode;
  #keys: KekFileKeys | undefined;
  #doc: KekFileDocument;

  /** @internal Use {@link createFileProvider}. */
  constructor(
    token: typeof FACTORY,
    init: { dir: string; doc: KekFileDocument; keys: KekFileKeys; keks: Map<string, Uint8Array>; securityMode: SecurityMode },
    options: BaseProviderOptions,
  ) {
    assertFactory(token, 'createFileProvider');
    super(options);
    this.dir = init.dir;
    this.keyId = init.doc.keyId;
    this.#doc = init.doc;
    this.#keys = init.keys;
    this.#securityMode = init.securityMode;
    this.setKeks(init.keks, init.doc.active);
  }

  protected override describeDetails(): Readonly<Record<string, string | number | boolean>> {
    return { dir: this.dir, ...kdfDetails(describeKdf(this.#doc.kdf)) };
  }

  protected override missingVersionHint(version: string): string {
    return `version ${version} to the KEK file in ${this.dir} (copy the KEK file that holds it here, or add it with 'keyfold kek add'), then reopen the provider or call reload()`;
  }

  /** Reads the KEK file again and opens it with the held keys; refuses a KEK file resealed or replaced since open. */
  async #readOwnKekFile(): Promise<{ path: string; doc: KekFileDocument; keys: KekFileKeys }> {
    const { path, doc } = await readKekFile(this.dir, this.#securityMode);
    const keys = this.#keys;
    if (!keys) throw new ProviderError('PROVIDER_CLOSED', `the file provider for ${this.keyId} is closed`);
    if (doc.keyId !== this.keyId) {
      throw new ConfigError(`${path} now holds key id ${doc.keyId}, not ${this.keyId}: the KEK file was replaced; open a new provider`);
    }
    if (!sameKdf(doc.kdf, this.#doc.kdf)) {
      throw new ConfigError(
        `${path} was resealed with a new passphrase or KDF since this provider opened it; open a new provider with the current passphrase`,
      );
    }
    return { path, doc, keys };
  }

  /** Installs freshly opened KEKs, unless the provider was closed meanwhile (then they are wiped). */
  #install(doc: KekFileDocument, keks: Map<string, Uint8Array>): void {
    if (this.closed) {
      wipeAll(keks);
      throw new ProviderError('PROVIDER_CLOSED', `the file provider for ${this.keyId} is closed`);
    }
    this.#doc = doc;
    this.setKeks(keks, doc.active);
  }

  /**
   * Adds a new random KEK version to the KEK file (atomically, under the KEK file lock), makes it active, and
   * loads every version the file holds (including ones other processes added).
   * @returns the new version.
   * @throws ProviderError `PROVIDER_CLOSED` after close, `UNAVAILABLE` when another process holds the lock or the
   *   write fails; ConfigError when the KEK file was resealed with another passphrase since open;
   *   KeyfoldError `INTEGRITY_FAILED` when the file was modified.
   * @example
   * ```ts
   * const version = await provider.rotate(); // '2': new wraps use it, version 1 still unwraps
   * ```
   */
  async rotate(): Promise<string> {
    this.assertOpen();
    return withKekFileLock(this.dir, async () => {
      const { path, doc, keys } = await this.#readOwnKekFile();
      const keks = openKekFile(keys, doc, path);
      try {
        const version = nextVersion(doc);
        const kek = randomOwnedBytes(32);
        keks.set(version, kek);
        const entry = sealKek(keys, doc.keyId, doc.kdf, version, new Date().toISOString(), kek);
        const next = finishKekFile(keys, { keyId: doc.keyId, kdf: doc.kdf, active: version, versions: [...doc.versions, entry] });
        await writeKekFile(this.dir, next);
        this.#install(next, keks);
        return version;
      } catch (err) {
        wipeAll(keks);
        throw err;
      }
    });
  }

  /**
   * Re-reads the KEK file, to pick up versions added (or a new active version set) by another process, such
   * as `keyfold kek add`. Uses the held keys: no passphrase, no new stretch.
   * @throws ConfigError when the KEK file was resealed with another passphrase or replaced since open (open a new
   *   provider); KeyfoldError `INTEGRITY_FAILED` when the file was modified; FormatError for a malformed file.
   * @example
   * ```ts
   * await provider.reload();
   * ```
   */
  async reload(): Promise<void> {
    this.assertOpen();
    const { path, doc, keys } = await this.#readOwnKekFile();
    this.#install(doc, openKekFile(keys, doc, path));
  }

  protected override async _close(): Promise<void> {
    wipeKekFileKeys(this.#keys);
    this.#keys = undefined;
    await super._close();
  }
}

/**
 * Opens the KEK file in `dir` with a passphrase and returns a provider over its KEK versions. The passphrase is
 * stretched once, here; wraps and unwraps never touch it again.
 *
 * @throws ConfigError (`CONFIG_INVALID`) when there is no KEK file in `dir` or no passphrase (naming the variable);
 *   PolicyError (`INSECURE_PERMISSIONS`) in production when the directory is not 0700 or the file not 0600;
 *   KeyfoldError `WRONG_PASSPHRASE` when the passphrase does not open the KEK file, `INTEGRITY_FAILED` when the
 *   file was modified; FormatError (`FORMAT_INVALID`) / UnsupportedFormatError for a malformed or newer file;
 *   TypeError / RangeError for malformed options or an empty passphrase.
 * @example
 * ```ts
 * import { createFileProvider, initKekFile } from '@keyfold/provider-local';
 *
 * await initKekFile({ dir: './.keyfold/keys', passphrase: process.env.KEYFOLD_PASSPHRASE! });
 * const provider = await createFileProvider({ dir: './.keyfold/keys' }); // reads KEYFOLD_PASSPHRASE
 * const wrapped = await provider.wrapKey(dataKey, { table: 'users' });
 * await provider.close();
 * ```
 */
export async function createFileProvider(options: FileProviderOptions): Promise<FileProvider> {
  assertOptions(options);
  assertDir(options.dir);
  const passphraseEnv = options.passphraseEnv ?? PASSPHRASE_ENV;
  if (typeof passphraseEnv !== 'string' || passphraseEnv === '') throw new TypeError('passphraseEnv must be a variable name');
  const securityMode = resolveSecurityMode(options.securityMode);
  const { path, doc } = await readKekFile(options.dir, securityMode);
  const keys = await deriveFrom(options.passphrase, passphraseEnv, 'passphrase', doc);
  let keks: Map<string, Uint8Array> | undefined;
  try {
    keks = openKekFile(keys, doc, path);
    return new FileProvider(
      FACTORY,
      { dir: options.dir, doc, keys, keks, securityMode },
      localBaseOptions(options),
    );
  } catch (err) {
    wipeKekFileKeys(keys);
    if (keks) wipeAll(keks);
    throw err;
  }
}
