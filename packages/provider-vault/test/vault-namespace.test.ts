/**
 * The namespace rule: option over VAULT_NAMESPACE, slashes trimmed, empty means none; and the key id it prefixes,
 * the path Vault addresses the key by.
 */
import { describe, expect, it } from 'vitest';
import { resolveVaultNamespace, vaultKeyId } from '../src/index.js';

describe('resolveVaultNamespace', () => {
  it('takes the given value over VAULT_NAMESPACE and trims slashes', () => {
    expect(resolveVaultNamespace('/team-a/', { VAULT_NAMESPACE: 'other' })).toBe('team-a');
    expect(resolveVaultNamespace(undefined, { VAULT_NAMESPACE: '//team-b/sub//' })).toBe('team-b/sub');
  });

  it('means no namespace for none, an empty one or only slashes', () => {
    expect(resolveVaultNamespace(undefined, {})).toBeUndefined();
    expect(resolveVaultNamespace('', { VAULT_NAMESPACE: 'x' })).toBeUndefined();
    expect(resolveVaultNamespace(undefined, { VAULT_NAMESPACE: '///' })).toBeUndefined();
  });
});

describe('vaultKeyId', () => {
  it('prefixes the namespace when there is one', () => {
    expect(vaultKeyId(undefined, 'transit', 'app')).toBe('transit/keys/app');
    expect(vaultKeyId('team-a', 'kv', 'app')).toBe('team-a/kv/keys/app');
  });
});
