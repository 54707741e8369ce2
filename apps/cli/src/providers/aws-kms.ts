/**
 * AWS KMS (`@keyfold/provider-aws`, `@aws-sdk/client-kms`): loaded only when an installation uses it.
 * Credentials always come from the AWS SDK's default chain (environment, shared profile, SSO, the instance / task /
 * pod role), read on every run; the configuration records the key ARN, region and endpoint only.
 * @module
 */
import { ConfigError, type SecurityMode } from '@keyfold/envelope-core';
import type { AwsKmsProvider } from '@keyfold/provider-aws';
import type { CommandContext } from '../command.js';
import { opt, type AwsKmsProviderConfig, type ConfigFields } from '../provider-config.js';
import { checkServiceUrl, optional, required } from './options.js';
import { keyServiceAdapter, type ProviderAdapter } from './adapter.js';
import type { InitOpened } from './types.js';

const CREDENTIALS_NOTE =
  'Credentials: the AWS SDK default chain (AWS_* variables, profile, SSO, instance or task role), read on every run; none is recorded.';

interface Target {
  readonly keyId: string;
  readonly region: string | undefined;
  readonly endpoint: string | undefined;
}

/**
 * The SDK prints a nine-line notice about its future Node.js requirement on every run under Node 20; for a CLI
 * whose stderr carries its errors that is noise. Off unless the operator set the SDK's own switch.
 */
const SDK_NODE_WARNING_SWITCH = 'AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED';

async function create(target: Target, securityMode: SecurityMode): Promise<AwsKmsProvider> {
  if (target.endpoint !== undefined) checkServiceUrl(target.endpoint, 'AWS KMS endpoint', securityMode);
  process.env[SDK_NODE_WARNING_SWITCH] ??= 'true';
  const { createAwsKmsProvider } = await import('@keyfold/provider-aws');
  return createAwsKmsProvider({
    keyId: target.keyId,
    ...(target.region === undefined ? {} : { region: target.region }),
    ...(target.endpoint === undefined ? {} : { endpoint: target.endpoint }),
  });
}

/** The region of a key ARN (`arn:aws:kms:REGION:ACCOUNT:key/ID`). */
function regionOf(arn: string): string | undefined {
  const region = arn.split(':')[3];
  return region === undefined || region === '' ? undefined : region;
}

/** `keyfold init --provider aws-kms --key-id ID|ARN|alias/NAME [--region R] [--endpoint URL]`. */
async function init(ctx: CommandContext, securityMode: SecurityMode): Promise<InitOpened<AwsKmsProviderConfig>> {
  const keyId = required(ctx, 'key-id', 'aws-kms', 'KEY (key id, key ARN, alias/NAME or alias ARN)');
  const region = optional(ctx, 'region');
  const endpoint = optional(ctx, 'endpoint');
  const provider = await create({ keyId, region, endpoint }, securityMode);
  const resolvedRegion = region ?? regionOf(provider.arn);
  if (resolvedRegion === undefined) {
    await provider.close();
    throw new ConfigError(`the key ARN ${provider.arn} names no region: pass --region`);
  }
  return {
    provider,
    config: {
      kind: 'aws-kms',
      keyId: provider.keyId,
      arn: provider.arn,
      region: resolvedRegion,
      ...(endpoint === undefined ? {} : { endpoint }),
    },
    notes: [`Key ${provider.arn} (${provider.keySpec}).`, CREDENTIALS_NOTE],
  };
}

/** Reopens the recorded key by its ARN, in its region. */
function open(_ctx: CommandContext, securityMode: SecurityMode, cfg: AwsKmsProviderConfig): Promise<AwsKmsProvider> {
  return create({ keyId: cfg.arn, region: cfg.region, endpoint: cfg.endpoint }, securityMode);
}

/** Why `kek add` does not apply, and what to run instead. */
function rotationHint(cfg: AwsKmsProviderConfig): string {
  return (
    'AWS KMS rotates the key material itself: enable automatic rotation, or run ' +
    `'aws kms rotate-key-on-demand --key-id ${cfg.arn}'; older material keeps decrypting`
  );
}

/** config.json: the key ARN and region it is reopened with, an optional endpoint. */
function parseConfig(f: ConfigFields, keyId: string): AwsKmsProviderConfig {
  return { kind: 'aws-kms', keyId, arn: f.string('arn'), region: f.string('region'), ...opt('endpoint', f.optionalString('endpoint')) };
}

/** The `aws-kms` provider: set up from options by init and migrate; the service rotates its own key. */
export const awsKmsAdapter: ProviderAdapter<'aws-kms'> = keyServiceAdapter({
  kind: 'aws-kms',
  parseConfig,
  initOptions: ['key-id', 'region', 'endpoint'],
  init,
  open,
  rotationHint,
});
