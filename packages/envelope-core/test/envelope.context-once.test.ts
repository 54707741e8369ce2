/**
 * The context is validated and copied once per public call (issue 15): every provider below the envelope works on
 * that one frozen copy, and a local provider's AAD encoding of it is computed once. What must not change: a context
 * the core did not make (even a frozen one) is still validated, and the caller's object is never retained.
 */
import { describe, expect, it } from 'vitest';
import { createEnvelope, encodeContext, type EncryptionContext, type WrappedKey } from '../src/index.js';
import { LocalKekProvider } from './helpers.js';

class RecordingProvider extends LocalKekProvider {
  readonly seen: EncryptionContext[] = [];
  protected override _wrapKey(dataKey: Uint8Array, context: EncryptionContext): Promise<WrappedKey> {
    this.seen.push(context);
    return super._wrapKey(dataKey, context);
  }
  protected override _unwrapKey(wrapped: WrappedKey, context: EncryptionContext): Promise<Uint8Array> {
    this.seen.push(context);
    return super._unwrapKey(wrapped, context);
  }
}

describe('context handled once per call', () => {
  it('every provider of one seal gets the same frozen copy of the context, not the caller object', async () => {
    const a = new RecordingProvider();
    const b = new RecordingProvider();
    const env = createEnvelope({ providers: [a, b], cache: false });
    const context = { tenant: 'acme', table: 'orders' };
    const sealed = await env.seal(new Uint8Array([1, 2, 3]), context);
    expect(a.seen).toHaveLength(1);
    expect(b.seen[0]).toBe(a.seen[0]);
    expect(a.seen[0]).not.toBe(context);
    expect(Object.isFrozen(a.seen[0])).toBe(true);
    expect(a.seen[0]).toEqual(context);
    // The caller may change its object afterwards: nothing sealed or cached refers to it.
    context.tenant = 'mallory';
    expect(env.inspect(sealed).context).toEqual({ tenant: 'acme', table: 'orders' });
    expect(Array.from(await env.open(sealed, { context: { tenant: 'acme', table: 'orders' } }))).toEqual([1, 2, 3]);
  });

  it('encodeContext still hands out a fresh array each call (the shared canonical bytes stay internal)', async () => {
    const a = new RecordingProvider();
    const env = createEnvelope({ providers: [a], cache: false });
    await env.seal(new Uint8Array(1), { k: 'v' });
    const ctx = a.seen[0]!;
    const first = encodeContext(ctx);
    first.fill(0xff);
    expect(Array.from(encodeContext(ctx))).toEqual([0, 1, 0, 1, 0x6b, 0, 1, 0x76]);
  });

  it('a context the core did not make is still validated, on the very copy the provider gets (a getter cannot change it in between)', async () => {
    const a = new RecordingProvider();
    let reads = 0;
    const tricky = Object.freeze(
      Object.defineProperty({}, 'k', {
        enumerable: true,
        get: () => (++reads > 1 ? (5) : 'v'),
      }),
    ) as EncryptionContext;
    await a.wrapKey(new Uint8Array(32), tricky);
    expect(a.seen[0]).toEqual({ k: 'v' });
    expect(reads).toBe(1);
    await expect(a.wrapKey(new Uint8Array(32), Object.freeze({ '': 'x' }))).rejects.toThrow(/must not be empty/);
    await expect(a.wrapKey(new Uint8Array(32), ['x'] as unknown as EncryptionContext)).rejects.toThrow(/plain object/);
    await expect(createEnvelope({ providers: [a] }).seal(new Uint8Array(1), Object.freeze({ k: 1 }) as unknown as EncryptionContext)).rejects.toThrow(TypeError);
  });
});
