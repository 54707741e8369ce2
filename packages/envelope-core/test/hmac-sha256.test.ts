import { createHmac, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { hmacSha256, MAX_SCRATCH_MESSAGE } from '../src/hmac-sha256.js';

const reference = (key: Uint8Array, a: Uint8Array, b: Uint8Array): string => createHmac('sha256', key).update(a).update(b).digest('hex');

describe('hmacSha256 (one-shot, two crypto.hash calls)', () => {
  it('equals createHmac for keys of 0..80 bytes (shorter, equal to and longer than the 64-byte block)', () => {
    for (let k = 0; k <= 80; k++) {
      const key = randomBytes(k);
      const a = randomBytes(k % 30);
      const b = randomBytes(17);
      expect(Buffer.from(hmacSha256(key, a, b)).toString('hex'), `key ${k} B`).toBe(reference(key, a, b));
    }
  });

  it('equals createHmac for messages around the scratch limit and for empty parts', () => {
    const key = randomBytes(32);
    for (const n of [0, 1, 55, 56, 63, 64, 65, 1000, MAX_SCRATCH_MESSAGE - 1, MAX_SCRATCH_MESSAGE, MAX_SCRATCH_MESSAGE + 1, 70_000]) {
      const msg = randomBytes(n);
      const split = Math.floor(n / 3);
      expect(Buffer.from(hmacSha256(key, msg.subarray(0, split), msg.subarray(split))).toString('hex'), `${n} B`).toBe(
        reference(key, msg.subarray(0, split), msg.subarray(split)),
      );
    }
  });

  it('RFC 4231 test case 2 ("Jefe")', () => {
    const out = hmacSha256(Buffer.from('Jefe'), Buffer.from('what do ya want '), Buffer.from('for nothing?'));
    expect(Buffer.from(out).toString('hex')).toBe('5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843');
  });

  it('returns a fresh buffer each call, unchanged by later calls (no shared scratch handed out)', () => {
    const key = randomBytes(32);
    const first = hmacSha256(key, Buffer.from('a'), Buffer.from('b'));
    const copy = Buffer.from(first);
    const second = hmacSha256(key, Buffer.from('c'), Buffer.from('d'));
    expect(second.buffer === first.buffer && second.byteOffset === first.byteOffset).toBe(false);
    expect(Buffer.from(first).equals(copy)).toBe(true);
  });
});
