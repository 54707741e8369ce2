/**
 * Encryption context: canonical encoding, validation, binding to the envelope and to wrapped keys.
 */
import { describe, expect, it } from 'vitest';
import {
  assertContext,
  contextsEqual,
  createEnvelope,
  encodeContext,
  MAX_CONTEXT_ENTRIES,
  MAX_CONTEXT_FIELD,
} from '../src/index.js';
import { expectKeyfold, LocalKekProvider } from './helpers.js';
import { refEncodeContext, refParseHeader, refSerializeHeader } from './reference.js';

describe('canonical encoding', () => {
  it('matches docs/FORMAT.md byte for byte, independent of key order', () => {
    expect(Array.from(encodeContext({}))).toEqual([0, 0]);
    expect(Array.from(encodeContext({ b: '2', a: '1' }))).toEqual([0, 2, 0, 1, 0x61, 0, 1, 0x31, 0, 1, 0x62, 0, 1, 0x32]);
    const ctx = { zeta: 'z', 'Ä': 'umlaut', alpha: '', '10': 'ten', '9': 'nine', '😀': 'emoji' };
    expect(Buffer.from(encodeContext(ctx))).toEqual(Buffer.from(refEncodeContext(ctx)));
    const reversed = Object.fromEntries(Object.entries(ctx).reverse());
    expect(Buffer.from(encodeContext(reversed))).toEqual(Buffer.from(encodeContext(ctx)));
  });

  it('sorts by UTF-8 bytes, not UTF-16 code units', () => {
    // U+FF5E (EF BD 9E) sorts before U+1F600 (F0 9F 98 80) in UTF-8, after it in UTF-16 ("\uD83D\uDE00").
    const enc = encodeContext({ '😀': '1', '～': '2' });
    const first = enc.subarray(4, 4 + 3);
    expect(Buffer.from(first)).toEqual(Buffer.from('～', 'utf8'));
  });

  it('contextsEqual ignores order, not values or extra keys', () => {
    expect(contextsEqual({ a: '1', b: '2' }, { b: '2', a: '1' })).toBe(true);
    expect(contextsEqual({ a: '1' }, { a: '2' })).toBe(false);
    expect(contextsEqual({ a: '1' }, { a: '1', b: '' })).toBe(false);
    expect(contextsEqual({}, {})).toBe(true);
    expect(contextsEqual({ toString: 'x' }, {})).toBe(false);
    expect(contextsEqual({}, { toString: 'x' })).toBe(false);
  });
});

describe('validation (caller mistakes)', () => {
  it('refuses non-objects, non-string values, empty keys and lone surrogates with TypeError', () => {
    for (const bad of [null, undefined, 'a=b', 1, ['a'], { a: 1 }, { a: null }, { '': 'x' }, { a: '\udc00' }, { '\ud83d': 'x' }]) {
      expect(() => assertContext(bad)).toThrow(TypeError);
    }
  });

  it('refuses too many entries and too-long fields with RangeError', () => {
    const many = Object.fromEntries(Array.from({ length: MAX_CONTEXT_ENTRIES + 1 }, (_, i) => [`k${i}`, 'v']));
    expect(() => assertContext(many)).toThrow(RangeError);
    expect(() => assertContext({ k: 'x'.repeat(MAX_CONTEXT_FIELD + 1) })).toThrow(RangeError);
    expect(() => assertContext({ k: 'é'.repeat(MAX_CONTEXT_FIELD / 2 + 1) })).toThrow(RangeError); // counted in UTF-8 bytes
    expect(() => assertContext({ k: 'x'.repeat(MAX_CONTEXT_FIELD) })).not.toThrow();
  });

  it('seal / open with a bad context are TypeErrors before any key access', async () => {
    const p = new LocalKekProvider();
    const env = createEnvelope({ providers: [p] });
    await expect(env.seal('x', { a: 1 } as never)).rejects.toBeInstanceOf(TypeError);
    const s = await env.seal('x');
    await expect(env.open(s, { context: { a: '\ud800' } })).rejects.toBeInstanceOf(TypeError);
    expect(() => env.openStream({ context: 'x' as never })).toThrow(TypeError);
    expect(p.unwraps).toBe(0);
  });
});

describe('binding', () => {
  const p = new LocalKekProvider({ keyId: 'ctx-kek' });
  const env = createEnvelope({ providers: [p] });

  it('the stored context is returned by inspect and checked by open', async () => {
    const s = await env.seal('bound', { tenant: 'a', 'ü': 'ß' });
    expect(env.inspect(s).context).toEqual({ tenant: 'a', 'ü': 'ß' });
    expect(new TextDecoder().decode(await env.open(s, { context: { 'ü': 'ß', tenant: 'a' } }))).toBe('bound');
    await expectKeyfold(() => env.open(s, { context: { tenant: 'a' } }), 'CONTEXT_MISMATCH');
    await expectKeyfold(() => env.open(s, { context: { tenant: 'a', 'ü': 'ss' } }), 'CONTEXT_MISMATCH');
  });

  it('a context rewritten in the header (canonically, same length) is refused', async () => {
    const s = await env.seal('bound', { tenant: 'a' });
    const h = refParseHeader(s);
    const forged = refSerializeHeader({
      contextBytes: refEncodeContext({ tenant: 'b' }),
      wrappedKeys: h.wrappedKeys,
      salt: h.salt,
      commitment: h.commitment,
    });
    const m = Uint8Array.from(Buffer.concat([forged, s.subarray(h.length)]));
    expect(env.inspect(m).context).toEqual({ tenant: 'b' });
    // The wrapped key is bound to the context (unwrap fails), the commitment covers it, and so does every frame's AAD.
    await expectKeyfold(() => env.open(m), 'DECRYPT_FAILED');
    await expectKeyfold(() => env.open(m, { context: { tenant: 'b' } }), 'DECRYPT_FAILED');
  });

  it('keys with prototype names are ordinary keys', async () => {
    const ctx = JSON.parse('{"__proto__":"p","constructor":"c","toString":"t"}') as Record<string, string>;
    const s = await env.seal('proto', ctx);
    expect(Object.keys(env.inspect(s).context).sort()).toEqual(['__proto__', 'constructor', 'toString']);
    expect(new TextDecoder().decode(await env.open(s, { context: ctx }))).toBe('proto');
    await expectKeyfold(() => env.open(s, { context: { constructor: 'c', toString: 't' } }), 'CONTEXT_MISMATCH');
  });
});
