/**
 * Telling armor from binary by the first bytes: any `kf` after ASCII whitespace is armor (so an unsupported armor
 * version reaches dearmor's own error), the binary magic `KF` never is, and detection waits for two bytes.
 */
import { describe, expect, it } from 'vitest';
import { armor, canDetectArmor, looksArmored, skipAsciiWhitespace } from '../src/index.js';

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('armor detection', () => {
  it('finds armor after spaces, tabs and newlines, of any version', () => {
    expect(looksArmored(bytes(armor(new Uint8Array([0x4b, 0x46, 1]))))).toBe(true);
    expect(looksArmored(bytes(' \t\r\nkf1.AAAA'))).toBe(true);
    expect(looksArmored(bytes('kf2.AAAA'))).toBe(true);
  });

  it('never takes the binary magic, other text or too little input for armor', () => {
    expect(looksArmored(new Uint8Array([0x4b, 0x46, 0x01, 0x01]))).toBe(false);
    expect(looksArmored(bytes('Kf1.'))).toBe(false);
    expect(looksArmored(bytes('\fkf1.'))).toBe(false); // form feed is not skipped
    expect(looksArmored(bytes('k'))).toBe(false);
    expect(looksArmored(new Uint8Array(0))).toBe(false);
  });

  it('waits for two bytes after leading whitespace', () => {
    expect(canDetectArmor(bytes('\n\n k'))).toBe(false);
    expect(canDetectArmor(bytes('\n\n kf'))).toBe(true);
    expect(canDetectArmor(new Uint8Array([0x4b, 0x46]))).toBe(true);
    expect(skipAsciiWhitespace(bytes(' \t\r\n'))).toBe(4);
    expect(skipAsciiWhitespace(bytes(' x '))).toBe(1);
  });
});
