/**
 * Key Vault key identifiers (kids): `{vault}/keys/{name}` or `{vault}/keys/{name}/{version}`, where `{vault}` is
 * `https://NAME.vault.azure.net` (or `.managedhsm.azure.net`, or a local endpoint) and a version is 32 hex digits.
 * @module
 */

/** A parsed kid. `keyId` is the versionless form: the identity of the KEK across its versions. */
export interface ParsedKid {
  readonly vaultUrl: string;
  readonly name: string;
  readonly version: string | undefined;
  readonly keyId: string;
}

const NAME = /^[0-9a-zA-Z-]{1,127}$/;
/** Key Vault and Managed HSM versions are 32 lowercase hex digits. */
export const VERSION = /^[0-9a-f]{32}$/;

/**
 * Parses a kid; returns `undefined` when it is not one.
 * @example
 * ```ts
 * parseKid('https://v.vault.azure.net/keys/kek/0123456789abcdef0123456789abcdef')?.version;
 * ```
 */
export function parseKid(kid: string): ParsedKid | undefined {
  let url: URL;
  try {
    url = new URL(kid);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return undefined;
  if (url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') return undefined;
  const parts = url.pathname.replace(/\/+$/, '').split('/');
  // ['', 'keys', name] or ['', 'keys', name, version]
  if (parts.length < 3 || parts.length > 4 || parts[0] !== '' || parts[1] !== 'keys') return undefined;
  const name = parts[2] as string;
  if (!NAME.test(name)) return undefined;
  const version = parts[3];
  if (version !== undefined && !VERSION.test(version)) return undefined;
  const vaultUrl = `${url.protocol}//${url.host}`;
  return { vaultUrl, name, version, keyId: `${vaultUrl}/keys/${name}` };
}
