/**
 * The local providers of `@keyfold/provider-local`: the passphrase-sealed file keyring and versioned environment
 * variables. Loaded only when an installation uses one of them.
 * @module
 */
import type { KeyProvider } from '@keyfold/envelope-core';
import { createEnvProvider, createFileProvider, type FileProvider } from '@keyfold/provider-local';
import type { CommandContext } from '../command.js';
import { envKekVariables, pickVariables } from '../credential-env.js';
import { assertInstallLock, keyringDir, type LoadedConfig } from '../config.js';
import type { EnvProviderConfig, FileProviderConfig } from '../provider-config.js';
import { readPassphrase } from '../prompt.js';
import type { KekAdded } from './types.js';

/**
 * Opens the file or env provider; the file provider asks for its passphrase only when it needs it. The env provider
 * sees only the variables `credential-env.ts` lists for its prefix: what it reads is what child processes lose.
 */
export async function open(ctx: CommandContext, loaded: LoadedConfig, cfg: FileProviderConfig | EnvProviderConfig): Promise<KeyProvider> {
  if (cfg.kind === 'env') {
    return createEnvProvider({ prefix: cfg.prefix, env: pickVariables(ctx.env, envKekVariables(cfg.prefix)), securityMode: loaded.securityMode });
  }
  return openFile(ctx, loaded, cfg);
}

function openFile(ctx: CommandContext, loaded: LoadedConfig, cfg: FileProviderConfig): Promise<FileProvider> {
  return createFileProvider({
    dir: keyringDir(loaded.dir, cfg),
    passphrase: () => readPassphrase({ env: ctx.env, stdin: ctx.stdin, stderr: ctx.stderr, confirm: false, command: ctx.name }),
    securityMode: loaded.securityMode,
  });
}

/**
 * `keyfold kek add` for the file provider: a new random KEK version in the keyring, made active. The keyring is
 * opened first (one key derivation from the passphrase), which checks the passphrase and the install lock before
 * anything is written; the version is added under the keyring lock, atomically (what `addFileKekVersion` does,
 * without deriving the keyring keys a second time).
 * @throws KeyfoldError WRONG_PASSPHRASE (nothing written), PolicyError PROVIDER_MISMATCH, ProviderError UNAVAILABLE
 *   when another process holds the keyring lock.
 */
export async function addKekVersion(ctx: CommandContext, loaded: LoadedConfig, cfg: FileProviderConfig): Promise<KekAdded> {
  const provider = await openFile(ctx, loaded, cfg);
  try {
    await assertInstallLock(provider, cfg, loaded.path);
    const version = await provider.rotate();
    const d = await provider.describe();
    return { kind: cfg.kind, keyId: cfg.keyId, version, activeVersion: d.activeVersion, versions: [...d.versions] };
  } finally {
    await provider.close();
  }
}
