/**
 * Shamir secret sharing over GF(2^8) (the AES field, polynomial 0x11b), for k-of-n key groups: the file data key is
 * split into n shares, any k of which rebuild it. A wrong or tampered share rebuilds a wrong key, which the file MAC
 * then refuses; shares are also stored inside authenticated envelopes.
 *
 * Note: the field arithmetic uses log/exp tables, whose memory access pattern depends on secret bytes. That matters
 * only to an attacker who can measure this process's cache timing while it splits or combines a data key.
 * @module
 */
import { randomBytes } from 'node:crypto';

const EXP = new Uint8Array(510);
const LOG = new Uint8Array(256);
{
  let x = 1;
  for (let i = 0; i < 255; i++) {
    EXP[i] = x;
    LOG[x] = i;
    x ^= (x << 1) ^ (x & 0x80 ? 0x11b : 0); // multiply by the generator 3
    x &= 0xff;
  }
  for (let i = 255; i < 510; i++) EXP[i] = EXP[i - 255] as number;
}

function mul(a: number, b: number): number {
  return a === 0 || b === 0 ? 0 : (EXP[(LOG[a] as number) + (LOG[b] as number)] as number);
}

function div(a: number, b: number): number {
  if (b === 0) throw new RangeError('division by zero in GF(256)');
  return a === 0 ? 0 : (EXP[(LOG[a] as number) + 255 - (LOG[b] as number)] as number);
}

/** Splits `secret` into `n` shares (`[x, ...y]`, x = 1..n) of which any `k` rebuild it. */
export function splitSecret(secret: Uint8Array, n: number, k: number): Uint8Array[] {
  if (!Number.isInteger(n) || n < 1 || n > 255) throw new RangeError(`the number of key groups must be 1 to 255; got ${n}`);
  if (!Number.isInteger(k) || k < 1 || k > n) throw new RangeError(`threshold must be an integer from 1 to ${n}; got ${k}`);
  const shares = Array.from({ length: n }, (_, i) => {
    const s = new Uint8Array(secret.length + 1);
    s[0] = i + 1;
    return s;
  });
  const coeffs = new Uint8Array(k);
  for (let b = 0; b < secret.length; b++) {
    coeffs[0] = secret[b] as number;
    coeffs.set(randomBytes(k - 1), 1);
    for (const s of shares) {
      const x = s[0] as number;
      let y = 0;
      for (let c = k - 1; c >= 0; c--) y = mul(y, x) ^ (coeffs[c] as number);
      s[b + 1] = y;
    }
  }
  coeffs.fill(0);
  return shares;
}

/** Rebuilds the secret from `k` or more shares with distinct x (Lagrange interpolation at 0). */
export function combineShares(shares: readonly Uint8Array[]): Uint8Array {
  const first = shares[0];
  if (!first) throw new RangeError('no shares');
  const xs = shares.map((s) => s[0] as number);
  if (new Set(xs).size !== xs.length || xs.includes(0)) throw new RangeError('shares must have distinct, non-zero x');
  const out = new Uint8Array(first.length - 1);
  for (let b = 0; b < out.length; b++) {
    let acc = 0;
    shares.forEach((s, i) => {
      let l = 1;
      xs.forEach((xj, j) => {
        if (j !== i) l = mul(l, div(xj, xj ^ (xs[i] as number)));
      });
      acc ^= mul(s[b + 1] as number, l);
    });
    out[b] = acc;
  }
  return out;
}
