/**
 * Google Cloud KMS (`@keyfold/provider-gcp`, `@google-cloud/kms`): loaded only when an installation uses it.
 * Credentials are Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS, gcloud, the metadata server),
 * found by google-auth-library on every run; the configuration records the key name, transport and endpoint only.
 *
 * A plaintext connection without credentials (`insecure`) is for emulators: automatic for an endpoint on this
 * machine, and allowed for another host only in development mode.
 * @module
 */
import { ConfigError, type SecurityMode } from '@keyfold/envelope-core';
import type { GcpClientOptions, GcpKmsProvider } from '@keyfold/provider-gcp';
import type { CommandContext } from '../command.js';
import { UsageError } from '../exit-codes.js';
import { isLoopbackHost, opt, type ConfigFields, type GcpKmsProviderConfig, type GcpTransport } from '../provider-config.js';
import { choice, optional, required } from './options.js';
import { keyServiceAdapter, type ProviderAdapter } from './adapter.js';
import type { InitOpened } from './types.js';

interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** `HOST:PORT`, `HOST` (port 443) or `[IPv6]:PORT`. @throws ConfigError. */
function parseEndpoint(endpoint: string): HostPort {
  let url: URL;
  try {
    url = new URL(`https://${endpoint}`);
  } catch {
    throw new ConfigError(`Cloud KMS endpoint ${JSON.stringify(endpoint)} is not HOST:PORT`);
  }
  if (url.pathname !== '/' || url.search !== '' || url.username !== '' || url.password !== '' || endpoint.includes('/')) {
    throw new ConfigError(`Cloud KMS endpoint ${JSON.stringify(endpoint)} must be HOST:PORT, without a scheme or path`);
  }
  return { host: url.hostname.replace(/^\[|\]$/g, ''), port: url.port === '' ? 443 : Number(url.port) };
}

async function clientOptions(cfg: Omit<GcpKmsProviderConfig, 'kind' | 'keyId'>, securityMode: SecurityMode): Promise<GcpClientOptions> {
  const rest = cfg.transport === 'rest' ? { fallback: 'rest' } : {};
  if (cfg.endpoint === undefined) return rest;
  const { host, port } = parseEndpoint(cfg.endpoint);
  if (cfg.insecure !== true) return { ...rest, apiEndpoint: host, port };
  if (!isLoopbackHost(host) && securityMode === 'production') {
    throw new ConfigError(
      `a plaintext connection without credentials to Cloud KMS endpoint ${cfg.endpoint} is refused in production: ` +
        'it is for emulators on this machine (or KEYFOLD_SECURITY_MODE=development)',
    );
  }
  // grpc and the auth client must come from the google-gax copy @google-cloud/kms uses (instanceof checks).
  const gax = await import('google-gax');
  const authClient = new gax.googleAuthLibrary.PassThroughClient();
  return cfg.transport === 'rest'
    ? { fallback: 'rest', protocol: 'http', apiEndpoint: host, port, authClient }
    : { apiEndpoint: host, port, sslCreds: gax.grpc.credentials.createInsecure(), authClient };
}

/**
 * `keyfold init --provider gcp-kms --key-name projects/P/locations/L/keyRings/R/cryptoKeys/K
 * [--endpoint HOST:PORT] [--transport grpc|rest] [--insecure]`.
 */
async function init(ctx: CommandContext, securityMode: SecurityMode): Promise<InitOpened<GcpKmsProviderConfig>> {
  const keyName = required(ctx, 'key-name', 'gcp-kms', 'projects/P/locations/L/keyRings/R/cryptoKeys/K');
  const transport = choice<GcpTransport>(ctx, 'transport', ['grpc', 'rest'], 'grpc');
  const endpoint = optional(ctx, 'endpoint');
  const insecureFlag = ctx.args.flag('insecure');
  if (insecureFlag && endpoint === undefined) throw new UsageError('--insecure needs --endpoint HOST:PORT', ctx.name);
  const insecure = endpoint !== undefined && (insecureFlag || isLoopbackHost(parseEndpoint(endpoint).host));
  const cfg: GcpKmsProviderConfig = {
    kind: 'gcp-kms',
    keyId: keyName,
    transport,
    ...(endpoint === undefined ? {} : { endpoint }),
    ...(insecure ? { insecure } : {}),
  };
  const provider = await open(ctx, securityMode, cfg);
  return {
    provider,
    config: { ...cfg, keyId: provider.keyId },
    notes: [
      insecure
        ? `Plaintext ${transport} to ${endpoint ?? ''} without credentials (an emulator; never for Google's service).`
        : 'Credentials: Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS, gcloud, metadata server), read on every run; none is recorded.',
    ],
  };
}

/** Reopens the recorded CryptoKey over the recorded transport. */
async function open(_ctx: CommandContext, securityMode: SecurityMode, cfg: GcpKmsProviderConfig): Promise<GcpKmsProvider> {
  const clientOpts = await clientOptions(cfg, securityMode);
  const { createGcpKmsProvider } = await import('@keyfold/provider-gcp');
  return createGcpKmsProvider({ keyName: cfg.keyId, clientOptions: clientOpts });
}

/** Why `kek add` does not apply, and what to run instead. */
function rotationHint(cfg: GcpKmsProviderConfig): string {
  const m = /^projects\/([^/]+)\/locations\/([^/]+)\/keyRings\/([^/]+)\/cryptoKeys\/([^/]+)$/.exec(cfg.keyId);
  const command =
    m === null
      ? 'gcloud kms keys versions create --primary ...'
      : `gcloud kms keys versions create --project ${m[1] ?? ''} --location ${m[2] ?? ''} --keyring ${m[3] ?? ''} ` +
        `--key ${m[4] ?? ''} --primary`;
  return `Cloud KMS rotates keys itself: set a rotation period on the key, or run '${command}'; older versions keep decrypting`;
}

/** config.json: the transport (default gRPC), an optional endpoint and the plaintext-connection switch. */
function parseConfig(f: ConfigFields, keyId: string): GcpKmsProviderConfig {
  return {
    kind: 'gcp-kms',
    keyId,
    transport: f.oneOf<GcpTransport>('transport', ['grpc', 'rest'], 'grpc'),
    ...opt('endpoint', f.optionalString('endpoint')),
    ...opt('insecure', f.optionalBoolean('insecure')),
  };
}

/** The `gcp-kms` provider: set up from options by init and migrate; the service rotates its own key. */
export const gcpKmsAdapter: ProviderAdapter<'gcp-kms'> = keyServiceAdapter({
  kind: 'gcp-kms',
  parseConfig,
  initOptions: ['key-name', 'endpoint', 'transport', 'insecure'],
  init,
  open,
  rotationHint,
});
