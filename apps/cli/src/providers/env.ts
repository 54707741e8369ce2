/**
 * The `env` provider adapter (`@keyfold/provider-local`): KEK versions in the variables `<prefix>1`, `<prefix>2`, ...
 * Loaded only when an installation uses it.
 * @module
 */
import { createEnvProvider } from '@keyfold/provider-local';
import { envKekVariables, pickVariables } from '../credential-env.js';
import type { ProviderAdapter } from './adapter.js';

/**
 * The env provider: created by `keyfold init` itself; a migration target (`--prefix`); its versions are made by the
 * operator. It sees only the variables `credential-env.ts` lists for its prefix: what it reads is what child
 * processes lose.
 */
export const envAdapter: ProviderAdapter<'env'> = {
  kind: 'env',
  init: { by: 'cli' },
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
};
