import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { encryptSecrets, loadSecrets } from '../src/index.js';
import { envProvider, policy } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'keyfold-secrets-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const providers = [envProvider()];

describe('loadSecrets', () => {
  it('keeps process.env untouched by default; populateEnv fills the given env only where unset', async () => {
    const { content } = await encryptSecrets('KF_TEST_ONE=1\nKF_TEST_TWO=two\n', { format: 'dotenv', providers, policy });
    const store = await loadSecrets({ content, format: 'dotenv' }, { providers, policy });
    expect(store.keys()).toEqual(['KF_TEST_ONE', 'KF_TEST_TWO']);
    expect(store.has('KF_TEST_ONE')).toBe(true);
    expect(process.env.KF_TEST_ONE).toBeUndefined();
    const env: Record<string, string | undefined> = { KF_TEST_TWO: 'kept' };
    await loadSecrets({ content, format: 'dotenv' }, { providers, policy, populateEnv: true, env });
    expect(env).toEqual({ KF_TEST_ONE: '1', KF_TEST_TWO: 'kept' });
    store.destroy();
    store.destroy();
    expect(() => store.get('KF_TEST_ONE')).toThrow(expect.objectContaining({ code: 'PROVIDER_CLOSED' }) as unknown);
  });

  it('cascades .env files and refreshes from disk', async () => {
    const base = join(dir, '.env');
    writeFileSync(base, (await encryptSecrets('A=base\nB=base\nC=base\n', { format: 'dotenv', providers, policy })).content);
    writeFileSync(`${base}.production`, (await encryptSecrets('B=prod\n', { format: 'dotenv', providers, policy })).content);
    writeFileSync(`${base}.production.local`, 'C=local\n');
    const store = await loadSecrets(base, { providers, policy, cascade: { nodeEnv: 'production' }, allowUnencrypted: true });
    expect([store.get('A'), store.get('B'), store.get('C')]).toEqual(['base', 'prod', 'local']);
    writeFileSync(`${base}.production.local`, 'C=changed\n');
    await store.refresh();
    expect(store.get('C')).toBe('changed');
    store.destroy();
  });

  it('refuses an unencrypted file unless allowed', async () => {
    await expect(loadSecrets({ content: 'A=1\n', format: 'dotenv' }, { providers, policy })).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
  });
});
