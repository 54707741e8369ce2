/**
 * Rotation in Vault: `keys/:name/rotate` makes a new version; envelopes sealed before still open; rewrapKey and the
 * batch rewrapKeys move stored wrapped keys to the new version; only then is min_decryption_version raised, after
 * which anything left on the old version fails with KEY_VERSION_RETIRED.
 */
import { describe, expect, it } from 'vitest';
import { createEnvelope, isKeyfoldError } from '@keyfold/envelope-core';
import { freshProvider, randomKey, vaultEmulator } from './helpers.js';

const emu = await vaultEmulator();

describe('vault-transit rotation', () => {
  it('rotate, move every stored key with rewrapKeys, raise min_decryption_version; old versions are retired', async () => {
    const provider = await freshProvider(emu);
    const envelope = createEnvelope({ providers: [provider], cache: false });
    const oldEnvelope = await envelope.seal('sealed under v1', { table: 'users' });
    const stored = Array.from({ length: 300 }, (_, i) => ({ key: randomKey(), context: { row: String(i) } }));
    const wrapped = await Promise.all(stored.map((s) => provider.wrapKey(s.key, s.context)));
    expect(new Set(wrapped.map((w) => w.keyVersion))).toEqual(new Set(['1']));

    expect(await provider.rotate()).toBe('2');
    let d = await provider.describe();
    expect(d).toMatchObject({ activeVersion: '2', versions: ['1', '2'], details: { minDecryptionVersion: 1 } });
    expect(new TextDecoder().decode(await envelope.open(oldEnvelope))).toBe('sealed under v1');
    expect(envelope.inspect(await envelope.seal('new', { table: 'users' })).wrappedKeys[0]!.keyVersion).toBe('2');

    // Move everything first: 300 keys in two batch requests of 250 and 50.
    emu.resetCounters();
    const moved = await provider.rewrapKeys(wrapped.map((w, i) => ({ wrapped: w, context: stored[i]!.context })));
    expect(emu.counters.byOperation).toEqual({ rewrap: 2 });
    const movedKeys = moved.map((r) => {
      if (!r.ok) throw r.error;
      return r.value;
    });
    expect(new Set(movedKeys.map((w) => w.keyVersion))).toEqual(new Set(['2']));
    const rewrappedEnvelope = await envelope.rewrap(oldEnvelope);
    const single = await provider.rewrapKey(wrapped[0]!, stored[0]!.context);
    expect(single.keyVersion).toBe('2');

    await provider.setMinDecryptionVersion('2');
    d = await provider.describe();
    expect(d).toMatchObject({ activeVersion: '2', versions: ['2'], details: { minDecryptionVersion: 2 } });

    const unwrapped = await provider.unwrapKeys(movedKeys.map((w, i) => ({ wrapped: w, context: stored[i]!.context })));
    unwrapped.forEach((r, i) => {
      expect(r.ok).toBe(true);
      if (r.ok) expect(Buffer.from(r.value).equals(Buffer.from(stored[i]!.key))).toBe(true);
    });
    expect(new TextDecoder().decode(await envelope.open(rewrappedEnvelope))).toBe('sealed under v1');

    // Left behind on v1: retired.
    await expect(provider.unwrapKey(wrapped[0]!, stored[0]!.context)).rejects.toMatchObject({ code: 'KEY_VERSION_RETIRED' });
    const err = await envelope.open(oldEnvelope).catch((e: unknown) => e);
    expect(isKeyfoldError(err, 'KEY_VERSION_RETIRED')).toBe(true);
    const batch = await provider.unwrapKeys([{ wrapped: wrapped[1]!, context: stored[1]!.context }]);
    expect(batch[0]).toMatchObject({ ok: false, error: { code: 'KEY_VERSION_RETIRED' } });
    await expect(provider.rewrapKey(wrapped[2]!, stored[2]!.context)).rejects.toMatchObject({ code: 'KEY_VERSION_RETIRED' });
    await envelope.close();
    await provider.close();
  });

  it('derived keys rotate the same way; datakey wraps under the active version', async () => {
    const provider = await freshProvider(emu, { derivedKey: true });
    const g1 = await provider.generateDataKey({ t: '1' });
    expect(g1.wrapped.keyVersion).toBe('1');
    await provider.rotate();
    const g2 = await provider.generateDataKey({ t: '1' });
    expect(g2.wrapped.keyVersion).toBe('2');
    expect(Buffer.from(await provider.unwrapKey(g1.wrapped, { t: '1' })).equals(Buffer.from(g1.dataKey))).toBe(true);
    const moved = await provider.rewrapKey(g1.wrapped, { t: '1' });
    expect(moved.keyVersion).toBe('2');
    await provider.setMinDecryptionVersion(2);
    expect(Buffer.from(await provider.unwrapKey(moved, { t: '1' })).equals(Buffer.from(g1.dataKey))).toBe(true);
    await expect(provider.unwrapKey(g1.wrapped, { t: '1' })).rejects.toMatchObject({ code: 'KEY_VERSION_RETIRED' });
    await provider.close();
  });

  it('min_decryption_version above the latest version is refused by Vault', async () => {
    const provider = await freshProvider(emu);
    await expect(provider.setMinDecryptionVersion(5)).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringContaining('cannot set min decryption version of 5, latest key version is 1'),
    });
    await expect(provider.setMinDecryptionVersion(0)).rejects.toBeInstanceOf(RangeError);
    await provider.close();
  });
});
