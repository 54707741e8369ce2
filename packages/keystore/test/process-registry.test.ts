/**
 * The process registry (schema 3) on both backends: a process that opens the store with a provider registers host,
 * pid, start time, KEK and the versions it loaded; the record is refreshed while it runs, expires when it stops,
 * and is removed on close (of the registration, the tenant keys, or the store). A killed process's record stays until
 * it expires.
 */
import { spawn } from 'node:child_process';
import { hostname } from 'node:os';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { createEnvProvider } from '@keyfold/provider-local';
import { SCHEMA_VERSION, openSqliteKeyStore, openTenantKeys, type KeyStore } from '../src/index.js';
import { freshSchema, hexKey, pgStore, pgUrl, sqliteStore } from './helpers.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A child process registered in `store` (fixtures/register-child.mjs, the built package). */
function startChild(store: KeyStore, kek: Record<string, string>) {
  const where = store.backend === 'sqlite' ? { KF_STORE: store.location } : { KF_PG_URL: pgUrl(), KF_PG_SCHEMA: schemaOf(store) };
  const child = spawn(process.execPath, [fileURLToPath(new URL('./fixtures/register-child.mjs', import.meta.url))], {
    env: { ...process.env, ...where, ...kek },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const registered = new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (line.startsWith('registered ')) resolve(line.slice(11));
    });
    child.on('exit', (code) => reject(new Error(`the registering child exited (${String(code)})`)));
  });
  return { registered, pid: child.pid!, kill: () => child.kill('SIGKILL') };
}

/** Every record of the store `closed` names, read through a new store object on it. */
async function listAfter(closed: KeyStore): Promise<unknown[]> {
  const again = closed.backend === 'sqlite' ? await openSqliteKeyStore({ path: closed.location }) : await pgStore(schemaOf(closed));
  try {
    return await again.listProcesses({ includeExpired: true });
  } finally {
    await again.close();
  }
}

const schemas = new WeakMap<KeyStore, string>();
function schemaOf(store: KeyStore): string {
  return schemas.get(store)!;
}
async function pgStoreNamed(): Promise<KeyStore> {
  const schema = freshSchema();
  const store = await pgStore(schema);
  schemas.set(store, schema);
  return store;
}

describe.each([
  ['SQLite', () => sqliteStore()],
  ['PostgreSQL', () => pgStoreNamed()],
] as const)('process registry on %s', (_name, open) => {
  it('records host, pid, start time, KEK and loaded versions; removes the record on close', async () => {
    const store: KeyStore = await open();
    const provider = createEnvProvider({ env: { KEYFOLD_KEK_V1: hexKey(), KEYFOLD_KEK_V2: hexKey() } });
    try {
      expect(store.schemaVersion).toBe(SCHEMA_VERSION);
      expect(SCHEMA_VERSION).toBe(3);
      const reg = await store.registerProcess(provider, { label: 'billing-api' });
      const live = await store.listProcesses();
      expect(live).toHaveLength(1);
      expect(live[0]).toMatchObject({
        id: reg.id,
        host: hostname(),
        pid: process.pid,
        kind: 'env',
        keyId: 'KEYFOLD_KEK',
        versions: ['1', '2'],
        label: 'billing-api',
      });
      expect(Date.parse(live[0]!.startedAt)).toBeLessThanOrEqual(Date.now());
      expect(Date.parse(live[0]!.expiresAt) - Date.parse(live[0]!.refreshedAt)).toBe(30_000);
      // A second registration of the same store object for the same KEK shares the record.
      const again = await store.registerProcess(provider);
      expect(again.id).toBe(reg.id);
      await again.close();
      expect(await store.listProcesses()).toHaveLength(1);
      await reg.close();
      expect(await store.listProcesses({ includeExpired: true })).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it('refreshes the record while the process runs; a killed process leaves its record, which expires, and the next registration clears it', async () => {
    const store = await open();
    const provider = createEnvProvider({ env: { KEYFOLD_KEK_V1: hexKey() } });
    const child = startChild(store, { KEYFOLD_KEK_V1: hexKey(), KEYFOLD_KEK_V2: hexKey() });
    try {
      const reg = await store.registerProcess(provider);
      const childId = await child.registered;
      const first = (await store.listProcesses()).find((p) => p.id === childId)!.refreshedAt;
      await sleep(700);
      // The child is still live after its TTL (400 ms): its timer refreshed it.
      const live = await store.listProcesses();
      expect(live.map((p) => p.id).sort()).toEqual([reg.id, childId].sort());
      expect(live.find((p) => p.id === childId)!.refreshedAt > first).toBe(true);
      expect(live.find((p) => p.id === childId)).toMatchObject({ pid: child.pid, versions: ['1', '2'], label: 'test-child' });
      // The child is killed (no close, so its record stays): the record expires after its TTL (400 ms).
      child.kill();
      await sleep(900);
      expect((await store.listProcesses()).map((p) => p.id)).toEqual([reg.id]);
      expect((await store.listProcesses({ includeExpired: true })).map((p) => p.id).sort()).toEqual([reg.id, childId].sort());
      // The next write of a registration deletes expired records.
      await reg.refresh();
      expect((await store.listProcesses({ includeExpired: true })).map((p) => p.id)).toEqual([reg.id]);
    } finally {
      child.kill();
      await store.close();
    }
    // Closing the store removed its own record.
    expect(await listAfter(store)).toEqual([]);
  });

  it('a provider that cannot describe itself is registered with no version (never ready) until a refresh succeeds', async () => {
    const store = await open();
    const inner = createEnvProvider({ env: { KEYFOLD_KEK_V1: hexKey() } });
    let down = true;
    const errors: unknown[] = [];
    const flaky = Object.assign(Object.create(Object.getPrototypeOf(inner) as object) as typeof inner, inner, {
      kind: inner.kind,
      keyId: inner.keyId,
      describe: () => (down ? Promise.reject(new Error('service out of reach')) : inner.describe()),
    });
    try {
      const reg = await store.registerProcess(flaky, { onError: (e) => errors.push(e) });
      expect(reg.record.versions).toEqual([]);
      expect(errors).toHaveLength(1);
      down = false;
      expect((await reg.refresh()).versions).toEqual(['1']);
      down = true;
      expect((await reg.refresh()).versions).toEqual(['1']);
    } finally {
      await store.close();
    }
  });

  it('refuses bad options before writing', async () => {
    const store = await open();
    const provider = createEnvProvider({ env: { KEYFOLD_KEK_V1: hexKey() } });
    try {
      await expect(store.registerProcess(provider, { refreshIntervalMs: 5 })).rejects.toBeInstanceOf(RangeError);
      await expect(store.registerProcess(provider, { refreshIntervalMs: 1000, ttlMs: 1000 })).rejects.toBeInstanceOf(RangeError);
      await expect(store.registerProcess(provider, { label: 'bad\nlabel' })).rejects.toBeInstanceOf(TypeError);
      await expect(store.registerProcess({} as never)).rejects.toBeInstanceOf(TypeError);
      expect(await store.listProcesses({ includeExpired: true })).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it('openTenantKeys registers by default, unregisters on close; register: false does not register', async () => {
    const store = await open();
    const provider = createEnvProvider({ env: { KEYFOLD_KEK_V1: hexKey() } });
    try {
      const tk = await openTenantKeys({ store, provider, register: { label: 'svc', refreshIntervalMs: 1000 } });
      expect(await store.listProcesses()).toMatchObject([{ label: 'svc', versions: ['1'], pid: process.pid }]);
      expect(tk.registration?.id).toBe((await store.listProcesses())[0]?.id);
      await tk.close();
      expect(await store.listProcesses({ includeExpired: true })).toEqual([]);
      const quiet = await openTenantKeys({ store, provider, register: false });
      expect(await store.listProcesses()).toEqual([]);
      await quiet.close();
    } finally {
      await store.close();
    }
  });
});
