/**
 * The runtime store's access options (issue 14, section 5): unknown options are refused by name before anything is
 * read, `throwOnMissingKey`, and `access: { ttl, autoRefresh, maxStale, onRefreshError }`: values re-read from the
 * source after ttl, a background refresh on an unref'd timer, a failing source tolerated for maxStale only (reported
 * through the hook, then the values are wiped and reads throw the refresh's code), and `close()` stopping it all.
 */
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { ProviderError, type EncryptionContext, type KeyProvider, type WrappedKey } from '@keyfold/envelope-core';
import { decryptSecrets, encryptSecrets, loadSecrets, type RefreshFailureInfo } from '../src/index.js';
import { envProvider, policy } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'keyfold-secrets-access-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A provider whose unwraps are counted and can be made to fail (a KMS outage) or to take a while. */
function switchable(inner: KeyProvider) {
  const state = { unwraps: 0, down: false, delayMs: 0 };
  const provider: KeyProvider = {
    kind: inner.kind,
    keyId: inner.keyId,
    protection: inner.protection,
    wrapKey: (k: Uint8Array, c: EncryptionContext) => inner.wrapKey(k, c),
    unwrapKey: async (w: WrappedKey, c: EncryptionContext) => {
      state.unwraps++;
      if (state.delayMs > 0) await new Promise((r) => setTimeout(r, state.delayMs));
      if (state.down) throw new ProviderError('UNAVAILABLE', 'the test KMS is down');
      return inner.unwrapKey(w, c);
    },
    describe: () => inner.describe(),
    probe: () => inner.probe(),
    close: () => inner.close(),
  };
  return { provider, state };
}

let files = 0;
async function secretsFile(providers: readonly KeyProvider[], text: string): Promise<string> {
  const path = join(dir, `app-${++files}.env`);
  writeFileSync(path, (await encryptSecrets(text, { format: 'dotenv', providers, policy })).content);
  return path;
}
async function rewrite(path: string, providers: readonly KeyProvider[], text: string): Promise<void> {
  writeFileSync(path, (await encryptSecrets(text, { format: 'dotenv', providers, policy })).content);
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for: ${what}`);
    await sleep(10);
  }
}

describe('loadSecrets options', () => {
  it('refuses an unknown option by name, also inside cascade and access, before reading anything', async () => {
    const providers = [envProvider()];
    const missingFile = join(dir, 'does-not-exist.env'); // never read: the options are checked first
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ populateENV: true }, /^loadSecrets has no option "populateENV"; known options: providers, .*throwOnMissingKey, access$/],
      [{ throwOnMissingKeys: true }, /no option "throwOnMissingKeys"/],
      [{ ttl: 1000 }, /no option "ttl"/],
      [{ cascade: { nodeenv: 'prod' } }, /^loadSecrets cascade has no option "nodeenv"; known options: nodeEnv$/],
      [{ access: { ttl: 1000, autoRefesh: true } }, /^loadSecrets access has no option "autoRefesh"; known options: ttl, autoRefresh, maxStale, onRefreshError$/],
      [{ access: { autoRefresh: true } }, /access\.ttl must be a number of milliseconds; got undefined/],
      [{ access: { ttl: '60s' } }, /access\.ttl must be a number/],
      [{ access: { ttl: 5 } }, /access\.ttl must be a whole number of milliseconds from 10 to 2147483647; got 5/],
      [{ access: { ttl: 1000, maxStale: -1 } }, /access\.maxStale must be a whole number/],
      [{ access: { ttl: 1000, autoRefresh: 'yes' } }, /access\.autoRefresh must be a boolean/],
      [{ access: { ttl: 1000, onRefreshError: 'log' } }, /access\.onRefreshError must be a function/],
      [{ access: null }, /loadSecrets access options must be an object/],
      [{ throwOnMissingKey: 'true' }, /throwOnMissingKey must be a boolean; got string/],
      [{ populateEnv: 1 }, /populateEnv must be a boolean/],
    ];
    for (const [extra, message] of cases) {
      await expect(loadSecrets(missingFile, { providers, policy, ...extra }), JSON.stringify(extra)).rejects.toThrow(message);
    }
    await expect(loadSecrets(missingFile, { providers, policy, access: { ttl: 5 } })).rejects.toBeInstanceOf(RangeError);
    await expect(loadSecrets(missingFile, { providers, policy, populateENV: true } as never)).rejects.toBeInstanceOf(TypeError);
  });

  it('throwOnMissingKey: get and getSection of a missing name throw CONFIG_INVALID naming it; has() does not', async () => {
    const providers = [envProvider()];
    const path = await secretsFile(providers, 'DATABASE_URL=postgres://u:pw@db/app\nAPI_TOKEN=tok-123\n');
    const strict = await loadSecrets(path, { providers, policy, throwOnMissingKey: true });
    expect(strict.get('DATABASE_URL')).toBe('postgres://u:pw@db/app');
    const err = (() => {
      try {
        strict.get('DATABASE_URI');
      } catch (e) {
        return e as Error & { code?: string };
      }
      return undefined;
    })();
    expect(err).toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining(`secret "DATABASE_URI" is not in ${path}`) as unknown });
    expect(err?.message).not.toMatch(/pw@db|tok-123/); // names, never values
    expect(() => strict.getSection('db')).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringContaining('"db"') as unknown }) as unknown);
    expect(strict.has('DATABASE_URI')).toBe(false);
    strict.destroy();
    const lenient = await loadSecrets(path, { providers, policy });
    expect(lenient.get('DATABASE_URI')).toBeUndefined();
    expect(lenient.getSection('db')).toBeUndefined();
    lenient.destroy();
  });
});

describe('an enclave provider whose attestation KMS refuses', () => {
  it('loadSecrets and decryptSecrets surface ATTESTATION_REFUSED, not DECRYPT_FAILED', async () => {
    const inner = envProvider();
    const path = await secretsFile([inner], 'A=one\n');
    const refusing: KeyProvider = {
      ...switchable(inner).provider,
      // What @keyfold/provider-aws throws when KMS refuses the enclave's attestation document.
      unwrapKey: () => Promise.reject(new ProviderError('ATTESTATION_REFUSED', 'AWS KMS refused the enclave attestation document')),
    };
    await expect(loadSecrets(path, { providers: [refusing], policy })).rejects.toMatchObject({ code: 'ATTESTATION_REFUSED' });
    await expect(decryptSecrets(readFileSync(path, 'utf8'), { format: 'dotenv', providers: [refusing], policy })).rejects.toMatchObject({
      code: 'ATTESTATION_REFUSED',
    });
  });
});

describe('access: ttl and refresh', () => {
  it('without autoRefresh: the first read after ttl is served the held values and starts one refresh from the source', async () => {
    const { provider, state } = switchable(envProvider());
    const providers = [provider];
    const path = await secretsFile(providers, 'A=one\n');
    const store = await loadSecrets(path, { providers, policy, access: { ttl: 100 } });
    expect(state.unwraps).toBe(1);
    await rewrite(path, providers, 'A=two\n');
    expect(store.get('A')).toBe('one'); // within ttl: no read of the source
    await sleep(150);
    expect(state.unwraps).toBe(1); // no timer without autoRefresh
    expect(store.get('A')).toBe('one'); // stale-while-revalidate: served now, refreshed in the background
    await until('the refresh', () => store.get('A') === 'two');
    expect(state.unwraps).toBe(2);
    await store.close();
  });

  it('autoRefresh: a background timer re-reads the source every ttl with no reads in between', async () => {
    const { provider, state } = switchable(envProvider());
    const providers = [provider];
    const path = await secretsFile(providers, 'A=one\n');
    const store = await loadSecrets(path, { providers, policy, access: { ttl: 50, autoRefresh: true } });
    await rewrite(path, providers, 'A=two\n');
    await until('two background refreshes', () => state.unwraps >= 3);
    expect(store.get('A')).toBe('two');
    await store.close();
  });

  it('a failing refresh keeps the last good values for maxStale, reports each failure, then wipes them and refuses reads until the source recovers', async () => {
    const { provider, state } = switchable(envProvider());
    const providers = [provider];
    const path = await secretsFile(providers, 'A=one\nB=kept\n');
    const failures: { code: string | undefined; message: string; info: RefreshFailureInfo }[] = [];
    const store = await loadSecrets(path, {
      providers,
      policy,
      access: {
        ttl: 60,
        autoRefresh: true,
        maxStale: 400,
        onRefreshError: (error, info) => {
          failures.push({ code: (error as { code?: string }).code, message: error.message, info });
          throw new Error('a throwing hook must not stop the refresh loop');
        },
      },
    });
    state.down = true;
    await until('the first failure', () => failures.length >= 1);
    expect(failures[0]).toMatchObject({ code: 'UNAVAILABLE', message: 'the test KMS is down', info: { failures: 1 } });
    expect(failures[0]!.info.servableForMs).toBeGreaterThan(0);
    expect(failures[0]!.info.servableForMs).toBeLessThanOrEqual(400);
    expect(store.get('A')).toBe('one'); // the last good values are still served
    await until('a retry', () => failures.length >= 2);
    expect(failures[1]!.info.failures).toBe(2);

    await until('expiry', () => {
      try {
        store.get('A');
        return false;
      } catch {
        return true;
      }
    });
    let expired: (Error & { code?: string }) | undefined;
    try {
      store.get('B');
    } catch (e) {
      expired = e as Error & { code?: string };
    }
    expect(expired).toMatchObject({ code: 'UNAVAILABLE', message: expect.stringContaining('expired') as unknown });
    expect(expired?.message).toContain('the test KMS is down');
    expect(expired?.message).not.toMatch(/\bone\b|kept/);
    expect(() => store.keys()).toThrow(/expired/);

    state.down = false; // the source recovers: the timer brings the values back
    await rewrite(path, providers, 'A=three\nB=kept\n');
    await until('recovery', () => {
      try {
        return store.get('A') === 'three';
      } catch {
        return false;
      }
    });
    await store.close();
  });

  it('an explicit refresh() after expiry restores the values; its own failure is thrown, not sent to the hook', async () => {
    const { provider, state } = switchable(envProvider());
    const providers = [provider];
    const path = await secretsFile(providers, 'A=one\n');
    let reported = 0;
    const store = await loadSecrets(path, { providers, policy, access: { ttl: 40, maxStale: 0, onRefreshError: () => void reported++ } });
    state.down = true;
    await sleep(60);
    expect(store.get('A')).toBe('one'); // starts the lazy refresh, which fails
    await until('the lazy refresh to fail', () => reported === 1);
    expect(() => store.get('A')).toThrow(expect.objectContaining({ code: 'UNAVAILABLE' }) as unknown); // maxStale 0
    await expect(store.refresh()).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    expect(reported).toBeGreaterThanOrEqual(1);
    const before = reported;
    state.down = false;
    await store.refresh();
    expect(reported).toBe(before);
    expect(store.get('A')).toBe('one');
    store.destroy();
  });

  it('close() stops the timer, waits for a running refresh and wipes; nothing comes back after it', async () => {
    const { provider, state } = switchable(envProvider());
    const providers = [provider];
    const path = await secretsFile(providers, 'A=one\n');
    const store = await loadSecrets(path, { providers, policy, access: { ttl: 30, autoRefresh: true } });
    await until('a refresh', () => state.unwraps >= 2);
    state.delayMs = 80; // the next refresh is slow: close() lands while it runs
    await until('a slow refresh to start', () => state.unwraps >= 3);
    await store.close();
    const after = state.unwraps;
    await sleep(200);
    expect(state.unwraps).toBe(after);
    expect(() => store.get('A')).toThrow(expect.objectContaining({ code: 'PROVIDER_CLOSED' }) as unknown);
    await store.close(); // idempotent
    store.destroy();

    const other = await loadSecrets(path, { providers, policy, access: { ttl: 30, autoRefresh: true } });
    other.destroy(); // destroy() stops the timer too
    const then = state.unwraps;
    await sleep(200);
    expect(state.unwraps).toBe(then);
  });
});

describe('the refresh timer in a real process', () => {
  const dist = fileURLToPath(new URL('../dist/index.js', import.meta.url));
  it('refreshes while the process runs, and never keeps it alive (unref)', async () => {
    expect(existsSync(dist), `${dist} is missing: build @keyfold/secrets first`).toBe(true);
    const script = join(dir, 'child.mjs');
    const providerLocal = pathToFileURL(createRequire(import.meta.url).resolve('@keyfold/provider-local')).href;
    writeFileSync(
      script,
      `import { encryptSecrets, loadSecrets } from ${JSON.stringify(pathToFileURL(dist).href)};
import { createEnvProvider } from ${JSON.stringify(providerLocal)};
import { writeFileSync } from 'node:fs';
const inner = createEnvProvider({ env: { KEYFOLD_KEK_V1: '${'5a'.repeat(32)}' } });
let unwraps = 0;
const provider = { kind: inner.kind, keyId: inner.keyId, protection: inner.protection, wrapKey: (k, c) => inner.wrapKey(k, c),
  unwrapKey: (w, c) => { unwraps++; return inner.unwrapKey(w, c); }, describe: () => inner.describe(), probe: () => inner.probe(), close: () => inner.close() };
const path = ${JSON.stringify(join(dir, 'child.env'))};
const seal = async (t) => writeFileSync(path, (await encryptSecrets(t, { format: 'dotenv', providers: [provider] })).content);
await seal('A=one\\n');
const store = await loadSecrets(path, { providers: [provider], access: { ttl: 50, autoRefresh: true } });
await seal('A=two\\n');
await new Promise((r) => setTimeout(r, 400));
process.stdout.write(JSON.stringify({ value: store.get('A'), refreshed: unwraps >= 3 }));
// No close(): the unref'd timer must not keep this process alive.
`,
    );
    const started = Date.now();
    const { stdout } = await promisify(execFile)(process.execPath, [script], { encoding: 'utf8', timeout: 20_000 });
    expect(JSON.parse(stdout)).toEqual({ value: 'two', refreshed: true });
    expect(Date.now() - started).toBeLessThan(15_000);
  });
});
