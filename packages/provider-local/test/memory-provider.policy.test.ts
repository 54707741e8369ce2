import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PolicyError, SECURITY_MODE_ENV } from '@keyfold/envelope-core';
import { createMemoryProvider } from '../src/index.js';

describe('memory provider policy', () => {
  let saved: string | undefined;
  beforeEach(() => {
    saved = process.env[SECURITY_MODE_ENV];
  });
  afterEach(() => {
    if (saved === undefined) delete process.env[SECURITY_MODE_ENV];
    else process.env[SECURITY_MODE_ENV] = saved;
  });

  it('is refused in production when KEYFOLD_SECURITY_MODE is unset, saying why and what to use instead', () => {
    delete process.env[SECURITY_MODE_ENV];
    let err: unknown;
    try {
      createMemoryProvider();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PolicyError);
    expect((err as PolicyError).code).toBe('POLICY_VIOLATION');
    const message = (err as Error).message;
    expect(message).toMatch(/refused in production mode/);
    expect(message).toMatch(/lost when it exits/);
    expect(message).toMatch(/never protected/);
    expect(message).toMatch(/createEnvProvider/);
    expect(message).toMatch(/createFileProvider/);
    expect(message).toMatch(/KEYFOLD_SECURITY_MODE=development/);
  });

  it('is refused with an explicit production option even when the environment says development', () => {
    process.env[SECURITY_MODE_ENV] = 'development';
    expect(() => createMemoryProvider({ securityMode: 'production' })).toThrow(PolicyError);
  });

  it('a typo in KEYFOLD_SECURITY_MODE fails closed', () => {
    process.env[SECURITY_MODE_ENV] = 'dev';
    expect(() => createMemoryProvider()).toThrow(/KEYFOLD_SECURITY_MODE must be "production" or "development"/);
  });

  it('is allowed in development, by variable or option', async () => {
    process.env[SECURITY_MODE_ENV] = 'development';
    const a = createMemoryProvider();
    delete process.env[SECURITY_MODE_ENV];
    const b = createMemoryProvider({ securityMode: 'development', keyId: 'test-kek', versions: 3 });
    expect(a).toMatchObject({ kind: 'memory', keyId: 'memory', protection: 'memory' });
    expect(await b.describe()).toMatchObject({
      keyId: 'test-kek',
      protection: 'memory',
      activeVersion: '3',
      versions: ['1', '2', '3'],
      capabilities: { generateDataKey: false, rewrapKey: false, rotate: true },
    });
    await Promise.all([a.close(), b.close()]);
  });

  it('rotate() adds a version that new wraps use, and refuses after close()', async () => {
    const p = createMemoryProvider({ securityMode: 'development' });
    const w1 = await p.wrapKey(new Uint8Array(32).fill(1), {});
    expect(await p.rotate()).toBe('2');
    const w2 = await p.wrapKey(new Uint8Array(32).fill(2), {});
    expect([w1.keyVersion, w2.keyVersion]).toEqual(['1', '2']);
    await expect(p.unwrapKey(w1, {})).resolves.toEqual(new Uint8Array(32).fill(1));
    await p.close();
    await expect(p.rotate()).rejects.toMatchObject({ code: 'PROVIDER_CLOSED' });
  });

  it('two memory providers never share a KEK', async () => {
    const a = createMemoryProvider({ securityMode: 'development' });
    const b = createMemoryProvider({ securityMode: 'development' });
    const w = await a.wrapKey(new Uint8Array(32), {});
    await expect(b.unwrapKey(w, {})).rejects.toMatchObject({ code: 'UNWRAP_FAILED' });
    await Promise.all([a.close(), b.close()]);
  });

  it('refuses malformed options', () => {
    expect(() => createMemoryProvider({ securityMode: 'development', versions: 0 })).toThrow(RangeError);
    expect(() => createMemoryProvider({ securityMode: 'development', versions: 1.5 })).toThrow(RangeError);
    expect(() => createMemoryProvider({ securityMode: 'development', keyId: '' })).toThrow(RangeError);
  });
});

describe('provider classes', () => {
  it('are exported for instanceof checks', async () => {
    const { EnvProvider, FileProvider, MemoryProvider } = await import('../src/index.js');
    const p = createMemoryProvider({ securityMode: 'development' });
    expect(p).toBeInstanceOf(MemoryProvider);
    expect(p).not.toBeInstanceOf(EnvProvider);
    expect(p).not.toBeInstanceOf(FileProvider);
    await p.close();
    // Only the validating factories construct them.
    expect(() => new (MemoryProvider as unknown as new (...a: unknown[]) => unknown)(Symbol('x'), 'm', 1, {})).toThrow(
      'use createMemoryProvider() to create this provider',
    );
  });
});
