/**
 * The few Cloud KMS calls the provider makes, described by their shape (the AWS Encryption SDK `kms_types.ts`
 * approach): a `KeyManagementServiceClient` of `@google-cloud/kms` 5.x fits, over gRPC or the REST fallback, and so
 * does any object with the same methods. Nothing here loads the SDK: the default client is created on demand.
 * @module
 */

/** A 64-bit checksum field as the SDK hands it: `{ value }` with a number, a decimal string or a Long. */
export interface Int64ValueLike {
  value?: number | string | { toString(): string } | null;
}

/** Bytes as the SDK hands them: a Buffer/Uint8Array (gRPC) or, in some paths, a base64 string. */
export type BytesLike = Uint8Array | string | null | undefined;

/** Per-call options the provider passes: gax's own retry is switched off (see the README, "Retries"). */
export interface GcpCallOptions {
  retry?: null;
  timeout?: number;
}

export interface EncryptRequest {
  name: string;
  plaintext: Uint8Array;
  additionalAuthenticatedData: Uint8Array;
  plaintextCrc32c: { value: number };
  additionalAuthenticatedDataCrc32c: { value: number };
}

export interface EncryptResponse {
  name?: string | null;
  ciphertext?: BytesLike;
  ciphertextCrc32c?: Int64ValueLike | null;
  verifiedPlaintextCrc32c?: boolean | null;
  verifiedAdditionalAuthenticatedDataCrc32c?: boolean | null;
  protectionLevel?: string | number | null;
}

export interface DecryptRequest {
  name: string;
  ciphertext: Uint8Array;
  additionalAuthenticatedData: Uint8Array;
  ciphertextCrc32c: { value: number };
  additionalAuthenticatedDataCrc32c: { value: number };
}

export interface DecryptResponse {
  plaintext?: BytesLike;
  plaintextCrc32c?: Int64ValueLike | null;
  usedPrimary?: boolean | null;
}

export interface CryptoKeyVersionLike {
  name?: string | null;
  state?: string | number | null;
  protectionLevel?: string | number | null;
  algorithm?: string | number | null;
}

export interface CryptoKeyLike {
  name?: string | null;
  purpose?: string | number | null;
  primary?: CryptoKeyVersionLike | null;
  versionTemplate?: { protectionLevel?: string | number | null; algorithm?: string | number | null } | null;
}

/**
 * The shape of the Cloud KMS client the provider uses: `KeyManagementServiceClient` from `@google-cloud/kms`.
 * Every call returns a promise of an array whose first element is the response (the gax convention); the promise
 * may carry a `cancel()` (gax's cancellable promise), which the provider calls when its deadline passes.
 * @example
 * ```ts
 * import { KeyManagementServiceClient } from '@google-cloud/kms';
 * const client: GcpKmsClient = new KeyManagementServiceClient({ fallback: 'rest' });
 * ```
 */
export interface GcpKmsClient {
  encrypt(request: EncryptRequest, options?: GcpCallOptions): Promise<readonly [EncryptResponse, ...unknown[]]>;
  decrypt(request: DecryptRequest, options?: GcpCallOptions): Promise<readonly [DecryptResponse, ...unknown[]]>;
  getCryptoKey(request: { name: string }, options?: GcpCallOptions): Promise<readonly [CryptoKeyLike, ...unknown[]]>;
  listCryptoKeyVersions(
    request: { parent: string; filter?: string },
    options?: GcpCallOptions,
  ): Promise<readonly [readonly CryptoKeyVersionLike[], ...unknown[]]>;
  createCryptoKeyVersion(
    request: { parent: string; cryptoKeyVersion: Record<string, never> },
    options?: GcpCallOptions,
  ): Promise<readonly [CryptoKeyVersionLike, ...unknown[]]>;
  updateCryptoKeyPrimaryVersion(
    request: { name: string; cryptoKeyVersionId: string },
    options?: GcpCallOptions,
  ): Promise<readonly [CryptoKeyLike, ...unknown[]]>;
  close?(): Promise<void>;
}

/**
 * Options for the client the provider creates when none is given: passed to `new KeyManagementServiceClient(...)`
 * as they are (`apiEndpoint`, `port`, `fallback: 'rest'`, `protocol`, `authClient`, `credentials`, `keyFilename`,
 * `projectId`, `sslCreds`, ...). Without credentials options the client uses Application Default Credentials from
 * google-auth-library.
 * @example
 * ```ts
 * const clientOptions: GcpClientOptions = { fallback: 'rest', apiEndpoint: 'cloudkms.googleapis.com' };
 * ```
 */
export type GcpClientOptions = Readonly<Record<string, unknown>>;

/** Creates the default client, loading `@google-cloud/kms` only now (so importing this package stays cheap). */
export async function createDefaultClient(options: GcpClientOptions): Promise<GcpKmsClient> {
  const kms = await import('@google-cloud/kms');
  const Client = kms.KeyManagementServiceClient;
  const client: GcpKmsClient = new Client(options as ConstructorParameters<typeof Client>[0]);
  return client;
}

/**
 * Awaits a gax call, cancelling it when `signal` aborts (the shared deadline), so a slow request does not keep a
 * stream or socket busy after the caller gave up.
 */
export async function callWithSignal<T>(call: Promise<T>, signal: AbortSignal): Promise<T> {
  const cancellable = call as Promise<T> & { cancel?: () => void };
  const onAbort = (): void => {
    if (typeof cancellable.cancel === 'function') cancellable.cancel();
  };
  if (signal.aborted) onAbort();
  else signal.addEventListener('abort', onAbort, { once: true });
  try {
    return await call;
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

/** Bytes of a response field as a fresh Uint8Array that owns its memory; `undefined` when absent. */
export function responseBytes(value: BytesLike): Uint8Array | undefined {
  if (value === null || value === undefined) return undefined;
  if (typeof value === 'string') {
    const buf = Buffer.from(value, 'base64');
    const out = new Uint8Array(buf.length);
    out.set(buf);
    buf.fill(0);
    return out;
  }
  if (value instanceof Uint8Array) {
    const out = new Uint8Array(value.length);
    out.set(value);
    return out;
  }
  return undefined;
}

/** The numeric value of an Int64Value checksum field, or `undefined` when absent or not a valid uint32. */
export function int64Value(field: Int64ValueLike | null | undefined): number | undefined {
  if (field === null || field === undefined) return undefined;
  const v = field.value;
  if (v === null || v === undefined) return undefined;
  const text = typeof v === 'number' ? String(v) : typeof v === 'string' ? v : v.toString();
  if (!/^\d{1,10}$/.test(text)) return undefined;
  const n = Number(text);
  return n <= 0xffffffff ? n : undefined;
}

/** Enum fields arrive as names (gRPC with `enums: String`, REST) or as numbers: normalise to the name. */
export function enumName(value: string | number | null | undefined, names: Readonly<Record<number, string>>): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return names[value];
  return undefined;
}

/** google.cloud.kms.v1.CryptoKeyVersion.CryptoKeyVersionState, by number (the ones the provider tells apart). */
export const VERSION_STATES: Readonly<Record<number, string>> = {
  0: 'CRYPTO_KEY_VERSION_STATE_UNSPECIFIED',
  1: 'ENABLED',
  2: 'DISABLED',
  3: 'DESTROYED',
  4: 'DESTROY_SCHEDULED',
  5: 'PENDING_GENERATION',
};

/** google.cloud.kms.v1.ProtectionLevel, by number. */
export const PROTECTION_LEVELS: Readonly<Record<number, string>> = {
  0: 'PROTECTION_LEVEL_UNSPECIFIED',
  1: 'SOFTWARE',
  2: 'HSM',
  3: 'EXTERNAL',
  4: 'EXTERNAL_VPC',
  5: 'HSM_SINGLE_TENANT',
};

/** google.cloud.kms.v1.CryptoKey.CryptoKeyPurpose, by number. */
export const PURPOSES: Readonly<Record<number, string>> = {
  0: 'CRYPTO_KEY_PURPOSE_UNSPECIFIED',
  1: 'ENCRYPT_DECRYPT',
  5: 'ASYMMETRIC_SIGN',
  6: 'ASYMMETRIC_DECRYPT',
  7: 'RAW_ENCRYPT_DECRYPT',
  9: 'MAC',
  10: 'KEY_ENCAPSULATION',
};
