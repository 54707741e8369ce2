/**
 * The keyring parser against hostile input: whatever the bytes, it returns a validated document or throws a
 * coded FormatError / UnsupportedFormatError, before any key derivation.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FormatError, UnsupportedFormatError } from '@keyfold/envelope-core';
import { deriveKekFileKeys, finishKekFile, newKdfParams, openKekFile, parseKekFile, sealKek, serializeKekFile } from '../src/kek-file-format.js';

async function sampleKeyring(): Promise<string> {
  const kdf = newKdfParams({ name: 'pbkdf2-sha256', iterations: 1000 });
  const keys = await deriveKekFileKeys(new TextEncoder().encode('pass'), kdf);
  const entries = ['1', '2'].map((v) => sealKek(keys, 'file-00000000', kdf, v, '2025-01-01T00:00:00.000Z', new Uint8Array(32).fill(Number(v))));
  return serializeKekFile(finishKekFile(keys, { keyId: 'file-00000000', kdf, active: '2', versions: entries }));
}

function expectParsedOrCoded(text: string): void {
  try {
    const doc = parseKekFile(text, 'k.json');
    expect(doc.versions.length).toBeGreaterThan(0);
    expect(doc.versions.some((v) => v.version === doc.active)).toBe(true);
  } catch (err) {
    expect(err instanceof FormatError || err instanceof UnsupportedFormatError, String(err)).toBe(true);
  }
}

describe('parseKekFile', () => {
  it('round-trips what serializeKekFile writes, and the result opens', async () => {
    const text = await sampleKeyring();
    const doc = parseKekFile(text, 'k.json');
    expect(serializeKekFile(doc)).toBe(text);
    const keys = await deriveKekFileKeys(new TextEncoder().encode('pass'), doc.kdf);
    const keks = openKekFile(keys, doc, 'k.json');
    expect([...keks.keys()]).toEqual(['1', '2']);
    expect(keks.get('2')).toEqual(new Uint8Array(32).fill(2));
  });

  it('arbitrary text fails with a coded error or parses', () => {
    fc.assert(fc.property(fc.string({ maxLength: 200 }), expectParsedOrCoded), { numRuns: 2000 });
  });

  it('arbitrary JSON values fail with a coded error', () => {
    fc.assert(fc.property(fc.jsonValue({ maxDepth: 4 }), (v) => expectParsedOrCoded(JSON.stringify(v))), { numRuns: 2000 });
  });

  it('every field of a real keyring replaced by an arbitrary JSON value fails with a coded error or parses', async () => {
    const base = JSON.parse(await sampleKeyring()) as Record<string, unknown>;
    const paths: ReadonlyArray<ReadonlyArray<string | number>> = [
      ['format'],
      ['keyId'],
      ['kdf'],
      ['kdf', 'name'],
      ['kdf', 'iterations'],
      ['kdf', 'salt'],
      ['check'],
      ['active'],
      ['versions'],
      ['versions', 0],
      ['versions', 0, 'version'],
      ['versions', 0, 'createdAt'],
      ['versions', 1, 'sealed'],
      ['mac'],
    ];
    fc.assert(
      fc.property(fc.constantFrom(...paths), fc.jsonValue({ maxDepth: 2 }), (path, value) => {
        const doc = structuredClone(base);
        let target = doc as Record<string | number, unknown>;
        for (const step of path.slice(0, -1)) target = target[step] as Record<string | number, unknown>;
        target[path[path.length - 1] as string | number] = value;
        expectParsedOrCoded(JSON.stringify(doc));
      }),
      { numRuns: 3000 },
    );
  });

  it('refuses oversized input and absurd KDF parameters before deriving anything', () => {
    expect(() => parseKekFile(' '.repeat(1024 * 1024 + 1), 'k.json')).toThrow(FormatError);
    const scrypt = { name: 'scrypt', N: 2 ** 20, r: 32, p: 1, salt: 'AAAAAAAAAAAAAAAAAAAAAA' };
    const doc = { format: 1, keyId: 'k', kdf: scrypt, check: '', active: '1', versions: [], mac: '' };
    expect(() => parseKekFile(JSON.stringify(doc), 'k.json')).toThrow(/1 GiB/);
  });
});
