import { describe, expect, it } from 'vitest';
import { decryptSecrets, encryptSecrets, loadSecrets } from '../src/index.js';
import { envProvider, fixture, memoryProvider, policy } from './helpers.js';

const providers = [envProvider()];

async function encryptedEnv(): Promise<string> {
  return (await encryptSecrets('A=alpha\nB=bravo\nC=charlie\n', { format: 'dotenv', providers, policy })).content;
}

function lines(text: string): string[] {
  return text.split('\n');
}

async function refusedWith(content: string, code: string): Promise<void> {
  const before = content;
  await expect(decryptSecrets(content, { format: 'dotenv', providers, policy })).rejects.toMatchObject({ code });
  await expect(loadSecrets({ content, format: 'dotenv' }, { providers, policy })).rejects.toMatchObject({ code });
  expect(content).toBe(before);
}

describe('tampered files are refused', () => {
  it('swapping two values between keys', async () => {
    const l = lines(await encryptedEnv());
    const a = (l[0] as string).slice(2);
    const b = (l[1] as string).slice(2);
    l[0] = `A=${b}`;
    l[1] = `B=${a}`;
    await refusedWith(l.join('\n'), 'INTEGRITY_FAILED');
  });

  it('removing a value', async () => {
    const l = lines(await encryptedEnv());
    l.splice(1, 1);
    await refusedWith(l.join('\n'), 'INTEGRITY_FAILED');
  });

  it('adding a value, encrypted or plaintext', async () => {
    const text = await encryptedEnv();
    await refusedWith(`D=delta\n${text}`, 'INTEGRITY_FAILED');
    const l = lines(text);
    await refusedWith(`${l[0]?.replace(/^A/, 'Z')}\n${text}`, 'INTEGRITY_FAILED');
  });

  it('reordering values', async () => {
    const l = lines(await encryptedEnv());
    [l[0], l[1]] = [l[1] as string, l[0] as string];
    await refusedWith(l.join('\n'), 'INTEGRITY_FAILED');
  });

  it('a truncated ENC[...] value', async () => {
    const l = lines(await encryptedEnv());
    l[2] = (l[2] as string).slice(0, -6) + ']';
    await refusedWith(l.join('\n'), 'INTEGRITY_FAILED');
  });

  it('a changed MAC, and a malformed one', async () => {
    const text = await encryptedEnv();
    const mac = /KEYFOLD_SECRETS_MAC=(.*)/.exec(text)?.[1] as string;
    const flipped = (mac[0] === 'A' ? 'B' : 'A') + mac.slice(1);
    await refusedWith(text.replace(mac, flipped), 'INTEGRITY_FAILED');
    await refusedWith(text.replace(mac, 'short'), 'FORMAT_INVALID');
  });

  it('a wrong provider: another env KEK and a memory provider', async () => {
    const text = await encryptedEnv();
    for (const wrong of [envProvider(), memoryProvider()]) {
      const err = await decryptSecrets(text, { format: 'dotenv', providers: [wrong], policy }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'DECRYPT_FAILED', message: 'decryption failed' });
    }
  });

  it('malformed files', async () => {
    await refusedWith('this is not a dotenv line\n', 'FORMAT_INVALID');
    await refusedWith('A="unterminated\n', 'FORMAT_INVALID');
    await expect(decryptSecrets('{"a": ', { format: 'json', providers, policy })).rejects.toMatchObject({ code: 'FORMAT_INVALID' });
    await expect(decryptSecrets('a: [1\n', { format: 'yaml', providers, policy })).rejects.toMatchObject({ code: 'FORMAT_INVALID' });
  });

  it('swapping values inside a YAML document', async () => {
    const text = (await encryptSecrets(fixture('k8s-secret.yaml'), { format: 'yaml', providers, policy })).content;
    const user = /username: (".*")/.exec(text)?.[1] as string;
    const pass = /password: (".*")/.exec(text)?.[1] as string;
    const swapped = text.replace(`username: ${user}`, `username: ${pass}`).replace(`password: ${pass}`, `password: ${user}`);
    await expect(decryptSecrets(swapped, { format: 'yaml', providers, policy })).rejects.toMatchObject({ code: 'INTEGRITY_FAILED' });
  });
});

describe.each([
  ['app-package.json', 'json'],
  ['docker-compose.yaml', 'yaml'],
  ['config.toml', 'toml'],
] as const)('%s: tampering is refused', (file, format) => {
  const options = { format, providers, policy };

  it('two ciphertexts swapped, one replaced by plaintext, one truncated', async () => {
    const text = (await encryptSecrets(fixture(file), options)).content;
    const encs = text.match(/ENC\[[^\]]*\]/g) ?? [];
    const [x, y] = encs as [string, string];
    const swapped = text.replace(x, '\u0000').replace(y, x).replace('\u0000', y);
    await expect(decryptSecrets(swapped, options)).rejects.toMatchObject({ code: 'INTEGRITY_FAILED' });
    await expect(decryptSecrets(text.replace(y, 'plain'), options)).rejects.toMatchObject({ code: 'INTEGRITY_FAILED' });
    await expect(decryptSecrets(text.replace(y, `${y.slice(0, 20)}]`), options)).rejects.toMatchObject({ code: 'INTEGRITY_FAILED' });
  });
});

describe('dropping a value from structured files', () => {
  it('yaml, toml: a whole key removed', async () => {
    for (const [file, format, line] of [
      ['k8s-secret.yaml', 'yaml', /^ {2}username: .*\n/m],
      ['config.toml', 'toml', /^port = .*\n/m],
    ] as const) {
      const text = (await encryptSecrets(fixture(file), { format, providers, policy })).content;
      const dropped = text.replace(line, '');
      expect(dropped).not.toBe(text);
      await expect(decryptSecrets(dropped, { format, providers, policy })).rejects.toMatchObject({ code: 'INTEGRITY_FAILED' });
    }
  });

  it('json: a member removed', async () => {
    const text = (await encryptSecrets(fixture('app-package.json'), { format: 'json', providers, policy })).content;
    const dropped = text.replace(/^ {4}"port": .*\n/m, '');
    expect(dropped).not.toBe(text);
    await expect(decryptSecrets(dropped, { format: 'json', providers, policy })).rejects.toMatchObject({ code: 'INTEGRITY_FAILED' });
  });
});
