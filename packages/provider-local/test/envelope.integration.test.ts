/** The local providers inside real envelopes from @keyfold/envelope-core. */
import { describe, expect, it } from 'vitest';
import { createEnvelope } from '@keyfold/envelope-core';
import { createEnvProvider, createFileProvider, initFileKeyring } from '../src/index.js';
import { FAST_KDF, randomHexKey, tempRoot } from './helpers.js';

const tmp = tempRoot('envelope');

describe('local providers in envelopes', () => {
  it('an envelope wrapped under env and file KEKs opens with either one alone', async () => {
    const env = { KEYFOLD_KEK_V1: randomHexKey() };
    const dir = await tmp.dir('keys');
    await initFileKeyring({ dir, passphrase: 'backup passphrase', kdf: FAST_KDF });
    const envProvider = createEnvProvider({ env });
    const fileProvider = await createFileProvider({ dir, passphrase: 'backup passphrase' });
    const both = createEnvelope({ providers: [envProvider, fileProvider] });
    const sealed = await both.seal(new TextEncoder().encode('card 4111'), { table: 'cards' });

    for (const provider of [envProvider, fileProvider]) {
      const one = createEnvelope({ providers: [provider] });
      const plain = await one.open(sealed, { context: { table: 'cards' } });
      expect(new TextDecoder().decode(plain)).toBe('card 4111');
      await expect(one.open(sealed, { context: { table: 'users' } })).rejects.toMatchObject({ code: 'CONTEXT_MISMATCH' });
      await one.close();
    }
    await both.close();
    await Promise.all([envProvider.close(), fileProvider.close()]);
  });

  it('after a file KEK rotation, rewrap moves an envelope to the new version without touching its body', async () => {
    const dir = await tmp.dir('rotate');
    await initFileKeyring({ dir, passphrase: 'p', kdf: FAST_KDF });
    const provider = await createFileProvider({ dir, passphrase: 'p' });
    const envelope = createEnvelope({ providers: [provider] });
    const sealed = await envelope.seal(new TextEncoder().encode('hello'), { app: 'demo' });
    expect(envelope.inspect(sealed).wrappedKeys.map((w) => w.keyVersion)).toEqual(['1']);
    await provider.rotate();
    const moved = await envelope.rewrap(sealed);
    expect(envelope.inspect(moved).wrappedKeys.map((w) => w.keyVersion)).toEqual(['2']);
    expect(new TextDecoder().decode(await envelope.open(moved, { context: { app: 'demo' } }))).toBe('hello');
    await envelope.close();
    await provider.close();
  });
});
