/**
 * Every public function of @keyfold/secrets refuses an options object with a name it does not know (issue 14,
 * section 5): a TypeError naming the option, before any provider is called, instead of silently ignoring it.
 */
import { describe, expect, it } from 'vitest';
import type { EncryptionContext, KeyProvider } from '@keyfold/envelope-core';
import { decryptSecrets, encryptSecrets, inspectSecrets, parseRulesFile, rotateDataKey, updateKeys } from '../src/index.js';
import { envProvider, policy } from './helpers.js';

/** Counts every key operation, to show a refused call never reached a provider. */
function counted(inner: KeyProvider) {
  const calls = { n: 0 };
  const provider: KeyProvider = {
    kind: inner.kind,
    keyId: inner.keyId,
    protection: inner.protection,
    wrapKey: (k: Uint8Array, c: EncryptionContext) => (calls.n++, inner.wrapKey(k, c)),
    unwrapKey: (w, c) => (calls.n++, inner.unwrapKey(w, c)),
    describe: () => inner.describe(),
    probe: () => inner.probe(),
    close: () => inner.close(),
  };
  return { provider, calls };
}

describe('unknown options are refused by name', () => {
  it('encryptSecrets, decryptSecrets, updateKeys, rotateDataKey, inspectSecrets', async () => {
    const { provider, calls } = counted(envProvider());
    const providers = [provider];
    const { content } = await encryptSecrets('A=1\n', { format: 'dotenv', providers, policy });
    const before = calls.n;
    const base = { format: 'dotenv' as const, providers, policy };
    const refused: [Promise<unknown> | (() => unknown), RegExp][] = [
      [encryptSecrets('A=1\n', { ...base, unencryptedSufix: '_plain' } as never), /^encryptSecrets has no option "unencryptedSufix"; known options: format, providers, keyGroups, policy, rules, unencryptedSuffix, previous, now$/],
      [encryptSecrets('A=1\n', { ...base, rules: [{ path: 'A', encrpyt: false }] } as never), /^encryptSecrets rules\[0\] has no option "encrpyt"; known options: path, encrypt$/],
      [encryptSecrets('A=1\n', { ...base, rules: [{ regex: '^A$', path: 'A', encrypt: false }] }), /encryptSecrets rules\[0\] has no option "path"/],
      [encryptSecrets('A=1\n', { ...base, keyGroups: { threshold: 1, groups: [providers], quorum: 2 } } as never), /encryptSecrets keyGroups has no option "quorum"/],
      [decryptSecrets(content, { ...base, allowUnencrypted: true } as never), /^decryptSecrets has no option "allowUnencrypted"/],
      [updateKeys(content, { ...base, to: providers, add: providers } as never), /^updateKeys has no option "add"/],
      [rotateDataKey(content, { ...base, too: providers } as never), /^rotateDataKey has no option "too"/],
      [() => inspectSecrets(content, { format: 'dotenv', providers } as never), /^inspectSecrets has no option "providers"; known options: format$/],
    ];
    for (const [call, message] of refused) {
      if (typeof call === 'function') expect(call).toThrow(message);
      else await expect(call).rejects.toThrow(message);
    }
    expect(calls.n).toBe(before); // refused before any key operation
  });

  it('rules parsed from a file with key groups cannot be spread into encryptSecrets: the groups would be left out', async () => {
    const providers = [envProvider()];
    const rules = parseRulesFile('key_groups:\n  - [kms-eu]\n  - [vault]\nshamir_threshold: 2\n');
    expect(rules.keyGroupRefs).toBeDefined();
    await expect(encryptSecrets('A=1\n', { format: 'dotenv', providers, policy, ...rules })).rejects.toThrow(
      /^encryptSecrets has no option "keyGroupRefs": .*pass keyGroups$/,
    );
    // Rules without key groups still spread (the documented way to apply a rules file).
    const plainRules = parseRulesFile('rules:\n  - path: "A"\n    encrypt: false\n');
    const r = await encryptSecrets('A=1\nB=2\n', { format: 'dotenv', providers, policy, ...plainRules });
    expect(r.plaintext).toEqual(['A']);
  });
});
