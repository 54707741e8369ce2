/**
 * Azure Key Vault / Managed HSM (`@keyfold/provider-azure`, `@azure/keyvault-keys`): loaded only when an
 * installation uses it. The credential is `@azure/identity`'s DefaultAzureCredential (environment variables,
 * workload / managed identity, Azure CLI login), itself imported only when it is used.
 *
 * `KEYFOLD_AZURE_STATIC_TOKEN` replaces it with a fixed bearer token, for emulators in tests and development: it is
 * refused in production mode (a long-lived token in an environment variable is a credential nobody rotates).
 * @module
 */
import { ConfigError, type SecurityMode } from '@keyfold/envelope-core';
import type { AzureKeyVaultProvider, TokenCredentialLike } from '@keyfold/provider-azure';
import type { CommandContext } from '../command.js';
import { AZURE_STATIC_TOKEN_ENV, readCredential } from '../credential-env.js';
import { isLoopbackHost, opt, type AzureAlgorithm, type AzureKvProviderConfig, type ConfigFields } from '../provider-config.js';
import { absolutePath, choice, optional, readCaFile, required } from './options.js';
import { keyServiceAdapter, type ProviderAdapter } from './adapter.js';
import type { InitOpened } from './types.js';

export { AZURE_STATIC_TOKEN_ENV };

/** Key Vault and Managed HSM hosts of the Azure clouds: the SDK's challenge resource check applies to these. */
const AZURE_HOST_SUFFIXES = [
  '.vault.azure.net',
  '.managedhsm.azure.net',
  '.vault.azure.cn',
  '.managedhsm.azure.cn',
  '.vault.usgovcloudapi.net',
  '.managedhsm.usgovcloudapi.net',
  '.vault.microsoftazure.de',
];

function isAzureHost(hostname: string): boolean {
  const h = hostname.toLowerCase();
  return AZURE_HOST_SUFFIXES.some((s) => h.endsWith(s));
}

async function credentialFor(ctx: CommandContext, securityMode: SecurityMode): Promise<TokenCredentialLike> {
  const token = readCredential(ctx.env, AZURE_STATIC_TOKEN_ENV);
  if (token !== undefined && token !== '') {
    if (securityMode === 'production') {
      throw new ConfigError(
        `${AZURE_STATIC_TOKEN_ENV} is a fixed bearer token for emulators in tests and development, refused in production ` +
          'mode: unset it to use DefaultAzureCredential (environment, workload or managed identity, Azure CLI login), ' +
          'or set KEYFOLD_SECURITY_MODE=development against an emulator',
      );
    }
    return { getToken: () => Promise.resolve({ token, expiresOnTimestamp: Date.now() + 3_600_000 }) };
  }
  const { DefaultAzureCredential } = await import('@azure/identity');
  return new DefaultAzureCredential();
}

/**
 * SDK options for the vault's host. The bearer challenge's resource check stays on for Azure's own hosts; it is
 * turned off only for this machine (an emulator) or, in development mode, another host, since with it off the
 * token for the challenged resource is sent to whatever host the kid names.
 */
function clientOptions(cfg: Pick<AzureKvProviderConfig, 'kid' | 'caFile'>, securityMode: SecurityMode): Record<string, unknown> {
  let hostname = '';
  try {
    hostname = new URL(cfg.kid).hostname;
  } catch {
    // The provider rejects the kid with a clear message.
  }
  const bypass = hostname !== '' && !isAzureHost(hostname) && (isLoopbackHost(hostname) || securityMode === 'development');
  return {
    ...(bypass ? { disableChallengeResourceVerification: true } : {}),
    ...(cfg.caFile === undefined ? {} : { tlsOptions: { ca: readCaFile(cfg.caFile) } }),
  };
}

async function create(ctx: CommandContext, securityMode: SecurityMode, cfg: Omit<AzureKvProviderConfig, 'kind' | 'keyId'>): Promise<AzureKeyVaultProvider> {
  const options = clientOptions(cfg, securityMode);
  const { createAzureKeyVaultProvider } = await import('@keyfold/provider-azure');
  return createAzureKeyVaultProvider({
    keyId: cfg.kid,
    credential: await credentialFor(ctx, securityMode),
    algorithm: cfg.algorithm,
    clientOptions: options,
  });
}

/** `keyfold init --provider azure-kv --key-id KID [--algorithm RSA-OAEP-256|A256KW] [--ca-file FILE]`. */
async function init(ctx: CommandContext, securityMode: SecurityMode): Promise<InitOpened<AzureKvProviderConfig>> {
  const kid = required(ctx, 'key-id', 'azure-kv', 'KID (https://VAULT.vault.azure.net/keys/NAME[/VERSION])');
  const algorithm = choice<AzureAlgorithm>(ctx, 'algorithm', ['RSA-OAEP-256', 'A256KW'], 'RSA-OAEP-256');
  const caFileOption = optional(ctx, 'ca-file');
  const caFile = caFileOption === undefined ? undefined : absolutePath(ctx, caFileOption);
  const target = { kid, algorithm, ...(caFile === undefined ? {} : { caFile }) };
  const provider = await create(ctx, securityMode, target);
  const static_ = (readCredential(ctx.env, AZURE_STATIC_TOKEN_ENV) ?? '') !== '';
  return {
    provider,
    config: { kind: 'azure-kv', keyId: provider.keyId, ...target },
    notes: [
      static_
        ? `Credentials: the fixed token in ${AZURE_STATIC_TOKEN_ENV} (development only; refused in production), read on every run.`
        : 'Credentials: DefaultAzureCredential (AZURE_* variables, workload or managed identity, Azure CLI login), read on every run; none is recorded.',
    ],
  };
}

/** Reopens the recorded key (the kid given at init) with the recorded algorithm. */
function open(ctx: CommandContext, securityMode: SecurityMode, cfg: AzureKvProviderConfig): Promise<AzureKeyVaultProvider> {
  return create(ctx, securityMode, cfg);
}

/** Why `kek add` does not apply, and what to run instead. */
function rotationHint(cfg: AzureKvProviderConfig): string {
  return (
    `Key Vault rotates keys itself: set a rotation policy, or run 'az keyvault key rotate --id ${cfg.keyId}'` +
    (cfg.kid === cfg.keyId ? '' : ` (this installation is pinned to ${cfg.kid}: initialise with the versionless kid to follow rotations)`) +
    '; older versions keep unwrapping'
  );
}

/** config.json: the kid given at init, the wrapping algorithm and an optional CA file. */
function parseConfig(f: ConfigFields, keyId: string): AzureKvProviderConfig {
  return {
    kind: 'azure-kv',
    keyId,
    kid: f.string('kid'),
    algorithm: f.oneOf<AzureAlgorithm>('algorithm', ['RSA-OAEP-256', 'A256KW']),
    ...opt('caFile', f.optionalString('caFile')),
  };
}

/** The `azure-kv` provider: set up from options by init and migrate; the service rotates its own key. */
export const azureKvAdapter: ProviderAdapter<'azure-kv'> = keyServiceAdapter({
  kind: 'azure-kv',
  parseConfig,
  initOptions: ['key-id', 'algorithm', 'ca-file'],
  init,
  open,
  rotationHint,
});
