/**
 * Rotation in the service: RotateKeyOnDemand makes a new key material current; envelopes sealed before still open;
 * rewrapKey (ReEncrypt) and envelope.rewrap move wrapped data keys to the new material without touching the data.
 */
import { describe, expect, it } from 'vitest';
import { createEnvelope } from '@keyfold/envelope-core';
import { type SymmetricKmsProvider } from '../src/index.js';
import { freshProvider, kmsEmulator, randomKey } from './helpers.js';

const emu = await kmsEmulator();

describe('aws-kms rotation', () => {
  it('RotateKeyOnDemand: old envelopes open, new ones use the new KeyMaterialId, rewrap moves old keys to it', async () => {
    const provider = (await freshProvider(emu)) as SymmetricKmsProvider;
    const envelope = createEnvelope({ providers: [provider], cache: false });
    const v1 = (await provider.describe()).activeVersion;
    expect(v1).toMatch(/^[0-9a-f]{64}$/);
    const old = await envelope.seal('before rotation', { table: 'users' });
    expect(envelope.inspect(old).wrappedKeys[0]!.keyVersion).toBe(v1);
    const context = { table: 'users', row: '1' };
    const key = randomKey();
    const wrappedV1 = await provider.wrapKey(key, context);
    expect(wrappedV1.keyVersion).toBe(v1);

    const v2 = await provider.rotate({ pollMs: 10 });
    expect(v2).not.toBe(v1);
    const d = await provider.describe();
    expect(d.activeVersion).toBe(v2);
    expect(d.versions).toEqual([v1, v2]);

    expect(new TextDecoder().decode(await envelope.open(old, { context: { table: 'users' } }))).toBe('before rotation');
    const fresh = await envelope.seal('after rotation', { table: 'users' });
    expect(envelope.inspect(fresh).wrappedKeys[0]!.keyVersion).toBe(v2);

    const moved = await provider.rewrapKey(wrappedV1, context);
    expect(moved.keyVersion).toBe(v2);
    expect(Buffer.from(await provider.unwrapKey(moved, context)).equals(Buffer.from(key))).toBe(true);
    await expect(provider.unwrapKey({ ...moved, keyVersion: v1 }, context)).rejects.toMatchObject({ code: 'UNWRAP_FAILED' });

    const rewrapped = await envelope.rewrap(old);
    expect(envelope.inspect(rewrapped).wrappedKeys[0]!.keyVersion).toBe(v2);
    expect(envelope.inspect(rewrapped).bodyLength).toBe(envelope.inspect(old).bodyLength);
    expect(new TextDecoder().decode(await envelope.open(rewrapped))).toBe('before rotation');
    await envelope.close();
    await provider.close();
  });

  it('rewrapKey costs one ReEncrypt and never returns plaintext to the client', async () => {
    const provider = (await freshProvider(emu)) as SymmetricKmsProvider;
    const wrapped = await provider.wrapKey(randomKey(), { a: '1' });
    await provider.rotate({ pollMs: 10 });
    emu.resetCounters();
    await provider.rewrapKey(wrapped, { a: '1' });
    expect(emu.counters.byOperation).toEqual({ ReEncrypt: 1 });
    await provider.close();
  });

  it('RSA keys cannot rotate in KMS: capabilities say so and rotate is not offered', async () => {
    const provider = await freshProvider(emu, 'RSA_2048');
    const d = await provider.describe();
    expect(d.capabilities).toEqual({ generateDataKey: false, rewrapKey: false, rotate: false });
    expect(d.activeVersion).toMatch(/^spki:[0-9a-f]{32}$/);
    expect('rotate' in provider).toBe(false);
    await provider.close();
  });
});
