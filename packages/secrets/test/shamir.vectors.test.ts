import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { combineShares, splitSecret } from '../src/shamir.js';

describe('shamir', () => {
  it('any k of n shares rebuild the secret; k-1 do not', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 32 }), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 5 }), (secret, n0, k0) => {
        const n = Math.max(n0, k0);
        const k = Math.min(n0, k0);
        const shares = splitSecret(secret, n, k);
        expect(combineShares(shares.slice(n - k))).toEqual(secret);
        expect(combineShares(shares)).toEqual(secret);
        if (k > 1 && secret.some((b) => b !== 0)) {
          // k-1 shares interpolate to something else with overwhelming probability for 32-byte secrets.
          if (secret.length === 32) expect(combineShares(shares.slice(0, k - 1))).not.toEqual(secret);
        }
      }),
      { numRuns: 100 },
    );
  });

  it('refuses bad parameters', () => {
    expect(() => splitSecret(new Uint8Array(32), 2, 3)).toThrow(RangeError);
    expect(() => combineShares([])).toThrow(RangeError);
    const [a] = splitSecret(new Uint8Array(32), 2, 2);
    expect(() => combineShares([a as Uint8Array, a as Uint8Array])).toThrow(/distinct/);
  });
});
