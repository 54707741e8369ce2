/**
 * Multi-provider envelopes and rewrap: any one configured provider opens; rewrap replaces the wrapped keys and
 * keeps the body bytes; a damaged envelope is never rewrapped.
 */
import { describe, expect, it } from 'vitest';
import { createEnvelope, KeyfoldError, ProviderError, type Envelope } from '../src/index.js';
import { expectKeyfold, LocalKekProvider, pseudoRandomBytes, runTransform } from './helpers.js';

const text = (b: Uint8Array): string => new TextDecoder().decode(b);

function body(env: Envelope, sealed: Uint8Array): Buffer {
  return Buffer.from(sealed.subarray(env.inspect(sealed).headerLength));
}

describe('sealed under [A, B]', () => {
  const A = new LocalKekProvider({ keyId: 'A' });
  const B = new LocalKekProvider({ keyId: 'B' });
  const C = new LocalKekProvider({ keyId: 'C' });
  const both = createEnvelope({ providers: [A, B] });

  it('wraps the one data key under every provider; either one alone opens it', async () => {
    const sealed = await both.seal('backup KEK works', { app: 'x' });
    const info = both.inspect(sealed);
    expect(info.wrappedKeys.map((w) => w.keyId)).toEqual(['A', 'B']);
    expect(Buffer.from(A.wrappedDataKeys.at(-1)!)).toEqual(Buffer.from(B.wrappedDataKeys.at(-1)!));
    expect(text(await createEnvelope({ providers: [B] }).open(sealed))).toBe('backup KEK works');
    expect(text(await createEnvelope({ providers: [A] }).open(sealed))).toBe('backup KEK works');
  });

  it('an unrelated provider C -> NO_PROVIDER naming what the envelope was sealed for', async () => {
    const sealed = await both.seal('x');
    const err = await expectKeyfold(() => createEnvelope({ providers: [C] }).open(sealed), 'NO_PROVIDER');
    expect(err).toBeInstanceOf(ProviderError);
    expect(err.message).toContain('test:A');
    expect(err.message).toContain('test:B');
    expect(err.message).toContain('test:C');
  });

  it('a provider with the same kind and keyId but another KEK cannot open it (DECRYPT_FAILED)', async () => {
    const sealed = await both.seal('x');
    const impostor = new LocalKekProvider({ keyId: 'A' });
    await expectKeyfold(() => createEnvelope({ providers: [impostor] }).open(sealed), 'DECRYPT_FAILED');
  });

  it('falls back to B when A is down, and reports the operational error when all are down', async () => {
    const sealed = await both.seal('fallback');
    const downA = new LocalKekProvider({ keyId: 'A', resilience: { retry: false } });
    downA.beforeUnwrap = () => Promise.reject(new ProviderError('UNAVAILABLE', 'A is down'));
    expect(text(await createEnvelope({ providers: [downA, B] }).open(sealed))).toBe('fallback');
    const err = await expectKeyfold(() => createEnvelope({ providers: [downA] }).open(sealed), 'UNAVAILABLE');
    expect(err.message).toBe('A is down');
  });
});

describe('rewrap', () => {
  it('rewrap(env, { to: [C] }): identical body bytes; C opens it, A no longer does', async () => {
    const A = new LocalKekProvider({ keyId: 'A' });
    const B = new LocalKekProvider({ keyId: 'B' });
    const C = new LocalKekProvider({ keyId: 'C' });
    const env = createEnvelope({ providers: [A, B] });
    const sealed = await env.seal(pseudoRandomBytes(500), { t: '1' });
    const viaB = createEnvelope({ providers: [B] });
    const rewrapped = await viaB.rewrap(sealed, { to: [C] });
    expect(body(env, rewrapped)).toEqual(body(env, sealed));
    expect(env.inspect(rewrapped).wrappedKeys.map((w) => w.keyId)).toEqual(['C']);
    expect(env.inspect(rewrapped).context).toEqual({ t: '1' });
    expect(Buffer.from(await createEnvelope({ providers: [C] }).open(rewrapped, { context: { t: '1' } }))).toEqual(
      Buffer.from(pseudoRandomBytes(500)),
    );
    await expectKeyfold(() => createEnvelope({ providers: [A] }).open(rewrapped), 'NO_PROVIDER');
    expect(viaB.stats().rewrapped).toBe(1);
    expect(C.wraps).toBe(1);
  });

  it('rewrap without `to` uses the envelope providers; a framed envelope keeps its frames', async () => {
    const A = new LocalKekProvider({ keyId: 'A' });
    const B = new LocalKekProvider({ keyId: 'B' });
    const data = pseudoRandomBytes(1000, 5);
    const sealed = await runTransform(createEnvelope({ providers: [A], frameSize: 300 }).sealStream(), [data]);
    const env = createEnvelope({ providers: [A, B] });
    const rewrapped = await env.rewrap(Uint8Array.from(sealed));
    expect(env.inspect(rewrapped).wrappedKeys.map((w) => w.keyId)).toEqual(['A', 'B']);
    expect(env.inspect(rewrapped).frameSize).toBe(300);
    expect(body(env, rewrapped)).toEqual(body(env, sealed));
    expect(Buffer.from(await createEnvelope({ providers: [B] }).open(rewrapped))).toEqual(Buffer.from(data));
    expect(await runTransform(createEnvelope({ providers: [B] }).openStream(), [rewrapped])).toEqual(Buffer.from(data));
  });

  it('rewrap of an armored envelope returns armor', async () => {
    const A = new LocalKekProvider({ keyId: 'A' });
    const C = new LocalKekProvider({ keyId: 'C' });
    const env = createEnvelope({ providers: [A] });
    const armored = await env.sealToString('armored');
    const out = await env.rewrap(armored, { to: [C] });
    expect(typeof out).toBe('string');
    expect(out.startsWith('kf1.')).toBe(true);
    expect(text(await createEnvelope({ providers: [C] }).open(out))).toBe('armored');
  });

  it('rewrap of a tampered envelope is refused and wraps nothing', async () => {
    const A = new LocalKekProvider({ keyId: 'A' });
    const C = new LocalKekProvider({ keyId: 'C' });
    const env = createEnvelope({ providers: [A] });
    const sealed = await env.seal(pseudoRandomBytes(100));
    for (const index of [sealed.length - 1, sealed.length - 20, env.inspect(sealed).headerLength - 1]) {
      const bad = Uint8Array.from(sealed);
      bad[index] = (bad[index] as number) ^ 4;
      await expectKeyfold(() => env.rewrap(bad, { to: [C] }), 'DECRYPT_FAILED');
    }
    const truncated = sealed.subarray(0, sealed.length - 1);
    await expectKeyfold(() => env.rewrap(truncated, { to: [C] }), 'DECRYPT_FAILED');
    expect(C.wraps).toBe(0);
    expect(env.stats().rewrapped).toBe(0);
  });

  it('rewrap checks its targets: empty list -> TypeError; a memory provider in production -> POLICY_VIOLATION', async () => {
    const A = new LocalKekProvider({ keyId: 'A' });
    const env = createEnvelope({ providers: [A], policy: { securityMode: 'production' } });
    const sealed = await env.seal('x');
    await expect(env.rewrap(sealed, { to: [] })).rejects.toBeInstanceOf(TypeError);
    const mem = new LocalKekProvider({ kind: 'memory', protection: 'memory' });
    const err = await expectKeyfold(() => env.rewrap(sealed, { to: [mem] }), 'POLICY_VIOLATION');
    expect(err).toBeInstanceOf(KeyfoldError);
    expect(mem.wraps).toBe(0);
  });

  it('more providers than limits.maxWrappedKeys is refused at creation', () => {
    const ps = Array.from({ length: 3 }, (_, i) => new LocalKekProvider({ keyId: `k${i}` }));
    expect(() => createEnvelope({ providers: ps, policy: { limits: { maxWrappedKeys: 2 } } })).toThrow(RangeError);
    expect(() => createEnvelope({ providers: [] })).toThrow(TypeError);
    expect(() => createEnvelope({ providers: [{} as never] })).toThrow(TypeError);
  });
});
