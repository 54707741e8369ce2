/**
 * The environment variables that hold Keyfold's own credentials: the one list the CLI reads them by and strips them
 * by. Every variable the CLI or its providers read a secret from is named here (a fixed name), or derived from a
 * provider configuration by that kind's adapter (`credentialVariables` in src/providers/*: the env provider's
 * `<prefix><N>` / `<keyId>_ACTIVE`, the PKCS#11 `pinEnv`); the provider modules read through these names, so a
 * credential cannot be read without being listed.
 *
 * Security rule: the child processes keyfold starts (`secrets exec`, the editor of `secrets edit`) get none of these
 * unless the operator names one (`secrets exec --pass-env NAME`): a process that only needs an application's
 * secrets must not receive the root keys that open every secret of the installation.
 *
 * Not listed: the cloud SDKs' default credential chains (AWS_*, AZURE_*, GOOGLE_APPLICATION_CREDENTIALS). They are
 * the machine's identity, shared with the applications that run on it, and read by the vendor SDKs rather than by
 * keyfold; `secrets exec --pristine` drops them along with everything else.
 * @module
 */

/** The file provider's passphrase. */
export const PASSPHRASE_ENV = 'KEYFOLD_PASSPHRASE';
/** A PostgreSQL key store's full URL, password included. */
export const DATABASE_URL_ENV = 'KEYFOLD_DATABASE_URL';
/** libpq's password variable, which the PostgreSQL key store's driver reads. */
export const PG_PASSWORD_ENV = 'PGPASSWORD';
/** Vault token of the vault-transit provider (`auth: token`). */
export const VAULT_TOKEN_ENV = 'VAULT_TOKEN';
/** AppRole credentials of the vault-transit provider (`auth: approle`). */
export const VAULT_ROLE_ID_ENV = 'KEYFOLD_VAULT_ROLE_ID';
export const VAULT_SECRET_ID_ENV = 'KEYFOLD_VAULT_SECRET_ID';
/** A fixed bearer token replacing DefaultAzureCredential (emulators, development mode only). */
export const AZURE_STATIC_TOKEN_ENV = 'KEYFOLD_AZURE_STATIC_TOKEN';
/** The PIN variable the documentation suggests for `--pin-env` (the configured name is stripped too). */
export const SUGGESTED_PIN_ENV = 'KEYFOLD_HSM_PIN';
/** The env provider's default variable prefix (`KEYFOLD_KEK_V1`, ...), what `init --provider env` uses. */
export const DEFAULT_ENV_KEK_PREFIX = 'KEYFOLD_KEK_V';

/** Every fixed-name credential variable, always kept from child processes. */
export const CREDENTIAL_VARIABLES = [
  PASSPHRASE_ENV,
  DATABASE_URL_ENV,
  PG_PASSWORD_ENV,
  VAULT_TOKEN_ENV,
  VAULT_ROLE_ID_ENV,
  VAULT_SECRET_ID_ENV,
  AZURE_STATIC_TOKEN_ENV,
  SUGGESTED_PIN_ENV,
] as const;

/** The name of a fixed-name credential variable. */
export type CredentialVariable = (typeof CREDENTIAL_VARIABLES)[number];

/** Which variables one source of credentials reads: exact names and name patterns. */
export interface CredentialNames {
  readonly names: readonly string[];
  readonly patterns: readonly RegExp[];
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * The variables of an env provider with variable prefix `prefix`: its KEK versions `<prefix><N>` and the
 * `<keyId>_ACTIVE` switch, where the key id is the prefix without a trailing `_V` (as `createEnvProvider` derives
 * it).
 * @example
 * ```ts
 * envKekVariables('KEYFOLD_KEK_V'); // { names: ['KEYFOLD_KEK_ACTIVE'], patterns: [/^KEYFOLD_KEK_V[0-9]+$/] }
 * ```
 */
export function envKekVariables(prefix: string): CredentialNames {
  const keyId = prefix.endsWith('_V') && prefix.length > 2 ? prefix.slice(0, -2) : prefix;
  return { names: [`${keyId}_ACTIVE`], patterns: [new RegExp(`^${escapeRegExp(prefix)}[0-9]+$`)] };
}

/**
 * A predicate: is `name` a Keyfold credential variable, for the fixed names, the default env-provider variables,
 * and `configured`: those the provider configurations in use name (each provider adapter's `credentialVariables`,
 * for the configured directory, `--add-provider-dir` and key groups; see `credentialVariablesOf` in
 * providers/registry.ts)?
 */
export function credentialMatcher(configured: Iterable<CredentialNames>): (name: string) => boolean {
  const names = new Set<string>(CREDENTIAL_VARIABLES);
  const patterns: RegExp[] = [];
  for (const source of [envKekVariables(DEFAULT_ENV_KEK_PREFIX), ...configured]) {
    for (const n of source.names) names.add(n);
    patterns.push(...source.patterns);
  }
  return (name) => names.has(name) || patterns.some((p) => p.test(name));
}

/**
 * A copy of `env` without the Keyfold credential variables (see {@link credentialMatcher}), except those named in
 * `keep`. `env` itself is not changed.
 * @example
 * ```ts
 * spawn(cmd, args, { env: withoutCredentials(ctx.env, await credentialVariablesOf([loaded.config.provider])) });
 * ```
 */
export function withoutCredentials(
  env: NodeJS.ProcessEnv,
  configured: Iterable<CredentialNames>,
  keep: ReadonlySet<string> = new Set(),
): NodeJS.ProcessEnv {
  const isCredential = credentialMatcher(configured);
  const out: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(env)) {
    if (value !== undefined && (keep.has(name) || !isCredential(name))) out[name] = value;
  }
  return out;
}

/**
 * The variables of `env` that `names` lists: what a provider may read its credentials from. The env provider is
 * given only these, so a variable it reads is one this module strips from child processes.
 */
export function pickVariables(env: NodeJS.ProcessEnv, names: CredentialNames): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (value !== undefined && (names.names.includes(name) || names.patterns.some((p) => p.test(name)))) out[name] = value;
  }
  return out;
}

/** The value of the fixed-name credential variable `name` (undefined when unset). */
export function readCredential(env: NodeJS.ProcessEnv, name: CredentialVariable): string | undefined {
  return env[name];
}
