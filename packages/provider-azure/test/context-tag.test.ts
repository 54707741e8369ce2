/**
 * The keyed digest that binds the context to a Key Vault wrapped key: recomputed here from its documented layout
 * with node:crypto, and checked to change with every bound field and to refuse every malformed stored layout.
 */
import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeContext } from '@keyfold/envelope-core';
import { contextTag, openStored, sealStored, tagMatches, TAG_LENGTH, type TagBinding } from '../src/context-tag.js';

const KEY = Uint8Array.from({ length: 32 }, (_, i) => 255 - i);
const BINDING: TagBinding = { kind: 'azure-kv', keyId: 'https://v.vault.azure.net/keys/kek', version: '0123456789abcdef0123456789abcdef', algorithm: 'RSA-OAEP-256' };

function documented(key: Uint8Array, b: TagBinding, context: Record<string, string>): Buffer {
  const parts: Buffer[] = [Buffer.from('keyfold/v1/azure-kv/ctx\0', 'latin1')];
  for (const f of [b.kind, b.keyId, b.version, b.algorithm]) {
    const bytes = Buffer.from(f, 'utf8');
    const len = Buffer.alloc(2);
    len.writeUInt16BE(bytes.length);
    parts.push(len, bytes);
  }
  const ctx = Buffer.from(encodeContext(context));
  const len = Buffer.alloc(4);
  len.writeUInt32BE(ctx.length);
  parts.push(len, ctx);
  return createHmac('sha256', key).update(Buffer.concat(parts)).digest();
}

describe('context tag', () => {
  it('is HMAC-SHA-256 over the documented layout', () => {
    const context = { tenant: 'acme', table: 'users' };
    expect(Buffer.from(contextTag(KEY, BINDING, context))).toEqual(documented(KEY, BINDING, context));
    expect(Buffer.from(contextTag(KEY, BINDING, {}))).toEqual(documented(KEY, BINDING, {}));
  });

  it('changes with the context, every identity field and the data key', () => {
    const base = contextTag(KEY, BINDING, { a: 'bc' });
    const variants: Uint8Array[] = [
      contextTag(KEY, BINDING, { ab: 'c' }),
      contextTag(KEY, BINDING, { a: 'bc', d: '' }),
      contextTag(KEY, { ...BINDING, kind: 'azure-kv2' }, { a: 'bc' }),
      contextTag(KEY, { ...BINDING, keyId: `${BINDING.keyId}2` }, { a: 'bc' }),
      contextTag(KEY, { ...BINDING, version: 'f'.repeat(32) }, { a: 'bc' }),
      contextTag(KEY, { ...BINDING, algorithm: 'A256KW' }, { a: 'bc' }),
      contextTag(new Uint8Array(32), BINDING, { a: 'bc' }),
    ];
    for (const v of variants) expect(Buffer.from(v).equals(Buffer.from(base))).toBe(false);
    expect(tagMatches(KEY, BINDING, { a: 'bc' }, base)).toBe(true);
    expect(tagMatches(KEY, BINDING, { ab: 'c' }, base)).toBe(false);
  });

  it('matches only the exact context (property)', () => {
    const ctx = fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), fc.string({ maxLength: 8 }), { maxKeys: 4 });
    fc.assert(
      fc.property(ctx, ctx, (a, b) => {
        const same = JSON.stringify(Object.entries(a).sort()) === JSON.stringify(Object.entries(b).sort());
        expect(tagMatches(KEY, BINDING, b, contextTag(KEY, BINDING, a))).toBe(same);
      }),
      { numRuns: 200 },
    );
  });

  it('stores 0x01 || wrapped || tag and refuses any other layout', () => {
    const wrapped = Uint8Array.from({ length: 40 }, (_, i) => i);
    const tag = contextTag(KEY, BINDING, {});
    const stored = sealStored(wrapped, tag);
    expect(stored.length).toBe(1 + 40 + TAG_LENGTH);
    expect(stored[0]).toBe(1);
    const opened = openStored(stored);
    expect(Buffer.from(opened!.wrapped)).toEqual(Buffer.from(wrapped));
    expect(Buffer.from(opened!.tag)).toEqual(Buffer.from(tag));
    expect(openStored(new Uint8Array(0))).toBeUndefined();
    expect(openStored(stored.slice(0, 1 + TAG_LENGTH))).toBeUndefined();
    const otherLayout = Uint8Array.from(stored);
    otherLayout[0] = 2;
    expect(openStored(otherLayout)).toBeUndefined();
  });
});
