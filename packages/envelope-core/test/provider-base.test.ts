/**
 * The BaseKeyProvider contract every provider inherits: argument checks, foreign wrapped keys, error mapping, the
 * generic UNWRAP_FAILED, close(), probe(), and buffer hygiene (no mutation, copies wiped).
 */
import { describe, expect, it } from 'vitest';
import { KeyfoldError, UnwrapFailedError, type WrappedKey } from '../src/index.js';
import { expectKeyfold } from './helpers.js';
import { FlakyProvider } from './flaky-provider.js';

const key = (): Uint8Array => new Uint8Array(32).fill(7);
const isZero = (b: Uint8Array): boolean => b.every((x) => x === 0);
const fast = { retry: false, deadlineMs: 1000 } as const;

describe('argument checks (caller mistakes are TypeError / RangeError)', () => {
  const p = new FlakyProvider();

  it('wrong-size data key -> RangeError naming the argument', async () => {
    for (const n of [0, 16, 31, 33, 64]) {
      await expect(p.wrapKey(new Uint8Array(n), {})).rejects.toThrow(RangeError);
    }
    await expect(p.wrapKey(new Uint8Array(31), {})).rejects.toThrow(/dataKey must be 32 bytes; got 31/);
    expect(p.backendCalls).toBe(0);
  });

  it('a data key that is not a Uint8Array -> TypeError', async () => {
    for (const bad of ['k'.repeat(32), Array(32).fill(0), new ArrayBuffer(32), null, undefined, 32]) {
      await expect(p.wrapKey(bad as never, {})).rejects.toBeInstanceOf(TypeError);
    }
    expect(p.backendCalls).toBe(0);
  });

  it('a context that is not a plain object of strings -> TypeError', async () => {
    for (const bad of [null, 'ctx', 42, ['a'], { a: 1 }, { a: '\ud800' }, { '': 'x' }]) {
      await expect(p.wrapKey(key(), bad as never)).rejects.toBeInstanceOf(TypeError);
      await expect(p.generateDataKey(bad as never)).rejects.toBeInstanceOf(TypeError);
    }
    const w = await p.wrapKey(key(), {});
    await expect(p.unwrapKey(w, null as never)).rejects.toBeInstanceOf(TypeError);
    await expect(p.unwrapKey({ kind: 'flaky' } as never, {})).rejects.toBeInstanceOf(TypeError);
    await expect(p.unwrapKey(null as never, {})).rejects.toBeInstanceOf(TypeError);
  });
});

describe('unwrap', () => {
  it('a foreign wrapped key (other keyId or kind) -> UNWRAP_FAILED without calling the backend', async () => {
    const p = new FlakyProvider('mine');
    const other = new FlakyProvider('theirs');
    const foreign = await other.wrapKey(key(), {});
    const calls = p.backendCalls;
    const err = await expectKeyfold(() => p.unwrapKey(foreign, {}), 'UNWRAP_FAILED');
    expect(err).toBeInstanceOf(UnwrapFailedError);
    await expectKeyfold(() => p.unwrapKey({ ...foreign, keyId: 'mine', kind: 'aws-kms' }, {}), 'UNWRAP_FAILED');
    expect(p.backendCalls).toBe(calls);
  });

  it('a tampered ciphertext or another context -> UNWRAP_FAILED', async () => {
    const p = new FlakyProvider();
    const w = await p.wrapKey(key(), { a: 'b' });
    const ct = Uint8Array.from(w.ciphertext);
    ct[20] = (ct[20] as number) ^ 1;
    await expectKeyfold(() => p.unwrapKey({ ...w, ciphertext: ct }, { a: 'b' }), 'UNWRAP_FAILED');
    await expectKeyfold(() => p.unwrapKey(w, { a: 'c' }), 'UNWRAP_FAILED');
    await expectKeyfold(() => p.unwrapKey(w, {}), 'UNWRAP_FAILED');
    expect(Buffer.from(await p.unwrapKey(w, { a: 'b' }))).toEqual(Buffer.from(key()));
  });

  it('a backend throwing a random Error -> UNWRAP_FAILED with the fixed message and the original as cause', async () => {
    const p = new FlakyProvider('k', { resilience: fast });
    const w = await p.wrapKey(key(), {});
    p.script = ['raw-unknown'];
    const err = await expectKeyfold(() => p.unwrapKey(w, {}), 'UNWRAP_FAILED');
    expect(err).toBeInstanceOf(UnwrapFailedError);
    expect(err.message).toBe(UnwrapFailedError.MESSAGE);
    expect(err.message).not.toContain('socket');
    expect(err.cause).toBeDefined();
    // The original is reachable through the cause chain.
    const chain: unknown[] = [];
    for (let c: unknown = err.cause; c !== undefined; c = (c as { cause?: unknown }).cause) chain.push(c);
    expect(chain.some((c) => c instanceof Error && c.message === 'socket hang up')).toBe(true);
  });

  it('mapBackendError is used: a mapped operational code surfaces as itself, with the cause', async () => {
    const p = new FlakyProvider('k', { resilience: fast });
    const w = await p.wrapKey(key(), {});
    p.script = ['raw-denied', 'raw-denied'];
    const onWrap = await expectKeyfold(() => p.wrapKey(key(), {}), 'ACCESS_DENIED');
    expect(onWrap.message).toBe('access denied by the KMS');
    expect((onWrap.cause as Error).name).toBe('AccessDeniedException');
    const onUnwrap = await expectKeyfold(() => p.unwrapKey(w, {}), 'ACCESS_DENIED');
    expect((onUnwrap.cause as Error).name).toBe('AccessDeniedException');
    expect(p.mapped.length).toBeGreaterThanOrEqual(2);
  });

  it('an unmapped backend error on wrap -> INTERNAL with the cause', async () => {
    const p = new FlakyProvider('k', { resilience: fast });
    p.script = ['raw-unknown'];
    const err = await expectKeyfold(() => p.wrapKey(key(), {}), 'INTERNAL');
    expect((err.cause as Error).message).toBe('socket hang up');
  });

  it('returns a fresh buffer the caller may wipe', async () => {
    const p = new FlakyProvider();
    const w = await p.wrapKey(key(), {});
    const a = await p.unwrapKey(w, {});
    a.fill(0);
    const b = await p.unwrapKey(w, {});
    expect(Buffer.from(b)).toEqual(Buffer.from(key()));
    expect(b).not.toBe(a);
  });
});

describe('buffers', () => {
  it("the caller's data key is not mutated; the copy passed to _wrapKey is wiped after the call", async () => {
    const p = new FlakyProvider();
    const dk = key();
    const view = new Uint8Array(new ArrayBuffer(64), 16, 32);
    view.set(dk);
    await p.wrapKey(dk, { a: 'b' });
    await p.wrapKey(view, {});
    expect(Buffer.from(dk)).toEqual(Buffer.from(key()));
    expect(Buffer.from(view)).toEqual(Buffer.from(key()));
    expect(p.received).toHaveLength(2);
    for (const r of p.received) {
      expect(r).not.toBe(dk);
      expect(isZero(r)).toBe(true);
    }
  });

  it('the copy is wiped after a failed call too', async () => {
    const p = new FlakyProvider('k', { resilience: fast });
    p.script = ['unavailable'];
    await expectKeyfold(() => p.wrapKey(key(), {}), 'UNAVAILABLE');
    expect(isZero(p.received[0]!)).toBe(true);
  });

  it('the wrapped key returned is frozen and the caller ciphertext is copied before unwrap', async () => {
    const p = new FlakyProvider();
    const w = await p.wrapKey(key(), {});
    expect(Object.isFrozen(w)).toBe(true);
    const mine: WrappedKey = { ...w, ciphertext: Uint8Array.from(w.ciphertext) };
    const before = Buffer.from(mine.ciphertext);
    await p.unwrapKey(mine, {});
    expect(Buffer.from(mine.ciphertext)).toEqual(before);
  });
});

describe('generateDataKey / rewrapKey / describe', () => {
  it('generateDataKey without a native backend call: a fresh 32-byte key and its wrapped form', async () => {
    const p = new FlakyProvider();
    const { dataKey, wrapped } = await p.generateDataKey({ t: '1' });
    expect(dataKey).toHaveLength(32);
    expect(isZero(dataKey)).toBe(false);
    expect(Buffer.from(await p.unwrapKey(wrapped, { t: '1' }))).toEqual(Buffer.from(dataKey));
    const again = await p.generateDataKey({ t: '1' });
    expect(Buffer.from(again.dataKey)).not.toEqual(Buffer.from(dataKey));
  });

  it('rewrapKey keeps the data key; a foreign key is UNWRAP_FAILED', async () => {
    const p = new FlakyProvider();
    const w = await p.wrapKey(key(), { a: 'b' });
    const r = await p.rewrapKey(w, { a: 'b' });
    expect(Buffer.from(r.ciphertext)).not.toEqual(Buffer.from(w.ciphertext));
    expect(Buffer.from(await p.unwrapKey(r, { a: 'b' }))).toEqual(Buffer.from(key()));
    await expectKeyfold(() => p.rewrapKey({ ...w, keyId: 'other' }, { a: 'b' }), 'UNWRAP_FAILED');
  });

  it('describe reports the capabilities', async () => {
    const d = await new FlakyProvider().describe();
    expect(d).toMatchObject({ kind: 'flaky', keyId: 'flaky-key', activeVersion: '1', capabilities: { generateDataKey: false, rewrapKey: false } });
  });
});

describe('close()', () => {
  it('is idempotent; later calls fail with PROVIDER_CLOSED without reaching the backend', async () => {
    const p = new FlakyProvider();
    const w = await p.wrapKey(key(), {});
    const calls = p.backendCalls;
    const c1 = p.close();
    const c2 = p.close();
    expect(c2).toBe(c1);
    await c1;
    await p.close();
    expect(p.closed).toBe(true);
    await expectKeyfold(() => p.wrapKey(key(), {}), 'PROVIDER_CLOSED');
    await expectKeyfold(() => p.unwrapKey(w, {}), 'PROVIDER_CLOSED');
    await expectKeyfold(() => p.generateDataKey({}), 'PROVIDER_CLOSED');
    await expectKeyfold(() => p.rewrapKey(w, {}), 'PROVIDER_CLOSED');
    await expectKeyfold(() => p.describe(), 'PROVIDER_CLOSED');
    expect(p.backendCalls).toBe(calls);
  });
});

describe('probe()', () => {
  it('healthy -> ok true with version, capabilities and latency', async () => {
    const p = new FlakyProvider();
    const r = await p.probe();
    expect(r).toMatchObject({ ok: true, kind: 'flaky', keyId: 'flaky-key', activeVersion: '1' });
    expect(r.error).toBeUndefined();
    expect(r.latencyMs).toBeGreaterThanOrEqual(0);
    expect(p.ops).toEqual(['describe', 'wrap', 'unwrap']);
  });

  it('a failing backend -> ok false with the code; never throws', async () => {
    const p = new FlakyProvider('k', { resilience: fast });
    p.describeOutcome = 'unavailable';
    const r1 = await p.probe();
    expect(r1).toMatchObject({ ok: false, error: { code: 'UNAVAILABLE' } });
    p.describeOutcome = 'ok';
    p.script = ['ok', 'unwrap-failed'];
    expect(await p.probe()).toMatchObject({ ok: false, error: { code: 'UNWRAP_FAILED' } });
    p.describeOutcome = 'raw-unknown';
    expect(await p.probe()).toMatchObject({ ok: false, error: { code: 'INTERNAL' } });
  });

  it('a closed provider -> ok false PROVIDER_CLOSED', async () => {
    const p = new FlakyProvider();
    await p.close();
    const r = await p.probe();
    expect(r).toMatchObject({ ok: false, error: { code: 'PROVIDER_CLOSED' } });
  });

  it('an unwrap returning a wrong-size key is UNWRAP_FAILED, and the bad buffer is wiped', async () => {
    class Short extends FlakyProvider {
      bad = new Uint8Array(16).fill(5);
      protected override _unwrapKey(): Promise<Uint8Array> {
        return Promise.resolve(this.bad);
      }
    }
    const p = new Short();
    const w = await p.wrapKey(key(), {});
    const err = await expectKeyfold(() => p.unwrapKey(w, {}), 'UNWRAP_FAILED');
    expect(err).toBeInstanceOf(KeyfoldError);
    expect(isZero(p.bad)).toBe(true);
  });
});
