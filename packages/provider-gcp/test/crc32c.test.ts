/**
 * CRC32C: the standard check value, the RFC 3720 (iSCSI) test vectors, and a cross-check against the emulator's
 * independent bit-by-bit implementation over random inputs of every length around the 8-byte slicing boundary.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { crc32c } from '../src/crc32c.js';
import { crc32c as bitwiseCrc32c } from '../../../tooling/emulators/src/gcp-kms/crc32c.js';

describe('crc32c', () => {
  it('gives the standard check value for "123456789"', () => {
    expect(crc32c(new TextEncoder().encode('123456789'))).toBe(0xe3069283);
  });

  it('matches the RFC 3720 B.4 vectors', () => {
    expect(crc32c(new Uint8Array(0))).toBe(0);
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
    expect(crc32c(new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43);
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i))).toBe(0x46dd794e);
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i))).toBe(0x113fdb5c);
  });

  it('does not match a wrong value (a one-bit change changes the checksum)', () => {
    const data = new TextEncoder().encode('123456789');
    data[4] = (data[4] as number) ^ 1;
    expect(crc32c(data)).not.toBe(0xe3069283);
  });

  it('agrees with an independent bit-by-bit implementation on random data', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 70 }), (data) => {
        expect(crc32c(data)).toBe(bitwiseCrc32c(data));
      }),
      { numRuns: 300 },
    );
  });

  it('reads only the bytes of a view, not its whole buffer', () => {
    const big = Uint8Array.from({ length: 64 }, (_, i) => i * 7);
    const view = big.subarray(5, 45);
    expect(crc32c(view)).toBe(bitwiseCrc32c(Uint8Array.from(view)));
  });
});
