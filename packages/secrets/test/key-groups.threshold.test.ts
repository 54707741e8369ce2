import { describe, expect, it } from 'vitest';
import { decryptSecrets, encryptSecrets, inspectSecrets, rotateDataKey, updateKeys } from '../src/index.js';
import { envProvider, fixture, memoryProvider, policy } from './helpers.js';

describe('k-of-n key groups', () => {
  const a = envProvider('GROUP_A_V');
  const b = envProvider('GROUP_B_V');
  const c = memoryProvider('group-c');
  const keyGroups = { threshold: 2, groups: [[a], [b], [c]] };
  const plain = fixture('app.env');

  it('any two groups open a 2-of-3 file; one alone does not', async () => {
    const { content } = await encryptSecrets(plain, { format: 'dotenv', providers: [], keyGroups, policy });
    const info = inspectSecrets(content, { format: 'dotenv' });
    expect(info.keyGroups?.threshold).toBe(2);
    expect(info.keyGroups?.groups.map((g) => g.map((w) => w.keyId))).toEqual([['GROUP_A'], ['GROUP_B'], ['group-c']]);
    for (const pair of [[a, b], [b, c], [a, c]]) {
      expect(await decryptSecrets(content, { format: 'dotenv', providers: pair, policy })).toBe(plain);
    }
    for (const one of [a, b, c]) {
      await expect(decryptSecrets(content, { format: 'dotenv', providers: [one], policy })).rejects.toMatchObject({ code: 'DECRYPT_FAILED' });
    }
    await expect(updateKeys(content, { format: 'dotenv', providers: [a, b], to: [a], policy })).rejects.toThrow(TypeError);
  });

  it('rotateDataKey moves a single-provider file to key groups and back', async () => {
    const single = (await encryptSecrets(plain, { format: 'dotenv', providers: [a], policy })).content;
    const grouped = await rotateDataKey(single, { format: 'dotenv', providers: [a], keyGroups, policy });
    expect(await decryptSecrets(grouped, { format: 'dotenv', providers: [b, c], policy })).toBe(plain);
    const back = await rotateDataKey(grouped, { format: 'dotenv', providers: [a, c], to: [b], policy });
    expect(await decryptSecrets(back, { format: 'dotenv', providers: [b], policy })).toBe(plain);
  });
});
