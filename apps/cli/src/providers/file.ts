/**
 * The `file` provider adapter (`@keyfold/provider-local`): KEKs in a passphrase-sealed file. Loaded only when an
 * installation uses it.
 * @module
 */
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { KeyfoldError, writeFileAtomic, type KeyProvider, type SecurityMode } from '@keyfold/envelope-core';
import { createFileProvider, KEK_FILE_NAME, withKekFileLock, type FileProvider, type KdfOptions } from '@keyfold/provider-local';
import type { CommandContext } from '../command.js';
import { assertInstallLock, keyringDir, type LoadedConfig } from '../config.js';
import { UsageError } from '../exit-codes.js';
import { assertNotInitialised, installFile, type Rollback } from '../install.js';
import type { ConfigFields, FileProviderConfig } from '../provider-config.js';
import { readPassphrase } from '../prompt.js';
import { NO_CREDENTIAL_VARIABLES, type CliInstalled, type KekVersionAdded, type ProviderAdapter } from './adapter.js';

/** `--kdf scrypt|pbkdf2` of `keyfold init`. @throws UsageError for another value. */
function kdfOption(ctx: CommandContext): KdfOptions | undefined {
  const kdf = ctx.args.string('kdf');
  if (kdf === undefined) return undefined;
  if (kdf === 'pbkdf2') return { name: 'pbkdf2-sha256' };
  if (kdf === 'scrypt') return { name: 'scrypt' };
  throw new UsageError(`--kdf must be "scrypt" or "pbkdf2"; got ${JSON.stringify(kdf)}`, ctx.name);
}

/**
 * `keyfold init [--kdf scrypt|pbkdf2]`: asks for a new passphrase (twice), seals a random KEK under it in a new KEK
 * file, and opens that file again as later commands do (the KEK file key derived once more from the passphrase).
 * An existing installation is refused before the passphrase is asked for.
 * @throws UsageError for a bad `--kdf`; KeyfoldError ALREADY_EXISTS.
 */
async function install(ctx: CommandContext, securityMode: SecurityMode, rollback: Rollback): Promise<CliInstalled> {
  const kdf = kdfOption(ctx);
  await assertNotInitialised(ctx.dir);
  const passphrase = await readPassphrase({ env: ctx.env, stdin: ctx.stdin, stderr: ctx.stderr, confirm: true, command: ctx.name });
  const installation = await installFile({ dir: ctx.dir, passphrase, securityMode, rollback, ...(kdf === undefined ? {} : { kdf }) });
  const kekFile = installation.provider.keyring;
  if (kekFile === undefined) throw new KeyfoldError('INTERNAL', 'the new installation records no KEK file');
  return {
    installation,
    provider: await createFileProvider({ dir: dirname(kekFile), passphrase, securityMode }),
    reminder: 'Keep the passphrase safe: without it nothing sealed with this KEK file can be opened.',
  };
}

/** config.json: the KEK file directory. */
function parseConfig(f: ConfigFields, keyId: string): FileProviderConfig {
  return { kind: 'file', keyId, keyring: f.string('keyring') };
}

/** Opens the file provider; it asks for its passphrase only when it needs it. */
function openFile(ctx: CommandContext, loaded: LoadedConfig, cfg: FileProviderConfig): Promise<FileProvider> {
  return createFileProvider({
    dir: keyringDir(loaded.dir, cfg),
    passphrase: () => readPassphrase({ env: ctx.env, stdin: ctx.stdin, stderr: ctx.stderr, confirm: false, command: ctx.name }),
    securityMode: loaded.securityMode,
  });
}

/**
 * `keyfold kek add` for the file provider: a new random KEK version in the KEK file, made active. The KEK file is
 * opened first (one key derivation from the passphrase), which checks the passphrase and the install lock before
 * anything is written; the version is added under the KEK file lock, atomically (what `addFileKekVersion` does,
 * without deriving the KEK file keys a second time).
 * `beforeAdding` runs with the opened provider before the version is added (its failure adds nothing).
 * @throws KeyfoldError WRONG_PASSPHRASE (nothing written), PolicyError PROVIDER_MISMATCH, ProviderError UNAVAILABLE
 *   when another process holds the KEK file lock.
 */
async function addKekVersion(
  ctx: CommandContext,
  loaded: LoadedConfig,
  cfg: FileProviderConfig,
  beforeAdding: ((provider: KeyProvider) => Promise<void>) | undefined,
): Promise<KekVersionAdded> {
  const provider = await openFile(ctx, loaded, cfg);
  try {
    await assertInstallLock(provider, cfg, loaded.path);
    // The caller's use of the opened provider (kek add opens the key store's audit key with it) comes first.
    await beforeAdding?.(provider);
    const dir = keyringDir(loaded.dir, cfg);
    const before = await readFile(join(dir, KEK_FILE_NAME));
    const version = await provider.rotate();
    const after = await readFile(join(dir, KEK_FILE_NAME));
    const d = await provider.describe();
    return {
      added: { kind: cfg.kind, keyId: cfg.keyId, version, activeVersion: d.activeVersion, versions: [...d.versions] },
      undo: () => restoreKekFile(dir, before, after, version),
    };
  } finally {
    await provider.close();
  }
}

/**
 * Undoes `kek add` on the KEK file when the key store then refused to record the new version: puts back the
 * KEK file as it was (`before`), holding the KEK file lock (provider-local's `withKekFileLock`, the one every KEK
 * file writer takes), with the core's `writeFileAtomic` (temporary file, fsync, rename, fsync of the directory).
 * Safety rule: only when the file is still exactly what `kek add` wrote (`after`) and `after` differs from
 * `before` by the one version added (no other writer's change in between), so nothing but that version is lost.
 * @throws KeyfoldError INTERNAL naming the version left in the KEK file when it cannot be undone safely.
 */
async function restoreKekFile(dir: string, before: Buffer, after: Buffer, version: string): Promise<void> {
  const path = join(dir, KEK_FILE_NAME);
  const left = (why: string, cause?: unknown): KeyfoldError =>
    new KeyfoldError(
      'INTERNAL',
      `the KEK file ${path} keeps KEK version ${version}, which the key store did not record (${why}): run 'keyfold kek list' and 'keyfold status' before adding another`,
      cause === undefined ? {} : { cause },
    );
  const docBefore = JSON.parse(before.toString('utf8')) as { versions?: unknown[] };
  const docAfter = JSON.parse(after.toString('utf8')) as { versions?: unknown[] };
  const oldVersions = docBefore.versions ?? [];
  const newVersions = docAfter.versions ?? [];
  if (newVersions.length !== oldVersions.length + 1 || !isDeepStrictEqual(newVersions.slice(0, -1), oldVersions)) {
    throw left('the KEK file changed in between');
  }
  let locked = false;
  try {
    await withKekFileLock(dir, async () => {
      locked = true;
      if (!(await readFile(path)).equals(after)) throw left('the KEK file changed in between');
      await writeFileAtomic(path, before, { mode: 0o600 });
    });
  } catch (err) {
    if (!locked) throw left('another process holds the KEK file lock', err);
    throw err instanceof KeyfoldError ? err : left('the KEK file could not be rewritten', err);
  }
}

/** The `file` provider: created by `keyfold init` itself, a migration target never, KEK versions added by keyfold. */
export const fileAdapter: ProviderAdapter<'file'> = {
  kind: 'file',
  parseConfig,
  init: { by: 'cli', install },
  initOptions: ['kdf'],
  migrate: { supported: false, reason: 'migrating to a new KEK file is not supported: choose env, a key service or an HSM' },
  open: openFile,
  kekAdd: { by: 'keyfold', add: addKekVersion },
  // KEYFOLD_PASSPHRASE, a fixed name.
  credentialVariables: () => NO_CREDENTIAL_VARIABLES,
  // The file provider's own rotate() adds the version: the rotation engine calls it.
  addDueVersion: undefined,
  probeExtra: undefined,
};
