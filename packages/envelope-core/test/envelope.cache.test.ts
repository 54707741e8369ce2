/**
 * Data key cache: reuse limits (maxMessages / maxAge / maxBytes), per-context keys, the decrypt side, wiping on
 * eviction and close, and the provider-call savings.
 */
import { describe, expect, it } from 'vitest';
import { createEnvelope, type Envelope } from '../src/index.js';
import { DataKeyCache } from '../src/cache.js';
import { refOpen, refParseHeader } from './reference.js';
import { expectKeyfold, gate, LocalKekProvider, pseudoRandomBytes, TestKekProvider } from './helpers.js';

const isZero = (b: Uint8Array): boolean => b.every((x) => x === 0);
const wrappedCt = (sealed: Uint8Array): string => Buffer.from(refParseHeader(sealed).wrappedKeys[0]!.ciphertext).toString('hex');

describe('encrypt-side reuse limits', () => {
  it('maxMessages: 3 -> 10 seals use ceil(10/3) = 4 data keys', async () => {
    const provider = new TestKekProvider();
    const env = createEnvelope({ providers: [provider], cache: { maxMessages: 3 } });
    const sealed: Uint8Array[] = [];
    for (let i = 0; i < 10; i++) sealed.push(await env.seal(`message ${i}`, { table: 'users' }));
    const calls = env.stats().providerCalls;
    expect(calls.generateDataKey + calls.wrap).toBe(4);
    expect(calls.total).toBe(4);
    expect(provider.wraps).toBe(4);
    // Keys change exactly at messages 0, 3, 6, 9.
    const ids = sealed.map(wrappedCt);
    expect(new Set(ids).size).toBe(4);
    expect([ids[0] === ids[2], ids[2] === ids[3], ids[3] === ids[5], ids[5] === ids[6], ids[8] === ids[9]]).toEqual([
      true,
      false,
      true,
      false,
      false,
    ]);
    for (let i = 0; i < 10; i++) expect(new TextDecoder().decode(await env.open(sealed[i]!))).toBe(`message ${i}`);
    expect(env.stats().cache).toMatchObject({ encryptHits: 6, encryptMisses: 4 });
  });

  it('maxAge with an injected clock: advancing time forces a new key', async () => {
    let t = 0;
    const provider = new TestKekProvider();
    const env = createEnvelope({ providers: [provider], cache: { maxAge: 1000, now: () => t } });
    const a = await env.seal('a');
    t = 999;
    const b = await env.seal('b');
    expect(provider.wraps).toBe(1);
    expect(wrappedCt(a)).toBe(wrappedCt(b));
    t = 1000;
    const c = await env.seal('c');
    expect(provider.wraps).toBe(2);
    expect(wrappedCt(c)).not.toBe(wrappedCt(a));
    t = 1500;
    await env.seal('d');
    expect(provider.wraps).toBe(2);
    t = 5000;
    await env.seal('e');
    expect(provider.wraps).toBe(3);
    expect(env.stats().cache?.evictions).toBe(2);
  });

  it('maxBytes: 1000 with 400-byte messages -> a new key every 2 messages', async () => {
    const provider = new TestKekProvider();
    const env = createEnvelope({ providers: [provider], cache: { maxBytes: 1000 } });
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push(wrappedCt(await env.seal(new Uint8Array(400))));
    expect(provider.wraps).toBe(3);
    expect(env.stats().providerCalls.total).toBe(3);
    expect(ids[0]).toBe(ids[1]);
    expect(ids[1]).not.toBe(ids[2]);
    expect(ids[2]).toBe(ids[3]);
    expect(ids[3]).not.toBe(ids[4]);
    expect(ids[4]).toBe(ids[5]);
  });

  it('a message larger than maxBytes is sealed under a key that is not cached', async () => {
    const provider = new LocalKekProvider({ nativeGenerate: true });
    const env = createEnvelope({ providers: [provider], cache: { maxBytes: 100 } });
    const sealed = await env.seal(new Uint8Array(101));
    expect(isZero(provider.generated[0]!)).toBe(true); // wiped right after use, not kept
    expect(env.stats().cache?.encryptEntries).toBe(0);
    expect((await env.open(sealed)).length).toBe(101);
  });

  it('different contexts use different data keys; the same context (any key order) shares one', async () => {
    const provider = new TestKekProvider();
    const env = createEnvelope({ providers: [provider], cache: true });
    const a1 = await env.seal('x', { tenant: 'a', table: 't' });
    const a2 = await env.seal('x', { table: 't', tenant: 'a' });
    const b = await env.seal('x', { tenant: 'b', table: 't' });
    const none = await env.seal('x');
    expect(wrappedCt(a1)).toBe(wrappedCt(a2));
    expect(new Set([wrappedCt(a1), wrappedCt(b), wrappedCt(none)]).size).toBe(3);
    expect(provider.wraps).toBe(3);
    expect(env.stats().cache?.encryptEntries).toBe(3);
  });
});

describe('decrypt side', () => {
  it('opening the same envelope 5 times: 1 unwrap with the cache, 5 without', async () => {
    const results: Record<string, number> = {};
    for (const cache of [true, false]) {
      const provider = new TestKekProvider();
      const sealer = createEnvelope({ providers: [provider] });
      const sealed = await sealer.seal('hello', { k: 'v' });
      const env = createEnvelope({ providers: [provider], cache });
      for (let i = 0; i < 5; i++) expect(new TextDecoder().decode(await env.open(sealed))).toBe('hello');
      expect(env.stats().providerCalls.unwrap).toBe(provider.unwraps);
      results[String(cache)] = provider.unwraps;
    }
    expect(results).toEqual({ true: 1, false: 5 });
  });

  it('a cached data key is only used for the same wrapped key and context', async () => {
    const provider = new TestKekProvider();
    const env = createEnvelope({ providers: [provider], cache: true });
    const a = await env.seal('a', { c: '1' });
    const b = await env.seal('b', { c: '2' });
    await env.open(a);
    await env.open(b);
    await env.open(a);
    expect(provider.unwraps).toBe(2);
    expect(env.stats().cache).toMatchObject({ decryptHits: 1, decryptMisses: 2 });
  });
});

describe('wiping', () => {
  it('DataKeyCache.clear() wipes every cached key in place', () => {
    const cache = new DataKeyCache({});
    const enc = new Uint8Array(32).fill(0xaa);
    const dec = new Uint8Array(32).fill(0xbb);
    const w = new Uint8Array([1, 2, 3]); // a wrapped-key section (opaque to the cache)
    expect(cache.offerForEncrypt('ctx', enc, w, 10)).toBe(true);
    expect(cache.offerForDecrypt('digest', dec)).toBe(true);
    expect(cache.takeForEncrypt('ctx', 1)?.dataKey).toBe(enc);
    expect(cache.getForDecrypt('digest')).toBe(dec);
    cache.clear();
    expect(isZero(enc)).toBe(true);
    expect(isZero(dec)).toBe(true);
    expect(cache.size).toEqual({ encrypt: 0, decrypt: 0 });
    expect(cache.takeForEncrypt('ctx', 1)).toBeUndefined();
    expect(cache.getForDecrypt('digest')).toBeUndefined();
  });

  it('eviction by capacity wipes the least recently used key (both directions)', () => {
    const cache = new DataKeyCache({ capacity: 2 });
    const keys = [1, 2, 3].map((n) => new Uint8Array(32).fill(n));
    const w = new Uint8Array([1, 2, 3]); // a wrapped-key section (opaque to the cache)
    cache.offerForEncrypt('a', keys[0]!, w, 1);
    cache.offerForEncrypt('b', keys[1]!, w, 1);
    cache.takeForEncrypt('a', 1); // a is now most recently used
    cache.offerForEncrypt('c', keys[2]!, w, 1);
    expect(keys.map(isZero)).toEqual([false, true, false]);
    expect(cache.counters.evictions).toBe(1);
    const dk = [4, 5, 6].map((n) => new Uint8Array(32).fill(n));
    cache.offerForDecrypt('x', dk[0]!);
    cache.offerForDecrypt('y', dk[1]!);
    cache.getForDecrypt('x');
    cache.offerForDecrypt('z', dk[2]!);
    expect(dk.map(isZero)).toEqual([false, true, false]);
    expect(cache.counters.evictions).toBe(2);
  });

  it('eviction by age and by limits wipes the key', () => {
    let t = 0;
    const cache = new DataKeyCache({ maxAge: 10, maxMessages: 2, now: () => t });
    const w = new Uint8Array([1, 2, 3]); // a wrapped-key section (opaque to the cache)
    const k1 = new Uint8Array(32).fill(1);
    cache.offerForEncrypt('a', k1, w, 1);
    expect(cache.takeForEncrypt('a', 1)).toBeDefined();
    expect(cache.takeForEncrypt('a', 1)).toBeUndefined(); // third message: over maxMessages
    expect(isZero(k1)).toBe(true);
    const k2 = new Uint8Array(32).fill(2);
    cache.offerForDecrypt('d', k2);
    t = 10;
    expect(cache.getForDecrypt('d')).toBeUndefined();
    expect(isZero(k2)).toBe(true);
  });

  it('envelope close() wipes cached keys and later calls fail with PROVIDER_CLOSED', async () => {
    const provider = new LocalKekProvider({ nativeGenerate: true });
    const env = createEnvelope({ providers: [provider], cache: true });
    const sealed = await env.seal('secret');
    const cachedKey = provider.generated[0]!;
    expect(isZero(cachedKey)).toBe(false); // held by the cache
    await env.open(sealed);
    expect(env.stats().cache).toMatchObject({ encryptEntries: 1, decryptEntries: 1 });
    await env.close();
    expect(isZero(cachedKey)).toBe(true);
    expect(env.stats().cache).toMatchObject({ encryptEntries: 0, decryptEntries: 0 });
    await expectKeyfold(() => env.seal('more'), 'PROVIDER_CLOSED');
    await expectKeyfold(() => env.open(sealed), 'PROVIDER_CLOSED');
    await env.close(); // idempotent
  });

  it('without a cache, the data key is wiped as soon as the message is sealed', async () => {
    const provider = new LocalKekProvider({ nativeGenerate: true });
    const env = createEnvelope({ providers: [provider] });
    await env.seal('secret');
    expect(isZero(provider.generated[0]!)).toBe(true);
  });

  it('an envelope key evicted by capacity is wiped', async () => {
    const provider = new LocalKekProvider({ nativeGenerate: true });
    const env = createEnvelope({ providers: [provider], cache: { capacity: 2 } });
    await env.seal('1', { n: '1' });
    await env.seal('2', { n: '2' });
    await env.seal('3', { n: '3' });
    expect(provider.generated.map(isZero)).toEqual([true, false, false]);
    expect(env.stats().cache?.evictions).toBe(1);
  });
});

describe('provider calls for 1,000 seals', () => {
  it('with and without the cache', async () => {
    const counts: Record<string, number> = {};
    for (const cache of [false, true]) {
      const provider = new TestKekProvider();
      const env = createEnvelope({ providers: [provider], cache });
      for (let i = 0; i < 1000; i++) await env.seal(`row ${i}`, { table: 'orders' });
      counts[cache ? 'withCache' : 'withoutCache'] = env.stats().providerCalls.total;
      expect(env.stats().providerCalls.total).toBe(provider.wraps);
    }
    console.log(`provider calls for 1,000 seals: without cache ${counts.withoutCache}, with cache ${counts.withCache}`);
    expect(counts).toEqual({ withoutCache: 1000, withCache: 1 });
  });
});

/**
 * A cached key is handed to a seal/rewrap that resumes after an `await`; if another call evicts (wipes) the entry in
 * between, the message is sealed under the wiped key. These pin the rule stated at the top of src/cache.ts ("an
 * eviction that wipes a key never races a use of it").
 */
describe('cached keys are never used after an eviction wiped them (concurrency)', () => {
  async function openAll(env: Envelope, sealed: readonly Uint8Array[]): Promise<string[]> {
    const out: string[] = [];
    for (const s of sealed) {
      try {
        out.push(new TextDecoder().decode(await env.open(s)));
      } catch (err) {
        out.push(`failed: ${(err as Error).message}`);
      }
    }
    return out;
  }

  it('concurrent seals that share a cached key all open (maxMessages eviction)', async () => {
    const env = createEnvelope({ providers: [new TestKekProvider()], cache: { maxMessages: 3 } });
    await env.seal('warm');
    const sealed = await Promise.all([env.seal('A'), env.seal('B'), env.seal('C')]);
    expect(await openAll(env, sealed)).toEqual(['A', 'B', 'C']);
  });

  it('concurrent seals that share a cached key all open (maxAge eviction)', async () => {
    let t = 0;
    const env = createEnvelope({ providers: [new TestKekProvider()], cache: { maxAge: 1000, now: () => t } });
    await env.seal('warm');
    const first = env.seal('A');
    t = 1000; // the next take finds the entry expired and wipes it
    const second = env.seal('B');
    expect(await openAll(env, await Promise.all([first, second]))).toEqual(['A', 'B']);
  });

  it('no message is ever encrypted under an all-zero (wiped) data key', async () => {
    const env = createEnvelope({ providers: [new TestKekProvider()], cache: { maxMessages: 3 } });
    await env.seal('warm');
    const sealed = await Promise.all([env.seal('A'), env.seal('B'), env.seal('C')]);
    const readableWithZeroKey = sealed.map((s) => refOpen(s, new Uint8Array(32))?.toString()).filter((x) => x !== undefined);
    expect(readableWithZeroKey).toEqual([]);
  });

  it('rewrap stays correct when the decrypt cache evicts its key mid-call', async () => {
    const a = new LocalKekProvider({ keyId: 'A' });
    const c = new LocalKekProvider({ keyId: 'C' });
    const sealer = createEnvelope({ providers: [a] });
    const x = await sealer.seal('X');
    const y = await sealer.seal('Y');
    const env = createEnvelope({ providers: [a], cache: { capacity: 1 } });
    const g = gate();
    c.beforeWrap = g.wait;
    const rewrapping = env.rewrap(x, { to: [c] });
    await g.reached; // rewrap has unwrapped X's key (now cached) and is waiting on C.wrapKey
    expect(new TextDecoder().decode(await env.open(y))).toBe('Y'); // caches Y's key, evicting (wiping) X's
    g.open();
    const rewrapped = await rewrapping;
    c.beforeWrap = undefined;
    const opener = createEnvelope({ providers: [c] });
    expect(await openAll(opener, [rewrapped])).toEqual(['X']);
  });
});

describe('cache options', () => {
  it('bad cache options are caller mistakes (RangeError)', () => {
    const p = new TestKekProvider();
    expect(() => createEnvelope({ providers: [p], cache: { maxMessages: 0 } })).toThrow(RangeError);
    expect(() => createEnvelope({ providers: [p], cache: { maxAge: Number.NaN } })).toThrow(RangeError);
    expect(() => createEnvelope({ providers: [p], cache: { capacity: -1 } })).toThrow(RangeError);
  });

  it('stats() counts seals, opens and hits', async () => {
    const env = createEnvelope({ providers: [new TestKekProvider()], cache: true });
    const s = await env.seal(pseudoRandomBytes(10));
    await env.seal(pseudoRandomBytes(10));
    await env.open(s);
    const st = env.stats();
    expect(st).toMatchObject({ sealed: 2, opened: 1, rewrapped: 0 });
    expect(st.cache).toMatchObject({ encryptHits: 1, encryptMisses: 1, decryptMisses: 1, decryptHits: 0 });
    expect(createEnvelope({ providers: [new TestKekProvider()] }).stats().cache).toBeUndefined();
  });
});
