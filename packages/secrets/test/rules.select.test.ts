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
