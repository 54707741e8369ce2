import { describe, expect, it } from 'vitest';
import { decryptSecrets, encryptSecrets, inspectSecrets, rotateDataKey, updateKeys } from '../src/index.js';
import { envProvider, fixture, memoryProvider, policy } from './helpers.js';

describe('providers', () => {
  it('updateKeys adds a second provider; each alone then opens the file', async () => {
    const a = envProvider();
    const b = memoryProvider('second');
    const plain = fixture('app-package.json');
    const one = (await encryptSecrets(plain, { format: 'json', providers: [a], policy })).content;
    await expect(decryptSecrets(one, { format: 'json', providers: [b], policy })).rejects.toMatchObject({ code: 'DECRYPT_FAILED' });
    const both = await updateKeys(one, { format: 'json', providers: [a], to: [a, b], policy });
    expect(inspectSecrets(both, { format: 'json' }).wrappedKeys.map((w) => w.kind).sort()).toEqual(['env', 'memory']);
    // Only the data_key field changed: every value keeps its ciphertext.
    expect(both.split('\n').filter((l) => !l.includes('"data_key"'))).toEqual(one.split('\n').filter((l) => !l.includes('"data_key"')));
    expect(await decryptSecrets(both, { format: 'json', providers: [a], policy })).toBe(plain);
    expect(await decryptSecrets(both, { format: 'json', providers: [b], policy })).toBe(plain);
  });

  it.each([
    ['app.env', 'dotenv'],
    ['docker-compose.yaml', 'yaml'],
    ['config.toml', 'toml'],
  ] as const)('updateKeys on %s keeps the file decryptable to the same plaintext', async (file, format) => {
    const a = envProvider();
    const b = envProvider('OTHER_KEK_V');
    const plain = fixture(file);
    const one = (await encryptSecrets(plain, { format, providers: [a], policy })).content;
    const both = await updateKeys(one, { format, providers: [a], to: [a, b], policy });
    const onlyB = await updateKeys(both, { format, providers: [b], to: [b], policy });
    expect(await decryptSecrets(onlyB, { format, providers: [b], policy })).toBe(plain);
    await expect(decryptSecrets(onlyB, { format, providers: [a], policy })).rejects.toMatchObject({ code: 'DECRYPT_FAILED' });
  });

  it('rotateDataKey changes every ciphertext, keeps the plaintext and the encrypted set', async () => {
    const p = envProvider();
    const options = { format: 'dotenv' as const, providers: [p], policy };
    const plain = fixture('app.env');
    const first = await encryptSecrets(plain, options);
    const rotated = await rotateDataKey(first.content, options);
    const encs = (t: string) => t.match(/ENC\[[^\]]*\]/g) ?? [];
    expect(encs(rotated)).toHaveLength(encs(first.content).length);
    for (const e of encs(first.content)) expect(rotated).not.toContain(e);
    expect(await decryptSecrets(rotated, options)).toBe(plain);
  });
});

describe('re-encryption keeps unchanged ciphertexts', () => {
  it('only the edited value changes', async () => {
    const options = { format: 'yaml' as const, providers: [envProvider()], policy };
    const plain = fixture('docker-compose.yaml');
    const v1 = (await encryptSecrets(plain, options)).content;
    const edited = plain.replace("POSTGRES_PASSWORD: 's3cr3t'", "POSTGRES_PASSWORD: 'n3w'");
    const v2 = (await encryptSecrets(edited, { ...options, previous: v1 })).content;
    const changed = v1
      .split('\n')
      .map((l, i) => [l, v2.split('\n')[i]])
      .filter(([x, y]) => x !== y)
      .map(([x]) => (x as string).trim().split(':')[0]);
    expect(changed).toEqual(['POSTGRES_PASSWORD', 'mac', 'last_modified']);
    expect(await decryptSecrets(v2, options)).toBe(edited);
  });

  it('a tampered previous version is refused', async () => {
    const options = { format: 'dotenv' as const, providers: [envProvider()], policy };
    const v1 = (await encryptSecrets('A=1\nB=2\n', options)).content;
    const bad = v1.split('\n').slice(1).join('\n');
    await expect(encryptSecrets('A=1\nB=2\n', { ...options, previous: bad })).rejects.toMatchObject({ code: 'INTEGRITY_FAILED' });
  });
});
