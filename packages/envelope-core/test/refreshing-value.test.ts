import { describe, expect, it } from 'vitest';
import { RefreshingValue } from '../src/index.js';

describe('RefreshingValue', () => {
  it('reuses a value while fresh, reloads after maxAge, and shares one in-flight load', async () => {
    let t = 0;
    let loads = 0;
    let release: (() => void) | undefined;
    const v = new RefreshingValue(
      () =>
        new Promise<number>((resolve) => {
          loads++;
          const n = loads;
          release = () => resolve(n);
        }),
      100,
      () => t,
    );
    const waiting = [v.get(), v.get(), v.get()];
    release?.();
    expect(await Promise.all(waiting)).toEqual([1, 1, 1]);
    expect(loads).toBe(1);
    expect(v.fetchedAt).toBe(0);
    t = 99;
    expect(await v.get()).toBe(1);
    expect(loads).toBe(1);
    t = 100;
    const reloaded = v.get();
    release?.();
    expect(await reloaded).toBe(2);
    const forced = v.get(true);
    release?.();
    expect(await forced).toBe(3);
  });

  it('a failed load is not cached and the next get tries again; set and clear replace the cache', async () => {
    let fail = true;
    let loads = 0;
    const v = new RefreshingValue(() => {
      loads++;
      return fail ? Promise.reject(new Error('down')) : Promise.resolve('v2');
    }, 1000);
    await expect(v.get()).rejects.toThrow('down');
    expect(v.fetchedAt).toBeUndefined();
    fail = false;
    expect(await v.get()).toBe('v2');
    v.set('v3');
    expect(await v.get()).toBe('v3');
    v.clear();
    expect(v.fetchedAt).toBeUndefined();
    expect(await v.get()).toBe('v2');
    expect(loads).toBe(3);
    expect(() => new RefreshingValue(() => Promise.resolve(1), -1)).toThrow(RangeError);
  });

  it('useFresh: a stale-looking failure on a cached value reloads once and retries with a new value only', async () => {
    let t = 0;
    let current = 'v1';
    let loads = 0;
    const v = new RefreshingValue(() => {
      loads++;
      return Promise.resolve(current);
    }, 1000, () => t);
    const stale = new Error('disabled');
    const used: string[] = [];
    const wrap = (version: string): Promise<string> => {
      used.push(version);
      return version === current ? Promise.resolve(`wrapped under ${version}`) : Promise.reject(stale);
    };
    const isStale = (err: unknown): boolean => err === stale;

    expect(await v.useFresh(wrap, isStale)).toBe('wrapped under v1');
    t = 10;
    current = 'v2'; // rotated elsewhere: the cached v1 now fails
    expect(await v.useFresh(wrap, isStale)).toBe('wrapped under v2');
    expect(used).toEqual(['v1', 'v1', 'v2']);
    expect(loads).toBe(2);

    // Not stale by the predicate: thrown as is, no reload.
    t = 20;
    const other = new Error('throttled');
    await expect(v.useFresh(() => Promise.reject(other), isStale)).rejects.toBe(other);
    expect(loads).toBe(2);
    // The reload gives the same value: the first error is thrown, no second attempt.
    t = 30;
    let attempts = 0;
    await expect(v.useFresh(() => (attempts++, Promise.reject(stale)), isStale)).rejects.toBe(stale);
    expect(attempts).toBe(1);
    expect(loads).toBe(3);
    // A value loaded by this very call is not stale: no reload.
    v.clear();
    t = 40;
    await expect(v.useFresh(() => Promise.reject(stale), isStale)).rejects.toBe(stale);
    expect(loads).toBe(4);
  });
});
