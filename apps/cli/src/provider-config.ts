/**
 * The `provider` section of `config.json`, one shape per provider kind, and its strict validation. Only what is
 * needed to find and reopen the key is recorded: kinds, key ids, addresses, labels, the *names* of variables and
 * files that hold secrets. Never a token, PIN, passphrase, secret id or credential: those are read from the
 * environment (or a PIN file) on every run.
 *
 * The rules of each kind's section live in that kind's adapter (`providers/<kind>.ts`, `parseConfig`); this module
 * holds the shapes, the field reader they use and the dispatch. No static runtime imports beyond the core's error
 * class: the adapter of the recorded kind is imported when a configuration is parsed.
 * @module
 */
import { ConfigError } from '@keyfold/envelope-core';

/** Every provider kind the CLI can record, in help order. */
export const PROVIDER_KINDS = ['file', 'env', 'aws-kms', 'vault-transit', 'gcp-kms', 'azure-kv', 'pkcs11'] as const;
export type ProviderKind = (typeof PROVIDER_KINDS)[number];

export function isProviderKind(v: unknown): v is ProviderKind {
  return typeof v === 'string' && (PROVIDER_KINDS as readonly string[]).includes(v);
}

export interface FileProviderConfig {
  readonly kind: 'file';
  readonly keyId: string;
  /** KEK file directory, relative to the configuration directory (or absolute). */
  readonly keyring: string;
}

export interface EnvProviderConfig {
  readonly kind: 'env';
  readonly keyId: string;
  /** Prefix of the versioned variables (`<prefix>1`, ...). */
  readonly prefix: string;
}

export interface AwsKmsProviderConfig {
  readonly kind: 'aws-kms';
  /** `provider.keyId` at init: the key ARN (region-less for a multi-Region key). The install lock. */
  readonly keyId: string;
  /** The key ARN in `region`: what is passed as `keyId` when the provider is reopened. */
  readonly arn: string;
  readonly region: string;
  /** A VPC / FIPS endpoint or a local emulator. */
  readonly endpoint?: string;
}

export type VaultAuthMethod = 'token' | 'approle';

export interface VaultTransitProviderConfig {
  readonly kind: 'vault-transit';
  /** `[<namespace>/]<mount>/keys/<name>`. */
  readonly keyId: string;
  readonly keyName: string;
  /** The Vault address recorded at init (`--vault-addr`, else `VAULT_ADDR`). */
  readonly endpoint: string;
  readonly mount: string;
  readonly namespace?: string;
  /** `token`: VAULT_TOKEN; `approle`: KEYFOLD_VAULT_ROLE_ID + KEYFOLD_VAULT_SECRET_ID. */
  readonly auth: VaultAuthMethod;
}

export type GcpTransport = 'grpc' | 'rest';

export interface GcpKmsProviderConfig {
  readonly kind: 'gcp-kms';
  /** The CryptoKey resource name `projects/P/locations/L/keyRings/R/cryptoKeys/K`. */
  readonly keyId: string;
  readonly transport: GcpTransport;
  /** `HOST:PORT` of a private endpoint or a local emulator; absent: Google's. */
  readonly endpoint?: string;
  /** Plaintext connection without credentials (loopback emulators; other hosts in development mode only). */
  readonly insecure?: boolean;
}

export type AzureAlgorithm = 'RSA-OAEP-256' | 'A256KW';

export interface AzureKvProviderConfig {
  readonly kind: 'azure-kv';
  /** The versionless kid. */
  readonly keyId: string;
  /** The kid given at init (versioned kids pin new wraps to that version). */
  readonly kid: string;
  readonly algorithm: AzureAlgorithm;
  /** PEM file of extra CA certificates trusted for this vault (absolute path). */
  readonly caFile?: string;
}

export type Pkcs11Mechanism = 'AES_GCM' | 'AES_KEY_WRAP_PAD';

export interface Pkcs11ProviderConfig {
  readonly kind: 'pkcs11';
  /** The KEK label (versions are the token objects `<label>.v<N>`). */
  readonly keyId: string;
  /** Path of the PKCS#11 library. */
  readonly library: string;
  /** Exactly one of slot / tokenLabel. */
  readonly slot?: number;
  readonly tokenLabel?: string;
  readonly mechanism: Pkcs11Mechanism;
  readonly sessions?: number;
  /** Exactly one of pinEnv (a variable name) / pinFile (an absolute path). */
  readonly pinEnv?: string;
  readonly pinFile?: string;
}

export type ProviderConfig =
  | FileProviderConfig
  | EnvProviderConfig
  | AwsKmsProviderConfig
  | VaultTransitProviderConfig
  | GcpKmsProviderConfig
  | AzureKvProviderConfig
  | Pkcs11ProviderConfig;

/** Reads typed fields of config.json's `provider` section, failing with CONFIG_INVALID naming the field. */
export class ConfigFields {
  constructor(
    private readonly raw: Record<string, unknown>,
    private readonly path: string,
  ) {}

  #invalid(field: string, what: string): ConfigError {
    return new ConfigError(`${this.path}: "provider.${field}" ${what}`);
  }

  string(field: string): string {
    const v = this.raw[field];
    if (typeof v !== 'string' || v.length === 0) throw this.#invalid(field, 'must be a non-empty string');
    return v;
  }

  optionalString(field: string): string | undefined {
    return this.raw[field] === undefined ? undefined : this.string(field);
  }

  oneOf<T extends string>(field: string, values: readonly T[], fallback?: T): T {
    const v = this.raw[field];
    if (v === undefined && fallback !== undefined) return fallback;
    if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) {
      throw this.#invalid(field, `must be one of ${values.map((x) => JSON.stringify(x)).join(', ')}`);
    }
    return v as T;
  }

  optionalInteger(field: string, min: number, max: number): number | undefined {
    const v = this.raw[field];
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
      throw this.#invalid(field, `must be an integer from ${min} to ${max}`);
    }
    return v;
  }

  optionalBoolean(field: string): boolean | undefined {
    const v = this.raw[field];
    if (v === undefined) return undefined;
    if (typeof v !== 'boolean') throw this.#invalid(field, 'must be true or false');
    return v;
  }

  /** Exactly one of two fields is set. */
  exactlyOne(a: string, b: string): void {
    if ((this.raw[a] === undefined) === (this.raw[b] === undefined)) {
      throw new ConfigError(`${this.path}: exactly one of "provider.${a}" and "provider.${b}" must be set`);
    }
  }
}

/** Adds `[key]: value` only when the value is defined (exactOptionalPropertyTypes). */
export function opt<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

/**
 * Validates the `provider` object of a configuration file: `keyId` and `kind` here, the rest by the kind's adapter.
 * @throws ConfigError naming the field that is wrong.
 */
export async function parseProviderConfig(p: Record<string, unknown>, path: string): Promise<ProviderConfig> {
  const fields = new ConfigFields(p, path);
  const keyId = fields.string('keyId');
  if (!isProviderKind(p.kind)) {
    throw new ConfigError(
      `${path}: unknown "provider.kind" ${JSON.stringify(p.kind)}; this keyfold supports ` +
        `${PROVIDER_KINDS.map((k) => `"${k}"`).join(', ')}`,
    );
  }
  const { providerAdapter } = await import('./providers/registry.js');
  return (await providerAdapter(p.kind)).parseConfig(fields, keyId);
}

/** True for a name of this machine: `localhost`, 127.0.0.0/8, `::1` (plaintext to these never crosses a network). */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}
