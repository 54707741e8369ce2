/**
 * The `env` provider adapter (`@keyfold/provider-local`): KEK versions in the variables `<prefix>1`, `<prefix>2`, ...
 * Loaded only when an installation uses it.
 * @module
 */
import { ConfigError, type KeyProvider, type SecurityMode } from '@keyfold/envelope-core';
import { createEnvProvider } from '@keyfold/provider-local';
import type { CommandContext } from '../command.js';
import { envKekVariables, pickVariables } from '../credential-env.js';
import { UsageError } from '../exit-codes.js';
import { installEnv, type Rollback } from '../install.js';
import type { ConfigFields, EnvProviderConfig } from '../provider-config.js';
import type { CliInstalled, ProviderAdapter } from './adapter.js';

/**
 * `keyfold init --provider env [--prefix P]`: checks the variables `<prefix><N>` are usable and records the prefix.
 * The provider is opened with the whole environment, as `installEnv` checked it.
 * @throws UsageError for a malformed `--prefix`; ConfigError when no usable variable is set.
 */
async function install(ctx: CommandContext, securityMode: SecurityMode, rollback: Rollback): Promise<CliInstalled> {
  const prefix = ctx.args.string('prefix');
  let installation;
  try {
    installation = await installEnv({ dir: ctx.dir, prefix, env: ctx.env, securityMode, rollback });
  } catch (err) {
    // A malformed --prefix is a caller mistake in the core's terms: a usage error here.
    if (err instanceof TypeError || err instanceof RangeError) throw new UsageError(err.message, ctx.name);
    throw err;
  }
  const recorded = installation.provider.prefix;
  return {
    installation,
    provider: createEnvProvider({ env: ctx.env, ...(recorded === undefined ? {} : { prefix: recorded }), securityMode }),
    reminder: `Every keyfold run needs the ${recorded ?? ''}<N> variables; keep them out of shell history and logs.`,
  };
}

/**
 * `keyfold rotate --if-due` for the env provider, which cannot add a version itself: refuses with the variable to
 * set, named with the installation's configured prefix (config.json `provider.prefix`, e.g. `MYAPP_KEK_V3`), never
 * a default.
 * @throws ConfigError (CONFIG_INVALID, exit 1) always, naming `<prefix><highest version + 1>`.
 */
async function refuseDueVersion(cfg: EnvProviderConfig, provider: KeyProvider): Promise<never> {
  const d = await provider.describe();
  const versions = d.versions.map(Number).filter((v) => Number.isSafeInteger(v));
  const newer = versions.filter((v) => v > Number(d.activeVersion));
  if (newer.length > 0) {
    // Loaded here but not active: the key store decides, once every host has it.
    const v = Math.max(...newer);
    throw new ConfigError(
      `a new version of env:${provider.keyId} is due and ${cfg.prefix}${v} is set here: once it is set wherever this installation ` +
        `runs, make it the key store's active version with 'keyfold kek activate --kek-version ${v}', then run again`,
    );
  }
  const next = versions.length === 0 ? 1 : Math.max(...versions) + 1;
  throw new ConfigError(
    `a new version of env:${provider.keyId} is due, and the env provider cannot add one itself: set ${cfg.prefix}${next} to 64 hex ` +
      'characters (generate one with: openssl rand -hex 32) wherever this installation runs, then run again',
  );
}

/** config.json: the variable prefix. */
function parseConfig(f: ConfigFields, keyId: string): EnvProviderConfig {
  return { kind: 'env', keyId, prefix: f.string('prefix') };
}

/**
 * The env provider: created by `keyfold init` itself; a migration target (`--prefix`); its versions are made by the
 * operator. It sees only the variables `credential-env.ts` lists for its prefix: what it reads is what child
 * processes lose.
 */
export const envAdapter: ProviderAdapter<'env'> = {
  kind: 'env',
  parseConfig,
  init: { by: 'cli', install },
  initOptions: ['prefix'],
  migrate: {
    supported: true,
    openTarget: async (ctx, securityMode) => {
      const prefix = ctx.args.string('prefix');
      const provider = createEnvProvider({ env: ctx.env, securityMode, ...(prefix === undefined ? {} : { prefix }) });
      await provider.describe();
      return { provider, config: { kind: 'env', keyId: provider.keyId, prefix: provider.prefix }, notes: [] };
    },
  },
  // eslint-disable-next-line @typescript-eslint/require-await -- a failure rejects, as every adapter's open does
  open: async (ctx, loaded, cfg) =>
    (createEnvProvider({ prefix: cfg.prefix, env: pickVariables(ctx.env, envKekVariables(cfg.prefix)), securityMode: loaded.securityMode })),
  kekAdd: {
    by: 'elsewhere',
    hint: (cfg) =>
      `the env provider's key-encryption keys are the variables ${cfg.prefix}1, ${cfg.prefix}2, ...: create the next ` +
      "one yourself (64 hex characters, e.g. 'openssl rand -hex 32') and pass it to every run and host; then " +
      "'keyfold kek activate --kek-version N' makes the key store's active version (the one every process seals under) that one",
  },
  credentialVariables: (cfg) => envKekVariables(cfg.prefix),
  addDueVersion: (_loaded, cfg, provider) => refuseDueVersion(cfg, provider),
  probeExtra: undefined,
};
