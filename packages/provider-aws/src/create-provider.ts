/**
 * `createAwsKmsProvider`: resolves the key once (DescribeKey), then returns the symmetric or the RSA flavour.
 *
 * Retries: the SDK retries on its own (standard mode, 3 attempts) and so does Keyfold's shared resilience. Two loops
 * must not be stacked, so the provider picks one:
 * - a client the provider creates gets `maxAttempts: 1`, and Keyfold's policy retries (full-jitter backoff, one
 *   deadline over all attempts, a circuit breaker that sees every attempt), as for every other provider;
 * - a client you pass keeps its own retry strategy, and the provider's policy defaults to one attempt, throttled or
 *   not (deadline, breaker and the adaptive rate limit still apply) unless you pass `resilience.retry` yourself.
 * @module
 */
import { KMSClient, type KeyMetadata } from '@aws-sdk/client-kms';
import { ConfigError, KeyfoldError, ProviderError, Resilience, type BaseProviderOptions, type ResilienceOptions } from '@keyfold/envelope-core';
import type { AwsKmsProvider, AwsKmsProviderInit, AwsKmsProviderOptions } from './aws-kms-provider.js';
import { KmsCalls } from './kms-client.js';
import { mapKmsError } from './kms-errors.js';
import { assertRecipient } from './recipient.js';
import { RsaKmsProvider } from './rsa-key-provider.js';
import { SymmetricKmsProvider } from './symmetric-key-provider.js';

const SUPPORTED_SPECS = new Set(['SYMMETRIC_DEFAULT', 'RSA_2048', 'RSA_3072', 'RSA_4096']);
const DEFAULT_DEADLINE_MS = 10_000;

function assertOptions(o: unknown): asserts o is AwsKmsProviderOptions {
  if (o === null || typeof o !== 'object') throw new TypeError('options must be an object with keyId');
  const x = o as Record<string, unknown>;
  if (typeof x.keyId !== 'string' || x.keyId.trim() === '') throw new TypeError('keyId must be a KMS key id, key ARN, alias name or alias ARN');
  for (const f of ['region', 'endpoint'] as const) {
    if (x[f] !== undefined && (typeof x[f] !== 'string' || x[f] === '')) throw new TypeError(`${f} must be a non-empty string`);
  }
  if (x.client !== undefined && (x.client === null || typeof (x.client as { send?: unknown }).send !== 'function')) {
    throw new TypeError('client must have a send(command, options) method, like KMSClient');
  }
  if (x.grantTokens !== undefined) {
    if (!Array.isArray(x.grantTokens) || x.grantTokens.some((t) => typeof t !== 'string' || t === '')) {
      throw new TypeError('grantTokens must be an array of non-empty strings');
    }
    if (x.grantTokens.length > 10) throw new RangeError(`grantTokens holds ${x.grantTokens.length} tokens; KMS accepts at most 10`);
  }
  if (x.recipient !== undefined) assertRecipient(x.recipient);
}

function resilienceFor(options: AwsKmsProviderOptions): BaseProviderOptions['resilience'] {
  if (options.resilience !== undefined) return options.resilience;
  if (options.client !== undefined) return { retry: { maxAttempts: 1, maxThrottledAttempts: 1 } } satisfies ResilienceOptions;
  return undefined;
}

function deadlineOf(r: BaseProviderOptions['resilience']): number | undefined {
  if (r === false) return DEFAULT_DEADLINE_MS;
  if (r?.deadlineMs === false) return undefined;
  return r?.deadlineMs ?? DEFAULT_DEADLINE_MS;
}

/**
 * Creates a provider for one KMS key. Calls DescribeKey once to resolve aliases to the key ARN (stored in every
 * wrapped key) and to pick the symmetric or RSA implementation. Credentials come from the SDK's default chain unless
 * `credentials` or `client` is given. IAM permissions used: `kms:DescribeKey`; symmetric keys `kms:GenerateDataKey`,
 * `kms:Encrypt`, `kms:Decrypt`, `kms:ReEncrypt*`, `kms:ListKeyRotations` (optional), `kms:RotateKeyOnDemand` (only
 * for `rotate()`); RSA keys `kms:GetPublicKey`, `kms:Decrypt`.
 *
 * @returns a {@link SymmetricKmsProvider} or an {@link RsaKmsProvider} (both {@link AwsKmsProvider}).
 * @throws TypeError / RangeError for malformed options. ProviderError `KEY_NOT_FOUND` (no such key or alias),
 *   `ACCESS_DENIED`, `UNAVAILABLE`, `THROTTLED`, `TIMEOUT` from DescribeKey; ConfigError `CONFIG_INVALID` for a key
 *   that is not ENCRYPT_DECRYPT or of an unsupported spec, or when no region or credentials can be found.
 * @example
 * ```ts
 * import { createEnvelope } from '@keyfold/envelope-core';
 * import { createAwsKmsProvider } from '@keyfold/provider-aws';
 *
 * const kms = await createAwsKmsProvider({ keyId: 'alias/keyfold-kek', region: 'eu-west-1' });
 * const envelope = createEnvelope({ providers: [kms], cache: { maxAge: 60_000 } });
 * const sealed = await envelope.seal('secret', { table: 'users' });
 * ```
 */
export async function createAwsKmsProvider(options: AwsKmsProviderOptions): Promise<AwsKmsProvider> {
  assertOptions(options);
  const resilience = resilienceFor(options);
  const ownedClient = options.client
    ? undefined
    : new KMSClient({
        maxAttempts: 1, // Keyfold's shared resilience retries; see the module comment.
        ...(options.region ? { region: options.region } : {}),
        ...(options.endpoint ? { endpoint: options.endpoint } : {}),
        ...(options.credentials ? { credentials: options.credentials } : {}),
      });
  const client = options.client ?? ownedClient;
  if (!client) throw new TypeError('client is required');
  const calls = new KmsCalls(client);
  let metadata: KeyMetadata | undefined;
  const deadline = deadlineOf(resilience);
  try {
    const grants = options.grantTokens && options.grantTokens.length > 0 ? { GrantTokens: [...options.grantTokens] } : {};
    // The first read runs under the same policy (retries, deadline) the provider will use, so a throttled or
    // flaky service does not fail the provider's creation on its first answer.
    const describeOnce = async (signal: AbortSignal | undefined): Promise<KeyMetadata | undefined> => {
      try {
        return (await calls.describeKey({ KeyId: options.keyId, ...grants }, signal)).KeyMetadata;
      } catch (err) {
        throw (err instanceof KeyfoldError ? err : mapKmsError(err, options.keyId)) ?? err;
      }
    };
    const policy = resilience === false ? undefined : new Resilience(resilience);
    metadata = policy
      ? await policy.run(`aws-kms DescribeKey of ${options.keyId}`, describeOnce)
      : await describeOnce(deadline === undefined ? undefined : AbortSignal.timeout(deadline));
  } catch (err) {
    ownedClient?.destroy();
    if (err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError') && !(err as { code?: unknown }).code) {
      throw new ProviderError('TIMEOUT', `AWS KMS DescribeKey of ${options.keyId} did not finish within ${deadline ?? 0} ms`, { cause: err });
    }
    throw (err instanceof KeyfoldError ? err : mapKmsError(err, options.keyId)) ??
      new ProviderError('INTERNAL', `AWS KMS DescribeKey of ${options.keyId} failed unexpectedly`, { cause: err });
  }
  try {
    if (!metadata?.Arn) throw new ProviderError('INTERNAL', `AWS KMS DescribeKey of ${options.keyId} returned no key ARN`);
    if (metadata.KeyUsage !== undefined && metadata.KeyUsage !== 'ENCRYPT_DECRYPT') {
      throw new ConfigError(`AWS KMS key ${metadata.Arn} has KeyUsage ${metadata.KeyUsage}; a KEK must be ENCRYPT_DECRYPT`);
    }
    const spec = metadata.KeySpec ?? metadata.CustomerMasterKeySpec ?? 'SYMMETRIC_DEFAULT';
    if (!SUPPORTED_SPECS.has(spec)) {
      throw new ConfigError(`AWS KMS key ${metadata.Arn} has KeySpec ${spec}; supported: ${[...SUPPORTED_SPECS].join(', ')}`);
    }
    let region = options.region;
    if (!region && options.client === undefined && ownedClient) region = await ownedClient.config.region();
    const init: AwsKmsProviderInit = {
      calls,
      metadata: { ...metadata, Arn: metadata.Arn, KeySpec: spec },
      ownedClient,
      grantTokens: options.grantTokens,
      recipient: options.recipient,
      region: region ?? metadata.Arn.split(':')[3],
    };
    const base: BaseProviderOptions = resilience === undefined ? {} : { resilience };
    return spec === 'SYMMETRIC_DEFAULT' ? new SymmetricKmsProvider(init, base) : new RsaKmsProvider(init, base);
  } catch (err) {
    ownedClient?.destroy();
    throw err;
  }
}
