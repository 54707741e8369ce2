import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { createEnvProvider } from '@keyfold/provider-local';
import { bindProviderToStore, openTenantKeys, tenantKeyId, type KeyStore } from '../src/index.js';
import { hexKey, pgStore, sqliteStore } from './helpers.js';

const KEK = { kind: 'env', keyId: 'KEYFOLD_KEK' };
const ACTOR = 'test';

/** Registers versions 1..n (not activating) and points the store at `active`. */
async function registry(store: KeyStore, n: number, active: string): Promise<void> {
  for (let v = 1; v <= n; v++) await store.recordKekVersion({ ...KEK, version: String(v) }, { activate: false, actor: ACTOR });
  await store.activateKekVersion({ ...KEK, version: active }, ACTOR);
}

describe.each([
  ['SQLite', () => sqliteStore()],
  ['PostgreSQL', () => pgStore()],
] as const)('the store pointer drives writes on %s', (_name, open) => {
  it('two hosts with different versions write under the pointer; a host without it refuses and still unwraps; a bound provider follows a move after its refresh', async () => {
    const store = await open();
    const v = [hexKey(), hexKey(), hexKey()];
    const hostA = createEnvProvider({ env: { KEYFOLD_KEK_V1: v[0], KEYFOLD_KEK_V2: v[1], KEYFOLD_KEK_V3: v[2] } });
    const hostB = createEnvProvider({ env: { KEYFOLD_KEK_V1: v[0], KEYFOLD_KEK_V2: v[1] } });
    try {
      await registry(store, 3, '2');
      const a = bindProviderToStore(store, hostA, { refreshMs: 150 });
      const b = bindProviderToStore(store, hostB, { refreshMs: 0 });
      const key = new Uint8Array(32).fill(5);
      // Pointer at 2: host A (which has 3, the highest it loaded) still writes under 2.
      const fromA = await a.wrapKey(key, { t: '1' });
      expect(fromA.keyVersion).toBe('2');
      expect((await b.wrapKey(key, { t: '1' })).keyVersion).toBe('2');
      expect((await a.describe()).activeVersion).toBe('2');

      const moved = await store.activateKekVersion({ ...KEK, version: '3' }, ACTOR);
      expect(moved).toMatchObject({ from: '2', changed: true, record: { version: '3', state: 'active' } });
      // B reads the pointer before every write (refreshMs 0): it lacks version 3, so it refuses, naming the variable.
      const refused = await b.wrapKey(key, { t: '1' }).catch((e: unknown) => e);
      expect(refused).toMatchObject({ code: 'KEY_NOT_FOUND' });
      expect((refused as Error).message).toMatch(/KEYFOLD_KEK_V3/);
      await expect(b.generateDataKey({ t: '1' })).rejects.toMatchObject({ code: 'KEY_NOT_FOUND' });
      await expect(b.rewrapKey(fromA, { t: '1' })).rejects.toMatchObject({ code: 'KEY_NOT_FOUND' });
      expect(await b.unwrapKey(fromA, { t: '1' })).toEqual(key);

      // A picks the move up once its refresh interval has passed (or when asked to read now).
      await sleep(200);
      const after = await a.wrapKey(key, { t: '1' });
      expect(after.keyVersion).toBe('3');
      expect(await hostA.unwrapKey(after, { t: '1' })).toEqual(key);

      // Rollback: back to 2; a retired version cannot come back.
      expect(await store.activateKekVersion({ ...KEK, version: '2' }, ACTOR)).toMatchObject({ from: '3', changed: true });
      expect(await a.activeVersion(true)).toBe('2');
      expect((await a.wrapKey(key, { t: '1' })).keyVersion).toBe('2');
      expect((await b.wrapKey(key, { t: '1' })).keyVersion).toBe('2');
      await store.retireKekVersion({ ...KEK, version: '3' }, ACTOR);
      await expect(store.activateKekVersion({ ...KEK, version: '3' }, ACTOR)).rejects.toMatchObject({ code: 'KEY_VERSION_RETIRED' });
      await expect(store.activateKekVersion({ ...KEK, version: '7' }, ACTOR)).rejects.toMatchObject({ code: 'KEY_NOT_FOUND' });
      expect((await store.getActiveKekVersion(KEK))?.version).toBe('2');
      const audited = (await store.listAudit({ event: 'kek.activate' })).map((e) => [e.details.from, e.details.to]);
      expect(audited).toEqual([[null, '2'], ['2', '3'], ['3', '2']]);

      // Closing the binding leaves the provider open.
      await a.close();
      await expect(a.wrapKey(key, {})).rejects.toMatchObject({ code: 'PROVIDER_CLOSED' });
      expect((await hostA.wrapKey(key, {})).keyVersion).toBe('3');
    } finally {
      await Promise.all([hostA.close(), hostB.close()]);
      await store.close();
    }
  });

  it('tenant keys are wrapped under the store pointer, not the highest version the host loaded', async () => {
    const store = await open();
    const provider = createEnvProvider({ env: { KEYFOLD_KEK_V1: hexKey(), KEYFOLD_KEK_V2: hexKey() } });
    try {
      await store.ensureInstallLock(KEK, ACTOR);
      await registry(store, 2, '1');
      const tenantKeys = await openTenantKeys({ store, provider, actor: ACTOR, pointerRefreshMs: 0 });
      await tenantKeys.createTenant('acme');
      expect((await store.getDataKey(tenantKeyId('acme', 1)))?.wrapped?.keyVersion).toBe('1');
      expect((await store.getAuditKey())?.wrapped.keyVersion).toBe('1');
      await store.activateKekVersion({ ...KEK, version: '2' }, ACTOR);
      await tenantKeys.rotateTenantKey('acme');
      expect((await store.getDataKey(tenantKeyId('acme', 2)))?.wrapped?.keyVersion).toBe('2');
      await tenantKeys.close();
    } finally {
      await provider.close();
      await store.close();
    }
  });

  it('bindProviderToStore refuses bad arguments as caller mistakes', async () => {
    const store = await open();
    const provider = createEnvProvider({ env: { KEYFOLD_KEK_V1: hexKey() } });
    try {
      expect(() => bindProviderToStore({} as KeyStore, provider)).toThrow(TypeError);
      expect(() => bindProviderToStore(store, {} as never)).toThrow(TypeError);
      expect(() => bindProviderToStore(store, provider, { refreshMs: -1 })).toThrow(RangeError);
      expect(() => bindProviderToStore(store, provider, { refreshMs: 1.5 })).toThrow(RangeError);
      const bound = bindProviderToStore(store, provider);
      expect(bindProviderToStore(store, bound)).toBe(bound);
      // No registered active version: the provider's own choice, as without a store.
      expect((await bound.wrapKey(new Uint8Array(32), {})).keyVersion).toBe('1');
    } finally {
      await provider.close();
      await store.close();
    }
  });
});
