/**
 * assertKeyProvider / isKeyProvider: the one structural check of a KeyProvider given by a caller, exported for every
 * package that takes providers (envelopes, rotation, migration, the key store), as an assertion and as a boolean.
 */
import { describe, expect, it } from 'vitest';
import { assertKeyProvider, createEnvelope, isKeyProvider } from '../src/index.js';
import { LocalKekProvider } from './helpers.js';

const handWritten = {
  kind: 'custom',
  keyId: 'k1',
  wrapKey: () => Promise.reject(new Error('unused')),
  unwrapKey: () => Promise.reject(new Error('unused')),
};

describe('assertKeyProvider', () => {
  it('accepts a BaseKeyProvider and a hand-written object of the right shape', () => {
    expect(() => assertKeyProvider(new LocalKekProvider(), 'provider')).not.toThrow();
    expect(() => assertKeyProvider(handWritten, 'provider')).not.toThrow();
  });

  it.each([
    ['null', null],
    ['undefined', undefined],
    ['a string', 'aws-kms'],
    ['a function', () => undefined],
    ['no kind', { ...handWritten, kind: undefined }],
    ['a numeric keyId', { ...handWritten, keyId: 7 }],
    ['no wrapKey', { ...handWritten, wrapKey: undefined }],
    ['unwrapKey not a function', { ...handWritten, unwrapKey: 'yes' }],
  ])('refuses %s with a TypeError naming the argument', (_, value) => {
    expect(() => assertKeyProvider(value, 'options.to[2]')).toThrow(TypeError);
    expect(() => assertKeyProvider(value, 'options.to[2]')).toThrow(/^options\.to\[2\] must be a KeyProvider \(kind, keyId, wrapKey, unwrapKey\)$/);
  });

  it.each([
    ['null', null],
    ['a { kind, keyId } reference', { kind: 'file', keyId: 'k1' }],
    ['no kind', { ...handWritten, kind: undefined }],
    ['a numeric keyId', { ...handWritten, keyId: 7 }],
    ['no wrapKey', { ...handWritten, wrapKey: undefined }],
  ])('isKeyProvider: false for %s, as the assertion refuses it', (_, value) => {
    expect(isKeyProvider(value)).toBe(false);
  });

  it('isKeyProvider: true for what the assertion accepts', () => {
    expect(isKeyProvider(new LocalKekProvider())).toBe(true);
    expect(isKeyProvider(handWritten)).toBe(true);
  });

  it('is the check createEnvelope and rewrap apply', async () => {
    expect(() => createEnvelope({ providers: [handWritten, { kind: 'x' }] as never })).toThrow(
      'providers[1] must be a KeyProvider (kind, keyId, wrapKey, unwrapKey)',
    );
    const p = new LocalKekProvider();
    const env = createEnvelope({ providers: [p] });
    const sealed = await env.seal('x');
    await expect(env.rewrap(sealed, { to: [p, null] as never })).rejects.toThrow('providers[1] must be a KeyProvider');
  });
});
