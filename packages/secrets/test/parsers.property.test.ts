import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decryptSecrets, encryptSecrets, isKeyfoldError, loadSecrets, parseRulesFile, type SecretsFormat } from '../src/index.js';
import { envProvider, policy } from './helpers.js';

const providers = [envProvider()];
const formats: SecretsFormat[] = ['dotenv', 'json', 'yaml', 'toml'];

describe('hostile input', () => {
  it.each(formats)('%s: arbitrary text is either encrypted and round-trips, or refused with a coded error', async (format) => {
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 60 }), async (text) => {
        try {
          const { content } = await encryptSecrets(text, { format, providers, policy });
          expect(await decryptSecrets(content, { format, providers, policy })).toBe(text);
        } catch (err) {
          expect(isKeyfoldError(err), String(err)).toBe(true);
        }
        await expect(loadSecrets({ content: text, format }, { providers, policy })).rejects.toSatisfy(isKeyfoldError);
      }),
      { numRuns: Number(process.env.KF_RUNS ?? 60) },
    );
  });
});

describe('rules file parser', () => {
  it('returns rules or throws CONFIG_INVALID for any text', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.constantFrom('rules: 1', 'rules:\n  - regex: "("', 'rules:\n  - path: a\n    encrypt: yes', '- a', 'unencrypted_suffix: 1', 'key_groups: [[a], []]', 'key_groups: [[a]]\nshamir_threshold: 2', 'key_groups: {a: 1}', 'shamir_threshold: x')), (text) => {
        try {
          const r = parseRulesFile(text);
          expect(Array.isArray(r.rules)).toBe(true);
        } catch (err) {
          expect(err).toMatchObject({ code: 'CONFIG_INVALID' });
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe('round trips', () => {
  it('any .env value written double-quoted comes back byte for byte and as the same string', async () => {
    const escape = (s: string) => s.replace(/[\\"$]/g, '\\$&').replace(/\n/g, '\\n').replace(/\t/g, '\\t').replace(/\r/g, '\\r');
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 40 }), fc.string({ maxLength: 40 }), async (a, b) => {
        const text = `# c\nA="${escape(a)}"\nexport B='${b.replace(/'/g, '')}'\n`;
        const { content } = await encryptSecrets(text, { format: 'dotenv', providers, policy });
        expect(await decryptSecrets(content, { format: 'dotenv', providers, policy })).toBe(text);
        const store = await loadSecrets({ content, format: 'dotenv' }, { providers, policy });
        expect(store.get('A') ?? '').toBe(a);
        expect(store.get('B') ?? '').toBe(b.replace(/'/g, ''));
      }),
      { numRuns: 40 },
    );
  });

  it('any JSON string value round-trips', async () => {
    await fc.assert(
      fc.asyncProperty(fc.dictionary(fc.string({ maxLength: 8 }).filter((k) => k !== 'keyfold'), fc.oneof(fc.string(), fc.integer(), fc.boolean())), async (obj) => {
        const text = JSON.stringify(obj, null, 2);
        const { content } = await encryptSecrets(text, { format: 'json', providers, policy });
        expect(await decryptSecrets(content, { format: 'json', providers, policy })).toBe(text);
      }),
      { numRuns: 40 },
    );
  });
});

const vocab: Record<SecretsFormat, string[]> = {
  yaml: ['a: 1', "b: 'x' # c", '- y', '  c: d', '# comment', '', 'k: |', '  lit', '---', 'x: {a: 1, b: "t"}', 'z: [1, 2]', 'e:', 'q: "s"', 'n: &r v', 'm: *r', '...'],
  toml: ['a = 1', 'b = "x" # c', '[t]', '[[arr]]', '# comment', '', 'c = [1, "2"]', 'd = { e = "f" }', "g = '''x", "y'''", 'h.i = true', 'j = 1979-05-27'],
  dotenv: ['A=1', 'export B="x y"', "C='z'", '# c', '', 'D=e # f', 'E="multi', 'line"', 'F=', 'G = spaced'],
  json: ['{', '}', '"a": 1', '"b": "x",', '[1, "2"]', '', '  "c": {"d": null}', ','],
};

describe('structured hostile input', () => {
  it.each(formats)('%s: lines of real syntax, recombined, round-trip or are refused with a coded error', async (format) => {
    const line = fc.constantFrom(...vocab[format]);
    await fc.assert(
      fc.asyncProperty(fc.array(line, { maxLength: 8 }), fc.boolean(), async (lines, finalNewline) => {
        const text = lines.join('\n') + (finalNewline && lines.length > 0 ? '\n' : '');
        let content: string;
        try {
          content = (await encryptSecrets(text, { format, providers, policy })).content;
        } catch (err) {
          expect(isKeyfoldError(err), String(err)).toBe(true);
          return;
        }
        expect(await decryptSecrets(content, { format, providers, policy })).toBe(text);
        const store = await loadSecrets({ content, format }, { providers, policy });
        store.destroy();
      }),
      { numRuns: Number(process.env.KF_RUNS ?? 60) },
    );
  });
});
