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
});
