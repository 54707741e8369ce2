/**
 * What symmetric and RSA KMS keys share: identity, the client adapter, grant tokens, the Recipient hook, error
 * mapping, and closing the client the provider created.
 * @module
 */
import type { KMSClientConfig, KeyMetadata } from '@aws-sdk/client-kms';
import { BaseKeyProvider, type BaseProviderOptions, type KeyfoldError } from '@keyfold/envelope-core';
import type { KmsCalls, KmsClientLike } from './kms-client.js';
import { mapKmsError } from './kms-errors.js';
import type { KmsRecipient } from './recipient.js';

/**
 * Options of {@link createAwsKmsProvider}.
 * @example
 * ```ts
 * const options: AwsKmsProviderOptions = { keyId: 'alias/keyfold-kek', region: 'eu-west-1', grantTokens: [token] };
 * ```
 */
export interface AwsKmsProviderOptions extends BaseProviderOptions {
  /**
   * The KMS key: key id, key ARN, alias name (`alias/...`), alias ARN, or a multi-Region key. Aliases are resolved
   * once, at creation: wrapped keys record the key's ARN, so re-pointing the alias later does not orphan them.
   */
  keyId: string;
  /** AWS region. Default: the SDK's (AWS_REGION, the profile). Ignored when `client` is given. */
  region?: string;
  /** Endpoint URL (VPC endpoint, FIPS endpoint, a local emulator). Ignored when `client` is given. */
  endpoint?: string;
  /**
   * Explicit credentials. Default: the SDK's default chain (environment, profile, SSO, IAM role of the instance,
   * task or pod). Ignored when `client` is given.
   */
  credentials?: KMSClientConfig['credentials'];
  /**
   * A client to use instead of one the provider creates (a configured `KMSClient`, or anything with its `send`).
   * The provider does not destroy a client it was given. Because such a client retries on its own (3 attempts in the
   * SDK's standard mode), the provider then defaults to `resilience: { retry: { maxAttempts: 1, maxThrottledAttempts: 1 } }`.
   */
  client?: KmsClientLike;
  /** Grant tokens sent with every call (for grants that are not yet eventually consistent). */
  grantTokens?: readonly string[];
  /** Decrypt / GenerateDataKey through a Nitro Enclave recipient. See {@link KmsRecipient}. */
  recipient?: KmsRecipient;
}

/** Constructor input of the key classes (after the factory resolved the key). */
export interface AwsKmsProviderInit {
  readonly calls: KmsCalls;
  readonly metadata: KeyMetadata & { Arn: string };
  readonly ownedClient: { destroy(): void } | undefined;
  readonly grantTokens: readonly string[] | undefined;
  readonly recipient: KmsRecipient | undefined;
  readonly region: string | undefined;
}

/**
 * The identity stored in wrapped keys: the key ARN, or for a multi-Region key the ARN without its region, so every
 * replica (same key material, one ARN per region) opens what any other sealed.
 */
export function identityOf(metadata: KeyMetadata & { Arn: string }): string {
  if (metadata.MultiRegion !== true) return metadata.Arn;
  const parts = metadata.Arn.split(':');
  parts[3] = '';
  return parts.join(':');
}

/**
 * A KMS key as a Keyfold KeyProvider. Created by {@link createAwsKmsProvider}, which returns the symmetric or the RSA
 * flavour depending on the key.
 *
 * Methods throw as `BaseKeyProvider` documents: `UNWRAP_FAILED` for any wrapped key KMS refuses
 * (InvalidCiphertextException, IncorrectKeyException, a context mismatch, a relabelled version), and the mapped
 * codes `KEY_NOT_FOUND`, `KEY_DISABLED`, `ACCESS_DENIED`, `THROTTLED`, `UNAVAILABLE`, `TIMEOUT`, `CONFIG_INVALID`
 * with the SDK error as `cause`.
 * @example
 * ```ts
 * const provider: AwsKmsProvider = await createAwsKmsProvider({ keyId: 'alias/keyfold-kek' });
 * console.log(provider.arn, provider.keySpec);
 * ```
 */
export abstract class AwsKmsProvider extends BaseKeyProvider {
  override readonly kind = 'aws-kms';
  override readonly protection = 'kms' as const;
  override readonly keyId: string;
  /** The key's ARN in the client's region, sent as KeyId in every call. */
  readonly arn: string;
  /** SYMMETRIC_DEFAULT, RSA_2048, RSA_3072 or RSA_4096. */
  readonly keySpec: string;
  protected readonly calls: KmsCalls;
  protected readonly grantTokens: string[] | undefined;
  protected readonly recipient: KmsRecipient | undefined;
  protected readonly region: string | undefined;
  protected readonly multiRegion: boolean;
  readonly #ownedClient: { destroy(): void } | undefined;

  /** @internal Use {@link createAwsKmsProvider}. */
  constructor(init: AwsKmsProviderInit, options: BaseProviderOptions) {
    super(options);
    this.arn = init.metadata.Arn;
    this.keyId = identityOf(init.metadata);
    this.keySpec = init.metadata.KeySpec ?? 'SYMMETRIC_DEFAULT';
    this.multiRegion = init.metadata.MultiRegion === true;
    this.calls = init.calls;
    this.grantTokens = init.grantTokens && init.grantTokens.length > 0 ? [...init.grantTokens] : undefined;
    this.recipient = init.recipient;
    this.region = init.region;
    this.#ownedClient = init.ownedClient;
  }

  /** `GrantTokens` for a request, when configured. */
  protected grants(): { GrantTokens?: string[] } {
    return this.grantTokens ? { GrantTokens: this.grantTokens } : {};
  }

  protected baseDetails(metadata: KeyMetadata | undefined): Record<string, string | number | boolean> {
    return {
      arn: this.arn,
      keySpec: this.keySpec,
      multiRegion: this.multiRegion,
      recipient: this.recipient !== undefined,
      grantTokens: this.grantTokens?.length ?? 0,
      ...(this.region ? { region: this.region } : {}),
      ...(metadata?.KeyState ? { keyState: metadata.KeyState } : {}),
    };
  }

  protected override mapBackendError(err: unknown): KeyfoldError | undefined {
    return mapKmsError(err, this.arn);
  }

  protected override _close(): Promise<void> {
    this.#ownedClient?.destroy();
    return Promise.resolve();
  }
}
