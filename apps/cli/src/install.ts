/**
 * Creating an installation: the configuration directory (0700), the provider's key material where the CLI owns
 * it (the KEK file), and `config.json` (0600, no secrets). Shared by `keyfold init` and `keyfold demo`. For the
 * key services and HSMs the key lives in the backend: the installation records how to reach it.
 *
 * All or nothing: an existing installation is refused before anything is written; a step that fails removes what
 * it created itself, and each completed step records what it created in a {@link Rollback}, which the caller runs
 * when a later step (creating the key store) fails.
 * @module
 */
import { mkdir, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { assertPrivatePath, KeyfoldError, type KeyProvider, type Protection, type SecurityMode } from '@keyfold/envelope-core';
import { KEK_FILE_NAME, type KdfDescription, type KdfOptions } from '@keyfold/provider-local';
import { CliError } from './exit-codes.js';
import { ioError } from './input.js';
import { CONFIG_VERSION, configPath, DEFAULT_KEYRING_DIR, saveNewConfig, type KeyfoldConfig, type ProviderConfig } from './config.js';
import type { ProviderKind } from './provider-config.js';

/** What an installation holds, without secrets. */
export interface Installation {
  readonly dir: string;
  readonly configPath: string;
  readonly securityMode: SecurityMode;
  readonly provider: {
    readonly kind: ProviderKind;
    readonly keyId: string;
    readonly activeVersion: string;
    readonly versions: readonly string[];
    /** File provider: the KEK file and its key derivation. */
    readonly keyring?: string;
    readonly kdf?: KdfDescription;
    /** Env provider: the variable prefix. */
    readonly prefix?: string;
    /** Key services and HSMs: what the provider reports. */
    readonly protection?: Protection;
    /** Key services and HSMs: the non-secret settings recorded in config.json (region, endpoint, labels, ...). */
    readonly settings?: Readonly<Record<string, string | number | boolean>>;
    /** PKCS#11: the KEK version init created inside the token (absent when one existed). */
    readonly createdVersion?: string;
  };
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw ioError('read', path, err);
  }
}

/**
 * What one init run created, to remove again when a later step fails, so a failed init leaves the directory as it
 * found it. Safety rule: only what a step of this run created is recorded (a directory this run made with `mkdir`,
 * a file it wrote with an exclusive create, a key directory or store file found missing right before the step that
 * created it), recorded once the step has succeeded; so a rollback never removes anything that existed before the
 * run, and the configuration directory itself only when this run created it.
 */
export class Rollback {
  readonly #created: string[] = [];

  /** Records that this run created `path` (a file, or a directory removed with everything in it). */
  created(path: string): void {
    this.#created.push(path);
  }

  /** Removes what was recorded, newest first; best effort: the error that caused the rollback is what matters. */
  async run(): Promise<void> {
    for (const path of this.#created.splice(0).reverse()) {
      await rm(path, { recursive: true, force: true }).catch(() => undefined);
    }
  }
}

/**
 * Refuses when `dir` already holds a configuration or a KEK file.
 * @throws KeyfoldError ALREADY_EXISTS (nothing is written).
 */
export async function assertNotInitialised(dir: string): Promise<void> {
  const path = configPath(dir);
  if (await exists(path)) {
    throw new KeyfoldError('ALREADY_EXISTS', `${dir} is already initialised (${path} exists); nothing was changed`);
  }
  const kekFile = join(dir, DEFAULT_KEYRING_DIR, KEK_FILE_NAME);
  if (await exists(kekFile)) {
    throw new KeyfoldError('ALREADY_EXISTS', `${kekFile} already exists; it is never overwritten; nothing was changed`);
  }
}

/**
 * Refuses a `dir` whose parent does not exist, before anything is created anywhere (a key in an HSM included).
 * @throws CliError IO_ERROR.
 */
export async function assertParentExists(dir: string): Promise<void> {
  if (!(await exists(dirname(dir)))) throw new CliError('IO_ERROR', `cannot create ${dir}: its parent directory does not exist`);
}

/**
 * Creates `dir` with mode 0700 (its parent must exist), or checks an existing one is private (in production).
 * @returns true when this call created it (so a rollback may remove it).
 */
async function prepareDir(dir: string, securityMode: SecurityMode): Promise<boolean> {
  // Only the directory itself is created, never missing parents: a typo in --dir should fail, not build a tree.
  let created = true;
  try {
    await mkdir(dir, { mode: 0o700 });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new CliError('IO_ERROR', `cannot create ${dir}: its parent directory does not exist`, { cause: err });
    }
    if (code !== 'EEXIST') throw ioError('create', dir, err);
    created = false;
  }
  assertPrivatePath(dir, { what: 'configuration directory', type: 'directory', securityMode });
  return created;
}

/** Records a completed install step: `dir` when this run created it, else the paths inside it that it created. */
function record(rollback: Rollback | undefined, dir: string, createdDir: boolean, ...inside: string[]): void {
  if (rollback === undefined) return;
  if (createdDir) rollback.created(dir);
  else for (const path of inside) rollback.created(path);
}

async function finish(dir: string, createdDir: boolean, provider: ProviderConfig, undo: () => Promise<void>): Promise<string> {
  const config: KeyfoldConfig = { version: CONFIG_VERSION, provider, createdAt: new Date().toISOString() };
  try {
    return await saveNewConfig(dir, config);
  } catch (err) {
    await undo();
    if (createdDir) await rm(dir, { recursive: true, force: true });
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new KeyfoldError('ALREADY_EXISTS', `${configPath(dir)} appeared while initialising; nothing was changed`, { cause: err });
    }
    throw err;
  }
}

export interface FileInstallOptions {
  readonly dir: string;
  readonly passphrase: string;
  readonly kdf?: KdfOptions;
  readonly securityMode: SecurityMode;
  /** Records what this call created, for the caller to undo when a later step fails. */
  readonly rollback?: Rollback;
}

/** Creates `dir`, a passphrase-sealed KEK file in `dir/keys` and `dir/config.json`. */
export async function installFile(options: FileInstallOptions): Promise<Installation> {
  const { dir, securityMode } = options;
  await assertNotInitialised(dir);
  const { initKekFile } = await import('@keyfold/provider-local');
  const createdDir = await prepareDir(dir, securityMode);
  const keysDir = join(dir, DEFAULT_KEYRING_DIR);
  const keysExisted = await exists(keysDir);
  const removeKekFile = async (): Promise<void> => {
    await rm(keysExisted ? join(keysDir, KEK_FILE_NAME) : keysDir, { recursive: true, force: true });
  };
  let info: Awaited<ReturnType<typeof initKekFile>>;
  try {
    info = await initKekFile({
      dir: keysDir,
      passphrase: options.passphrase,
      securityMode,
      ...(options.kdf === undefined ? {} : { kdf: options.kdf }),
    });
  } catch (err) {
    if (!keysExisted) await rm(keysDir, { recursive: true, force: true });
    if (createdDir) await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const path = await finish(dir, createdDir, { kind: 'file', keyId: info.keyId, keyring: DEFAULT_KEYRING_DIR }, removeKekFile);
  record(options.rollback, dir, createdDir, keysExisted ? join(keysDir, KEK_FILE_NAME) : keysDir, path);
  return {
    dir,
    configPath: path,
    securityMode,
    provider: {
      kind: 'file',
      keyId: info.keyId,
      activeVersion: info.activeVersion,
      versions: info.versions,
      keyring: info.path,
      kdf: info.kdf,
    },
  };
}

export interface EnvInstallOptions {
  readonly dir: string;
  readonly prefix: string | undefined;
  readonly env: NodeJS.ProcessEnv;
  readonly securityMode: SecurityMode;
  /** Records what this call created, for the caller to undo when a later step fails. */
  readonly rollback?: Rollback;
}

/** Checks the env provider's variables are usable and writes `dir/config.json` recording prefix and key id. */
export async function installEnv(options: EnvInstallOptions): Promise<Installation> {
  const { dir, securityMode } = options;
  await assertNotInitialised(dir);
  const { createEnvProvider } = await import('@keyfold/provider-local');
  const provider = createEnvProvider({
    env: options.env,
    securityMode,
    ...(options.prefix === undefined ? {} : { prefix: options.prefix }),
  });
  let description;
  try {
    description = await provider.describe();
  } finally {
    await provider.close();
  }
  const createdDir = await prepareDir(dir, securityMode);
  const path = await finish(dir, createdDir, { kind: 'env', keyId: provider.keyId, prefix: provider.prefix }, () =>
    Promise.resolve(),
  );
  record(options.rollback, dir, createdDir, path);
  return {
    dir,
    configPath: path,
    securityMode,
    provider: {
      kind: 'env',
      keyId: provider.keyId,
      activeVersion: description.activeVersion,
      versions: description.versions,
      prefix: provider.prefix,
    },
  };
}

export interface OpenedInstallOptions {
  readonly dir: string;
  readonly securityMode: SecurityMode;
  /** The provider opened from the command line (left open: the caller closes it). */
  readonly provider: KeyProvider;
  /** What to record; its keyId must be the provider's. */
  readonly config: ProviderConfig;
  readonly createdVersion?: string;
  /** Records what this call created, for the caller to undo when a later step fails. */
  readonly rollback?: Rollback;
}

/**
 * Records an installation for a provider whose key lives in a key service or an HSM: checks the provider answers
 * (describe), then creates `dir` and writes `dir/config.json`.
 */
export async function installOpened(options: OpenedInstallOptions): Promise<Installation> {
  const { dir, securityMode, provider, config } = options;
  // The install lock recorded must be the key the provider really opened.
  if (config.keyId !== provider.keyId) {
    throw new KeyfoldError('INTERNAL', `the ${config.kind} provider opened ${provider.keyId}, not the key to record (${config.keyId})`);
  }
  await assertNotInitialised(dir);
  const description = await provider.describe();
  const createdDir = await prepareDir(dir, securityMode);
  const path = await finish(dir, createdDir, config, () => Promise.resolve());
  record(options.rollback, dir, createdDir, path);
  const { kind, keyId, ...settings } = config;
  return {
    dir,
    configPath: path,
    securityMode,
    provider: {
      kind,
      keyId,
      activeVersion: description.activeVersion,
      versions: description.versions,
      protection: description.protection,
      settings,
      ...(options.createdVersion === undefined ? {} : { createdVersion: options.createdVersion }),
    },
  };
}
