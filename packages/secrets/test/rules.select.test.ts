import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decryptSecrets, encryptSecrets, findRulesFile, globToRegExp, parseRulesFile } from '../src/index.js';
import { envProvider, fixture, policy } from './helpers.js';

describe('selecting values', () => {
  it('globs, regex, suffix; first rule wins; secret-looking plaintext warns', async () => {
    const rules = parseRulesFile(`
rules:
  - path: "*.metadata.**"
    encrypt: false
  - regex: "^0\\\\.(apiVersion|kind|type)$"
    encrypt: false
  - path: "**"
    encrypt: true
`);
    const plain = fixture('k8s-secret.yaml');
    const providers = [envProvider()];
    const r = await encryptSecrets(plain, { format: 'yaml', providers, policy, ...rules });
    expect(r.plaintext).toEqual(['0.apiVersion', '0.kind', '0.metadata.name', '0.metadata.namespace', '0.type', '1.metadata.name']);
    expect(r.encrypted).toContain('0.stringData.password');
    expect(r.content).toContain('name: app-secrets  # the name');
    expect(await decryptSecrets(r.content, { format: 'yaml', providers, policy })).toBe(plain);

    const env = await encryptSecrets('DB_PASSWORD_unencrypted=hunter2\nPORT_unencrypted=80\nX=1\n', { format: 'dotenv', providers, policy });
    expect(env.encrypted).toEqual(['X']);
    expect(env.warnings).toEqual([{ path: 'DB_PASSWORD_unencrypted', message: expect.stringContaining('suggests a secret') as unknown }]);
  });

  it('glob semantics', () => {
    expect(globToRegExp('a.**').test('a.b.c')).toBe(true);
    expect(globToRegExp('a.*').test('a.b.c')).toBe(false);
    expect(globToRegExp('**.password').test('x.y.password')).toBe(true);
    expect(() => parseRulesFile('rules:\n  - encrypt: false\n')).toThrow(/needs a "path" glob or a "regex"/);
  });
});

describe('key_groups in the rules file', () => {
  it('parses groups of provider references and the threshold (default: every group)', () => {
    const r = parseRulesFile('key_groups:\n  - [kf-a]\n  - [kf-b, ../kf-c]\n  - [kf-d]\nshamir_threshold: 2\n');
    expect(r.keyGroupRefs).toEqual({ threshold: 2, groups: [['kf-a'], ['kf-b', '../kf-c'], ['kf-d']] });
    expect(r.rules).toEqual([]);
    expect(parseRulesFile('key_groups:\n  - [a]\n  - [b]\n').keyGroupRefs).toEqual({ threshold: 2, groups: [['a'], ['b']] });
    expect(parseRulesFile('rules: []\n').keyGroupRefs).toBeUndefined();
  });

  it.each([
    ['threshold above the number of groups', 'key_groups: [[a], [b]]\nshamir_threshold: 3\n', /shamir_threshold must be a whole number from 1 to 2/],
    ['threshold 0', 'key_groups: [[a], [b]]\nshamir_threshold: 0\n', /shamir_threshold must be a whole number from 1 to 2/],
    ['threshold not an integer', 'key_groups: [[a], [b]]\nshamir_threshold: 1.5\n', /shamir_threshold must be a whole number/],
    ['threshold a string', 'key_groups: [[a], [b]]\nshamir_threshold: "2"\n', /shamir_threshold must be a whole number/],
    ['threshold without groups', 'shamir_threshold: 1\n', /shamir_threshold needs key_groups/],
    ['an empty group', 'key_groups: [[a], []]\nshamir_threshold: 1\n', /key_groups\[1\] is empty/],
    ['no groups', 'key_groups: []\n', /non-empty list of groups/],
    ['a group that is not a list', 'key_groups: [a, b]\n', /key_groups\[0\] must be a list/],
    ['an empty reference', 'key_groups: [[a], [""]]\n', /key_groups\[1\]\[0\] must be a non-empty string/],
    ['a non-string reference', 'key_groups: [[a], [1]]\n', /key_groups\[1\]\[0\] must be a non-empty string/],
    ['a provider in two groups', 'key_groups: [[a], [b, a]]\n', /appears in key_groups\[0\] and key_groups\[1\]/],
    ['more than 255 groups', `key_groups: [${Array.from({ length: 256 }, (_, i) => `[p${i}]`).join(', ')}]\n`, /at most 255/],
  ])('refuses %s with CONFIG_INVALID', (_, text, message) => {
    expect(() => parseRulesFile(text)).toThrow(message);
    expect(() => parseRulesFile(text)).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }) as Error);
  });
});

describe('findRulesFile', () => {
  it('finds the nearest .keyfold.yaml up the tree, or none', async () => {
    const root = mkdtempSync(join(tmpdir(), 'keyfold-rules-'));
    try {
      mkdirSync(join(root, 'a', 'b'), { recursive: true });
      writeFileSync(join(root, '.keyfold.yaml'), 'rules:\n  - path: "public.**"\n    encrypt: false\n');
      const found = await findRulesFile(join(root, 'a', 'b'));
      expect(found?.path).toBe(join(root, '.keyfold.yaml'));
      expect(found?.rules.rules).toEqual([{ path: 'public.**', encrypt: false }]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
