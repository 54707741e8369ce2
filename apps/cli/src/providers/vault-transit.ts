/**
 * HashiCorp Vault / OpenBao transit (`@keyfold/provider-vault`): loaded only when an installation uses it.
 * The address, mount and namespace are recorded at init; the token (VAULT_TOKEN) or the AppRole credentials
 * (KEYFOLD_VAULT_ROLE_ID, KEYFOLD_VAULT_SECRET_ID) are read from the environment on every run, never recorded.
 * @module
 */
import { ConfigError, type SecurityMode } from '@keyfold/envelope-core';
import type { VaultTransitProvider } from '@keyfold/provider-vault';
import type { CommandContext } from '../command.js';
import { readCredential, VAULT_ROLE_ID_ENV, VAULT_SECRET_ID_ENV, VAULT_TOKEN_ENV, type CredentialVariable } from '../credential-env.js';
import { UsageError } from '../exit-codes.js';
import { opt, type ConfigFields, type VaultAuthMethod, type VaultTransitProviderConfig } from '../provider-config.js';
import { choice, optional, required } from './options.js';
import { keyServiceAdapter, type ProviderAdapter } from './adapter.js';
import type { InitOpened } from './types.js';

export { VAULT_ROLE_ID_ENV, VAULT_SECRET_ID_ENV };

type Target = Omit<VaultTransitProviderConfig, 'kind' | 'keyId'>;

function fromEnv(ctx: CommandContext, name: CredentialVariable, hint: string): string {
  const v = readCredential(ctx.env, name);
  if (v === undefined || v === '') throw new ConfigError(`${name} is not set: ${hint}`);
  return v;
}

async function create(ctx: CommandContext, securityMode: SecurityMode, t: Target): Promise<VaultTransitProvider> {
  const { createVaultTransitProvider } = await import('@keyfold/provider-vault');
  const base = {
    keyName: t.keyName,
    endpoint: t.endpoint,
    mount: t.mount,
    ...(t.namespace === undefined ? {} : { namespace: t.namespace }),
    // Only what this installation uses: the recorded address and namespace win over VAULT_ADDR / VAULT_NAMESPACE.
    env: {},
    securityMode,
  };
  if (t.auth === 'approle') {
    const roleId = fromEnv(ctx, VAULT_ROLE_ID_ENV, 'this installation logs in to Vault with AppRole');
    fromEnv(ctx, VAULT_SECRET_ID_ENV, 'this installation logs in to Vault with AppRole');
    return createVaultTransitProvider({
      ...base,
      appRole: { roleId, secretId: () => fromEnv(ctx, VAULT_SECRET_ID_ENV, 'needed for the AppRole login') },
    });
  }
  const token = fromEnv(
    ctx,
    VAULT_TOKEN_ENV,
    `this installation authenticates to Vault with a token (or initialise with --auth approle and ${VAULT_ROLE_ID_ENV} / ${VAULT_SECRET_ID_ENV})`,
  );
  return createVaultTransitProvider({ ...base, token });
}

/**
 * `keyfold init --provider vault-transit --key-name NAME [--vault-addr URL] [--mount transit] [--namespace NS]
 * [--auth token|approle]`.
 */
async function init(ctx: CommandContext, securityMode: SecurityMode): Promise<InitOpened<VaultTransitProviderConfig>> {
  const keyName = required(ctx, 'key-name', 'vault-transit', 'NAME (the transit key)');
  const endpoint = optional(ctx, 'vault-addr') ?? (ctx.env.VAULT_ADDR || undefined);
  if (endpoint === undefined) throw new UsageError('--provider vault-transit needs --vault-addr URL or VAULT_ADDR', ctx.name);
  const mount = optional(ctx, 'mount') ?? 'transit';
  const namespace = (await import('@keyfold/provider-vault')).resolveVaultNamespace(optional(ctx, 'namespace'), ctx.env);
  const auth = choice<VaultAuthMethod>(ctx, 'auth', ['token', 'approle'], readCredential(ctx.env, VAULT_ROLE_ID_ENV) ? 'approle' : 'token');
  const target: Target = { keyName, endpoint, mount, ...(namespace === undefined ? {} : { namespace }), auth };
  const provider = await create(ctx, securityMode, target);
  const credentials =
    auth === 'approle'
      ? `AppRole login with ${VAULT_ROLE_ID_ENV} and ${VAULT_SECRET_ID_ENV}`
      : 'the token in VAULT_TOKEN';
  return {
    provider,
    config: { kind: 'vault-transit', keyId: provider.keyId, ...target },
    notes: [`Credentials: ${credentials}, read on every run; none is recorded.`],
  };
}

/** Reopens the recorded transit key at the recorded address. */
function open(ctx: CommandContext, securityMode: SecurityMode, cfg: VaultTransitProviderConfig): Promise<VaultTransitProvider> {
  return create(ctx, securityMode, cfg);
}

/** Why `kek add` does not apply, and what to run instead. */
function rotationHint(cfg: VaultTransitProviderConfig): string {
  const ns = cfg.namespace === undefined ? '' : `VAULT_NAMESPACE=${cfg.namespace} `;
  return `Vault rotates transit keys itself: run '${ns}vault write -f ${cfg.mount}/keys/${cfg.keyName}/rotate'; older versions keep decrypting`;
}

/** config.json: key name, address, mount, optional namespace and the auth method (never a token or secret id). */
function parseConfig(f: ConfigFields, keyId: string): VaultTransitProviderConfig {
  return {
    kind: 'vault-transit',
    keyId,
    keyName: f.string('keyName'),
    endpoint: f.string('endpoint'),
    mount: f.string('mount'),
    ...opt('namespace', f.optionalString('namespace')),
    auth: f.oneOf<VaultAuthMethod>('auth', ['token', 'approle']),
  };
}

/** The `vault-transit` provider: set up from options by init and migrate; the service rotates its own key. */
export const vaultTransitAdapter: ProviderAdapter<'vault-transit'> = keyServiceAdapter({
  kind: 'vault-transit',
  parseConfig,
  initOptions: ['key-name', 'vault-addr', 'mount', 'namespace', 'auth'],
  init,
  open,
  rotationHint,
});
