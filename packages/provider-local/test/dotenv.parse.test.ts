import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '@keyfold/envelope-core';
import { parseDotenv } from '../src/dotenv.js';

const parse = (text: string): Record<string, string> => Object.fromEntries(parseDotenv(text, 'test.env'));

describe('parseDotenv', () => {
  it('parses the supported syntax', () => {
    const text = [
      '\uFEFF# comment',
      '',
      '   # indented comment',
      'PLAIN=value',
      'SPACED = spaced value   ',
      'export EXPORTED=yes',
      "SINGLE='lit\\eral # not a comment'",
      'DOUBLE="a\\nb\\t\\"q\\" \\\\"  # trailing comment',
      'INLINE=abc # comment',
      'HASH=#not-a-comment',
      'EMPTY=',
      'EMPTY_QUOTED=""',
      'CRLF=windows\r',
      '__proto__=plain key',
    ].join('\n');
    expect(parse(text)).toEqual({
      PLAIN: 'value',
      SPACED: 'spaced value',
      EXPORTED: 'yes',
      SINGLE: 'lit\\eral # not a comment',
      DOUBLE: 'a\nb\t"q" \\',
      INLINE: 'abc',
      HASH: '#not-a-comment',
      EMPTY: '',
      EMPTY_QUOTED: '',
      CRLF: 'windows',
      ['__proto__']: 'plain key',
    });
  });

  const refusals: ReadonlyArray<[string, string]> = [
    ['no equals sign', 'JUSTTEXT'],
    ['empty name', '=value'],
    ['bad name', '1ABC=x'],
    ['name with a dash', 'A-B=x'],
    ['unterminated single quote', "A='abc"],
    ['unterminated double quote', 'A="abc'],
    ['text after a closing quote', 'A="abc" def'],
    ['an unknown escape', 'A="\\x41"'],
    ['a duplicate', 'A=1\nA=2'],
  ];
  for (const [what, text] of refusals) {
    it(`refuses ${what} with a ConfigError naming the line, not its content`, () => {
      let err: unknown;
      try {
        parseDotenv(`OK=1\n${text}`, 'test.env');
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toMatch(/^test\.env line [23]: /);
      const body = text.split('=')[1];
      if (body && body.length > 2) expect((err as Error).message).not.toContain(body);
    });
  }

  it('refuses oversized input before parsing', () => {
    expect(() => parseDotenv('A=1\n'.repeat(300_000), 'big.env')).toThrow(/larger than/);
  });

  it('round-trips any name and value written double-quoted', () => {
    const name = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,20}$/);
    const value = fc.string({ unit: 'grapheme', maxLength: 40 }).filter((s) => !s.includes('\n') && !s.includes('\r'));
    fc.assert(
      fc.property(fc.uniqueArray(fc.tuple(name, value), { selector: (t) => t[0], maxLength: 8 }), (pairs) => {
        const text = pairs.map(([k, v]) => `${k}="${v.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`).join('\n');
        expect(parse(text)).toEqual(Object.fromEntries(pairs));
      }),
    );
  });

  it('hostile input either parses or fails with a ConfigError, never anything else', () => {
    const line = fc.oneof(
      fc.string({ maxLength: 30 }),
      fc.tuple(fc.stringMatching(/^[A-Za-z_]\w{0,5}$/), fc.constantFrom('=', ' = ', '='), fc.string({ maxLength: 20 })).map((t) => t.join('')),
      fc.constantFrom("A='", 'A="\\', 'export ', 'export A', '#', '\uFEFF', '\r', 'A="x"y', '=', '"'),
    );
    fc.assert(
      fc.property(fc.array(line, { maxLength: 10 }), (lines) => {
        try {
          const vars = parseDotenv(lines.join('\n'), 'fuzz.env');
          for (const [k, v] of vars) {
            expect(k).toMatch(/^[A-Za-z_][A-Za-z0-9_]*$/);
            expect(typeof v).toBe('string');
          }
        } catch (err) {
          expect(err).toBeInstanceOf(ConfigError);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
