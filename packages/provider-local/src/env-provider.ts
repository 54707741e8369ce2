/**
 * The env provider: KEK versions in environment variables `KEYFOLD_KEK_V1`, `KEYFOLD_KEK_V2`, ... (64 hex
 * characters each), optionally read from a dotenv-style file instead of (or on top of) the environment.
 * @module
 */
import { readFileSync } from 'node:fs';
import {
  ConfigError,
  assertPrivatePath,
  constantTimeEqual,
  resolveSecurityMode,
  wipe,
  type BaseProviderOptions,
  type SecurityMode,
} from '@keyfold/envelope-core';
import { MAX_DOTENV_BYTES, parseDotenv } from './dotenv.js';
import { FACTORY, LocalKekProvider, assertFactory, assertKeyId, compareVersions, localBaseOptions } from './local-provider.js';

/**
 * Options of {@link createEnvProvider}.
 * @example
 * ```ts
 * const options: EnvProviderOptions = { prefix: 'MYAPP_KEK_V', envFile: '/run/secrets/keys.env', activeVersion: 2 };
 * ```
 */
export interface EnvProviderOptions extends BaseProviderOptions {
  /** Variable name prefix; versions are `<prefix>1`, `<prefix>2`, ... Default `KEYFOLD_KEK_V`. */
  prefix?: string;
  /** Where to read the variables. Default `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
  /**
   * A dotenv-style file to read the same variables from. Its values take precedence over `env` for the same
   * name (the file is the deliberate, reviewed source; the environment may carry stale values). In production it
   * must be mode 0600.
   */
  envFile?: string;
  /**
   * The version new wraps use. Default: the `<keyId>_ACTIVE` variable (`KEYFOLD_KEK_ACTIVE`) if set, else the
   * highest version. Set it while rolling out a new version: deploy `V3` everywhere first, then activate it, so no
   * process wraps under a version that another process cannot unwrap yet. A pinned version that is not set here
   * does not stop the provider from opening: its writes fail with `KEY_NOT_FOUND` naming the variable to add, and
   * every version that is set still unwraps. With a key store, the store's active version decides instead
   * (`bindProviderToStore` in `@keyfold/keystore`).
   */
  activeVersion?: string | number;
  /** `production` (default, or `KEYFOLD_SECURITY_MODE`) or `development`. */
  securityMode?: SecurityMode;
}

const PREFIX = /^[A-Za-z_][A-Za-z0-9_]*$/;
const HEX64 = /^[0-9a-fA-F]{64}$/;
const VERSION = /^[1-9][0-9]{0,8}$/;
const GENERATE_HINT = 'generate one with: openssl rand -hex 32';

/**
 * A provider whose KEK versions come from environment variables. Create it with {@link createEnvProvider}.
 * Methods throw as `BaseKeyProvider` documents: `UNWRAP_FAILED` for any bad wrapped key, `PROVIDER_CLOSED` after
 * `close()`, TypeError / RangeError for malformed arguments.
 * @example
 * ```ts
 * const provider: EnvProvider = createEnvProvider({ env: { KEYFOLD_KEK_V1: hex } });
 * console.log(provider.keyId, provider.prefix); // KEYFOLD_KEK KEYFOLD_KEK_V
 * ```
 */
export class EnvProvider extends LocalKekProvider {
  override readonly kind = 'env';
  override readonly protection = 'software' as const;
  override readonly keyId: string;
  /** The variable prefix (`KEYFOLD_KEK_V`). */
  readonly prefix: string;
  readonly #details: Readonly<Record<string, string | number | boolean>>;
  protected override readonly canRotate = false;

  /** @internal Use {@link createEnvProvider}. */
  constructor(
    token: typeof FACTORY,
    init: { keyId: string; prefix: string; keks: Map<string, Uint8Array>; active: string; envFile: string | undefined },
    options: BaseProviderOptions,
  ) {
    assertFactory(token, 'createEnvProvider');
    super(options);
    this.keyId = init.keyId;
    this.prefix = init.prefix;
    this.#details = {
      prefix: init.prefix,
      source: init.envFile === undefined ? 'environment' : 'environment and file',
      ...(init.envFile === undefined ? {} : { envFile: init.envFile }),
    };
    this.setKeks(init.keks, init.active);
  }

  protected override describeDetails(): Readonly<Record<string, string | number | boolean>> {
    return this.#details;
  }

  protected override missingVersionHint(version: string): string {
    return `the variable ${this.prefix}${version} to this process's environment (64 hex characters, the same value as on the hosts that have it)`;
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Decodes 64 validated hex characters straight into a buffer of its own (no shared Buffer pool copy). */
function decodeHexKey(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) {
    out[i] = (nibble(hex.charCodeAt(2 * i)) << 4) | nibble(hex.charCodeAt(2 * i + 1));
  }
  return out;
}

function nibble(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  return c - 55; // A-F (validated by HEX64)
}

function readEnvFile(path: string, securityMode: SecurityMode): Map<string, string> {
  const st = assertPrivatePath(path, { what: 'secrets file', type: 'file', securityMode });
  if (st.size > MAX_DOTENV_BYTES) throw new ConfigError(`secrets file ${path} is larger than ${MAX_DOTENV_BYTES} bytes`);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new ConfigError(`secrets file ${path} cannot be read: ${(cause as NodeJS.ErrnoException).code ?? 'error'}`, { cause });
  }
  return parseDotenv(text, `secrets file ${path}`);
}

/**
 * Creates a provider from versioned KEK variables: `<prefix>1`, `<prefix>2`, ... each exactly 64 hex characters
 * (32 bytes). Every variable matching `^<prefix>(\d+)$` is a version; the active one is the highest unless
 * `activeVersion` or `<keyId>_ACTIVE` says otherwise (a pinned version that is not set is not an error here: writes
 * fail with `KEY_NOT_FOUND` naming the variable, unwraps work). The key id stored in envelopes is the prefix without
 * a trailing `_V` (`KEYFOLD_KEK`). `withWriteVersion(v)` gives a view that writes under version `v`, which is
 * how a key store's active version drives it.
 *
 * Rotation: add `<prefix><N+1>`, restart (or create a new provider); keys wrapped under older versions keep
 * unwrapping as long as their variables stay set. The provider cannot add a version itself
 * (`capabilities.rotate` is false).
 *
 * Errors name the variable and what is wrong with it (its length, a non-hex character), never its value.
 *
 * @throws ConfigError (`CONFIG_INVALID`) when no version is set, a value is not 64 hex characters, two versions
 *   hold the same key, a version number is malformed, or `envFile` cannot be read or parsed. PolicyError (`INSECURE_PERMISSIONS`) when, in production, `envFile` is readable by group or other.
 *   TypeError / RangeError for a malformed `prefix` or `activeVersion`.
 * @example
 * ```ts
 * // KEYFOLD_KEK_V1=$(openssl rand -hex 32) in the environment
 * import { createEnvProvider } from '@keyfold/provider-local';
 *
 * const provider = createEnvProvider();
 * const wrapped = await provider.wrapKey(dataKey, { table: 'users' });
 * const again = await provider.unwrapKey(wrapped, { table: 'users' });
 * await provider.close();
 * ```
 */
export function createEnvProvider(options: EnvProviderOptions = {}): EnvProvider {
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  const prefix = options.prefix ?? 'KEYFOLD_KEK_V';
  if (typeof prefix !== 'string' || !PREFIX.test(prefix)) {
    throw new TypeError(`prefix must be an environment variable name prefix ([A-Za-z_][A-Za-z0-9_]*); got ${JSON.stringify(prefix)}`);
  }
  const keyId = prefix.endsWith('_V') && prefix.length > 2 ? prefix.slice(0, -2) : prefix;
  assertKeyId(keyId, 'the key id derived from prefix');
  const securityMode = resolveSecurityMode(options.securityMode);
  const env = options.env ?? process.env;
  if (env === null || typeof env !== 'object') throw new TypeError('env must be an object of variables');

  const vars = new Map<string, string>();
  for (const [name, value] of Object.entries(env)) if (typeof value === 'string') vars.set(name, value);
  if (options.envFile !== undefined) {
    if (typeof options.envFile !== 'string' || options.envFile === '') throw new TypeError('envFile must be a non-empty path');
    for (const [name, value] of readEnvFile(options.envFile, securityMode)) vars.set(name, value);
  }

  const pattern = new RegExp(`^${escapeRegExp(prefix)}(\\d+)$`);
  const keks = new Map<string, Uint8Array>();
  const names = new Map<string, string>();
  try {
    for (const [name, value] of vars) {
      const m = pattern.exec(name);
      if (!m) continue;
      const version = m[1] as string;
      if (!VERSION.test(version)) {
        throw new ConfigError(`${name}: KEK version numbers are 1 to 999999999 without leading zeros; rename it`);
      }
      if (!HEX64.test(value)) throw new ConfigError(describeBadValue(name, value));
      const kek = decodeHexKey(value);
      for (const [otherVersion, other] of keks) {
        if (constantTimeEqual(kek, other)) {
          wipe(kek);
          throw new ConfigError(
            `${name} holds the same key as ${names.get(otherVersion) ?? otherVersion}; each version needs its own key (${GENERATE_HINT})`,
          );
        }
      }
      keks.set(version, kek);
      names.set(version, name);
    }
    if (keks.size === 0) {
      const where = options.envFile === undefined ? 'in the environment' : `in the environment or in ${options.envFile}`;
      throw new ConfigError(`no KEK found ${where}: set ${prefix}1 to 64 hex characters (${GENERATE_HINT})`);
    }
    const active = chooseActive(options.activeVersion, vars.get(`${keyId}_ACTIVE`), `${keyId}_ACTIVE`, keks);
    return new EnvProvider(
      FACTORY,
      { keyId, prefix, keks, active, envFile: options.envFile },
      localBaseOptions(options),
    );
  } catch (err) {
    for (const kek of keks.values()) wipe(kek);
    throw err;
  }
}

/** Says what is wrong with a KEK value without revealing any of it. */
function describeBadValue(name: string, value: string): string {
  const expected = `${name} must be 64 hex characters (32 bytes)`;
  if (value.length !== 64) {
    const trimmed = value.trim();
    const hint = trimmed.length === 64 && trimmed.length !== value.length ? ' (including surrounding whitespace; remove it)' : '';
    return `${expected}; got ${value.length}${hint}`;
  }
  const bad = [...value].findIndex((c) => !/[0-9a-fA-F]/.test(c));
  return `${expected}; the character at position ${bad + 1} is not a hex digit`;
}

function chooseActive(
  option: string | number | undefined,
  fromEnv: string | undefined,
  envName: string,
  keks: ReadonlyMap<string, Uint8Array>,
): string {
  if (option !== undefined) {
    if (typeof option !== 'string' && typeof option !== 'number') throw new TypeError('activeVersion must be a string or number');
    const wanted = String(option);
    if (!VERSION.test(wanted)) throw new RangeError(`activeVersion must be a version number like 2; got ${JSON.stringify(wanted)}`);
    return wanted;
  }
  if (fromEnv !== undefined && fromEnv !== '') {
    const wanted = fromEnv.trim();
    if (!VERSION.test(wanted)) throw new ConfigError(`${envName} must be a version number like 2`);
    return wanted;
  }
  // A pinned version this host does not have yet is not a reason to refuse to open: writes fail with KEY_NOT_FOUND
  // naming the variable (see LocalKekProvider), and everything sealed under the versions set here still opens.
  const known = [...keks.keys()].sort(compareVersions);
  return known[known.length - 1] as string;
}
