import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, KeyfoldError, PolicyError } from '@keyfold/envelope-core';
import { createEnvProvider } from '../src/index.js';
import { randomHexKey, tempRoot } from './helpers.js';

const tmp = tempRoot('env');

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).code).toBe('CONFIG_INVALID');
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('env provider: versions and identity', () => {
  it('reads every <prefix>N, activates the highest, and derives a short key id', async () => {
    const p = createEnvProvider({ env: { KEYFOLD_KEK_V1: randomHexKey(), KEYFOLD_KEK_V2: randomHexKey(), KEYFOLD_KEK_V10: randomHexKey(), OTHER: 'x' } });
    expect(p.kind).toBe('env');
    expect(p.keyId).toBe('KEYFOLD_KEK');
    expect(p.protection).toBe('software');
    const d = await p.describe();
    expect(d.versions).toEqual(['1', '2', '10']);
    expect(d.activeVersion).toBe('10');
    expect(d.capabilities).toEqual({ generateDataKey: false, rewrapKey: false, rotate: false, writeVersion: true });
    expect(d.details).toEqual({ prefix: 'KEYFOLD_KEK_V', source: 'environment' });
    await p.close();
  });

  it('uses a custom prefix; a prefix without _V is the key id as is', async () => {
    const a = createEnvProvider({ prefix: 'APP_KEY_V', env: { APP_KEY_V3: randomHexKey() } });
    expect(a.keyId).toBe('APP_KEY');
    const b = createEnvProvider({ prefix: 'APPKEK', env: { APPKEK1: randomHexKey() } });
    expect(b.keyId).toBe('APPKEK');
    expect((await b.wrapKey(new Uint8Array(32), {})).keyVersion).toBe('1');
    await Promise.all([a.close(), b.close()]);
  });

  it('activeVersion (option, then <keyId>_ACTIVE) picks the version new wraps use', async () => {
    const env = { KEYFOLD_KEK_V1: randomHexKey(), KEYFOLD_KEK_V2: randomHexKey(), KEYFOLD_KEK_ACTIVE: '1' };
    const fromVar = createEnvProvider({ env });
    expect((await fromVar.wrapKey(new Uint8Array(32), {})).keyVersion).toBe('1');
    const fromOption = createEnvProvider({ env, activeVersion: 2 });
    expect((await fromOption.wrapKey(new Uint8Array(32), {})).keyVersion).toBe('2');
    await Promise.all([fromVar.close(), fromOption.close()]);
  });

  it('an activeVersion that is not set opens anyway: writes fail with KEY_NOT_FOUND naming the variable, unwraps work', async () => {
    const env = { KEYFOLD_KEK_V1: randomHexKey() };
    const v1 = createEnvProvider({ env });
    const sealed = await v1.wrapKey(new Uint8Array(32).fill(7), { a: 'b' });
    for (const p of [createEnvProvider({ env, activeVersion: '3' }), createEnvProvider({ env: { ...env, KEYFOLD_KEK_ACTIVE: '3' } })]) {
      expect(await p.describe()).toMatchObject({ activeVersion: '3', versions: ['1'] });
      const err = await p.wrapKey(new Uint8Array(32), {}).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'KEY_NOT_FOUND' });
      expect((err as Error).message).toMatch(/add the variable KEYFOLD_KEK_V3 to this process's environment/);
      expect((err as Error).message).toMatch(/versions loaded here \(1\) still open/);
      await expect(p.generateDataKey({})).rejects.toMatchObject({ code: 'KEY_NOT_FOUND' });
      await expect(p.rewrapKey(sealed, { a: 'b' })).rejects.toMatchObject({ code: 'KEY_NOT_FOUND' });
      expect(await p.unwrapKey(sealed, { a: 'b' })).toEqual(new Uint8Array(32).fill(7));
      expect(await p.probe()).toMatchObject({ ok: false, error: { code: 'KEY_NOT_FOUND' } });
      await p.close();
    }
    await v1.close();
    expect(() => createEnvProvider({ env, activeVersion: 'two' })).toThrow(RangeError);
    expect(() => createEnvProvider({ env: { ...env, KEYFOLD_KEK_ACTIVE: 'x' } })).toThrow(/KEYFOLD_KEK_ACTIVE must be a version number/);
  });

  it('keys wrapped under one version do not unwrap when relabelled to another', async () => {
    const p = createEnvProvider({ env: { KEYFOLD_KEK_V1: randomHexKey(), KEYFOLD_KEK_V2: randomHexKey() }, activeVersion: '1' });
    const w = await p.wrapKey(new Uint8Array(32).fill(1), { a: 'b' });
    await expect(p.unwrapKey({ ...w, keyVersion: '2' }, { a: 'b' })).rejects.toMatchObject({ code: 'UNWRAP_FAILED' });
    await p.close();
  });
});

describe('env provider: bad configuration names the variable, never the value', () => {
  it('63 hex characters', () => {
    const value = randomHexKey().slice(0, 63);
    const err = configError(() => createEnvProvider({ env: { KEYFOLD_KEK_V2: value, KEYFOLD_KEK_V1: randomHexKey() } }));
    expect(err.message).toBe('KEYFOLD_KEK_V2 must be 64 hex characters (32 bytes); got 63');
    expect(err.message).not.toContain(value);
  });

  it('65 characters and surrounding whitespace', () => {
    const value = `${randomHexKey()}\n`;
    const err = configError(() => createEnvProvider({ env: { KEYFOLD_KEK_V1: value } }));
    expect(err.message).toBe('KEYFOLD_KEK_V1 must be 64 hex characters (32 bytes); got 65 (including surrounding whitespace; remove it)');
    expect(err.message).not.toContain(value.trim());
  });

  it('a non-hex character', () => {
    const value = `${randomHexKey().slice(0, 40)}zz${randomHexKey().slice(0, 22)}`;
    const err = configError(() => createEnvProvider({ env: { KEYFOLD_KEK_V1: value } }));
    expect(err.message).toBe('KEYFOLD_KEK_V1 must be 64 hex characters (32 bytes); the character at position 41 is not a hex digit');
    expect(err.message).not.toContain(value.slice(0, 40));
  });

  it('an empty value', () => {
    expect(configError(() => createEnvProvider({ env: { KEYFOLD_KEK_V1: '' } })).message).toBe(
      'KEYFOLD_KEK_V1 must be 64 hex characters (32 bytes); got 0',
    );
  });

  it('no version at all says what to set and how to generate it', () => {
    const err = configError(() => createEnvProvider({ env: { PATH: '/usr/bin' } }));
    expect(err.message).toBe('no KEK found in the environment: set KEYFOLD_KEK_V1 to 64 hex characters (generate one with: openssl rand -hex 32)');
  });

  it('version numbers with leading zeros or zero', () => {
    expect(configError(() => createEnvProvider({ env: { KEYFOLD_KEK_V01: randomHexKey() } })).message).toMatch(/^KEYFOLD_KEK_V01: /);
    expect(configError(() => createEnvProvider({ env: { KEYFOLD_KEK_V0: randomHexKey() } })).message).toMatch(/^KEYFOLD_KEK_V0: /);
  });

  it('two versions holding the same key', () => {
    const k = randomHexKey();
    const err = configError(() => createEnvProvider({ env: { KEYFOLD_KEK_V1: k, KEYFOLD_KEK_V2: k.toUpperCase() } }));
    expect(err.message).toMatch(/holds the same key as KEYFOLD_KEK_V[12]; each version needs its own key/);
    expect(err.message).not.toContain(k);
  });

  it('malformed options are caller mistakes', () => {
    expect(() => createEnvProvider({ prefix: 'BAD PREFIX', env: {} })).toThrow(TypeError);
    expect(() => createEnvProvider({ prefix: 'X'.repeat(80), env: {} })).toThrow(RangeError);
    expect(() => createEnvProvider({ securityMode: 'prod' as never, env: {} })).toThrow(/securityMode must be "production" or "development"/);
  });
});

describe('env provider: envFile', () => {
  async function writeEnvFile(mode: number, body: string): Promise<string> {
    const dir = await tmp.dir('envfile');
    const path = join(dir, '.env.keys');
    await writeFile(path, body, { mode });
    await chmod(path, mode);
    return path;
  }

  it('reads dotenv syntax (comments, export, quotes) and its values take precedence over env', async () => {
    const fileKey = randomHexKey();
    const path = await writeEnvFile(
      0o600,
      `# KEKs for the app\nexport KEYFOLD_KEK_V1="${fileKey}"\nKEYFOLD_KEK_V2='${randomHexKey()}' # newer\n`,
    );
    const envKey = randomHexKey();
    const withFile = createEnvProvider({ env: { KEYFOLD_KEK_V1: envKey }, envFile: path, activeVersion: '1' });
    const fileOnly = createEnvProvider({ env: { KEYFOLD_KEK_V1: fileKey }, activeVersion: '1' });
    const envOnly = createEnvProvider({ env: { KEYFOLD_KEK_V1: envKey } });
    const w = await withFile.wrapKey(new Uint8Array(32).fill(9), {});
    await expect(fileOnly.unwrapKey(w, {})).resolves.toEqual(new Uint8Array(32).fill(9));
    await expect(envOnly.unwrapKey(w, {})).rejects.toMatchObject({ code: 'UNWRAP_FAILED' });
    expect((await withFile.describe()).details).toEqual({ prefix: 'KEYFOLD_KEK_V', source: 'environment and file', envFile: path });
    expect((await withFile.describe()).versions).toEqual(['1', '2']);
    await Promise.all([withFile.close(), fileOnly.close(), envOnly.close()]);
  });

  it('a 0644 file is refused in production with INSECURE_PERMISSIONS and the chmod that fixes it', async () => {
    const path = await writeEnvFile(0o644, `KEYFOLD_KEK_V1=${randomHexKey()}\n`);
    let err: unknown;
    try {
      createEnvProvider({ env: {}, envFile: path, securityMode: 'production' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PolicyError);
    expect((err as PolicyError).code).toBe('INSECURE_PERMISSIONS');
    expect((err as Error).message).toContain(`chmod 600 ${path}`);
  });

  it('the same 0644 file is accepted in development mode', async () => {
    const path = await writeEnvFile(0o644, `KEYFOLD_KEK_V1=${randomHexKey()}\n`);
    const p = createEnvProvider({ env: {}, envFile: path, securityMode: 'development' });
    expect((await p.probe()).ok).toBe(true);
    await p.close();
  });

  it('a malformed line is refused with its line number, not its content', async () => {
    const secret = randomHexKey();
    const path = await writeEnvFile(0o600, `KEYFOLD_KEK_V1=${randomHexKey()}\n${secret}\n`);
    const err = configError(() => createEnvProvider({ env: {}, envFile: path }));
    expect(err.message).toBe(`secrets file ${path} line 2: expected NAME=VALUE`);
    expect(err.message).not.toContain(secret);
  });

  it('a missing file is a ConfigError', async () => {
    const dir = await tmp.dir('missing');
    expect(configError(() => createEnvProvider({ env: {}, envFile: join(dir, 'nope') })).message).toMatch(/cannot be read: ENOENT/);
  });

  it('an error names the file when no version is found in either place', async () => {
    const path = await writeEnvFile(0o600, 'OTHER=1\n');
    expect(configError(() => createEnvProvider({ env: {}, envFile: path })).message).toBe(
      `no KEK found in the environment or in ${path}: set KEYFOLD_KEK_V1 to 64 hex characters (generate one with: openssl rand -hex 32)`,
    );
  });
});

describe('env provider: lifecycle', () => {
  it('close() wipes the KEKs: later calls fail with PROVIDER_CLOSED', async () => {
    const p = createEnvProvider({ env: { KEYFOLD_KEK_V1: randomHexKey() } });
    const w = await p.wrapKey(new Uint8Array(32), {});
    await p.close();
    await expect(p.unwrapKey(w, {})).rejects.toBeInstanceOf(KeyfoldError);
    await expect(p.unwrapKey(w, {})).rejects.toMatchObject({ code: 'PROVIDER_CLOSED' });
  });
});
