/**
 * The Vault Enterprise / HCP namespace rule, once: where the namespace comes from and how it is written, and how it
 * prefixes the key id. Used by `createVaultTransitProvider` and by the Keyfold CLI when it records an installation.
 * @module
 */

/**
 * The namespace in force: `given` (an option or flag), else `VAULT_NAMESPACE` from `env`, with leading and trailing
 * slashes removed (Vault accepts `/team-a/` and `team-a` alike); `undefined` for none or an empty one.
 * @example
 * ```ts
 * resolveVaultNamespace(undefined, { VAULT_NAMESPACE: '/team-a/' }); // 'team-a'
 * ```
 */
export function resolveVaultNamespace(given: string | undefined, env: NodeJS.ProcessEnv = {}): string | undefined {
  return (given ?? env.VAULT_NAMESPACE)?.replace(/^\/+|\/+$/g, '') || undefined;
}

/**
 * The key id of a transit key: `[namespace/]mount/keys/keyName`, the path Vault addresses it by.
 * @example
 * ```ts
 * vaultKeyId('team-a', 'transit', 'app'); // 'team-a/transit/keys/app'
 * ```
 */
export function vaultKeyId(namespace: string | undefined, mount: string, keyName: string): string {
  return `${namespace ? `${namespace}/` : ''}${mount}/keys/${keyName}`;
}
