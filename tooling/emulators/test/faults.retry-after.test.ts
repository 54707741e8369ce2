/**
 * Retry-After in fault mode: every throttling answer asks for a delay drawn from `retryAfterSeconds` (default 0..3 s)
 * with the seeded PRNG, so values vary between answers and repeat between runs with the same seed.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { FaultController, startVaultTransitEmulator } from '../src/index.js';

const vault = await startVaultTransitEmulator({ port: 0 });
afterAll(() => vault.close());

async function retryAfterOfThrottledRequest(): Promise<string | null> {
  const res = await fetch(`${vault.url}/v1/transit/keys/k`, { headers: { 'x-vault-token': vault.rootToken } });
  expect(res.status).toBe(429);
  return res.headers.get('retry-after');
}

describe('fault mode Retry-After', () => {
  it('default: varied whole seconds in [0, 3], recorded in retryAfterSent, the same sequence for the same seed', async () => {
    vault.faults.set({ throttleRatio: 1, seed: 99 });
    const first: (string | null)[] = [];
    for (let i = 0; i < 20; i++) first.push(await retryAfterOfThrottledRequest());
    expect(first.every((v) => v !== null && /^[0-3]$/.test(v))).toBe(true);
    expect(new Set(first).size).toBeGreaterThan(2);
    expect(vault.faults.retryAfterSent.map(String)).toEqual(first);
    vault.faults.set({ throttleRatio: 1, seed: 99 });
    const again: (string | null)[] = [];
    for (let i = 0; i < 20; i++) again.push(await retryAfterOfThrottledRequest());
    expect(again).toEqual(first);
  });

  it('a range, or false for no header; set over the admin endpoint too', async () => {
    const admin = await fetch(`${vault.url}/__keyfold/faults`, { method: 'POST', body: JSON.stringify({ throttleRatio: 1, retryAfterSeconds: { min: 7, max: 7 } }) });
    expect(admin.status).toBe(200);
    expect(await retryAfterOfThrottledRequest()).toBe('7');
    vault.faults.set({ throttleRatio: 1, retryAfterSeconds: false });
    expect(await retryAfterOfThrottledRequest()).toBeNull();
    expect(vault.faults.retryAfterSent).toEqual([]);
    vault.faults.clear();
  });

  it('refuses a malformed range', () => {
    const f = new FaultController();
    expect(() => f.set({ retryAfterSeconds: { min: -1, max: 2 } })).toThrow(RangeError);
    expect(() => f.set({ retryAfterSeconds: { min: 1.5, max: 2 } })).toThrow(RangeError);
    expect(() => f.set({ retryAfterSeconds: { min: 3, max: 2 } })).toThrow(RangeError);
    expect(() => f.set({ retryAfterSeconds: 5 as unknown as false })).toThrow(TypeError);
  });
});
