import { describe, expect, it } from 'vitest';
import { runProviderConformance } from '@keyfold/conformance';
import { createEnvelope } from '@keyfold/envelope-core';
import { createEnvProvider, createMemoryProvider } from '@keyfold/provider-local';
import { openKeyring, tenantKeyId, tenantOwner, type Keyring, type KeyStore } from '../src/index.js';
import { hexKey, pgStore, sqliteStore } from './helpers.js';

let tenants = 0;
async function keyringOn(store: KeyStore, cache?: { maxEntries?: number; ttlMs?: number }): Promise<Keyring> {
  return openKeyring({ store, provider: createEnvProvider({ env: { KEYFOLD_KEK_V1: hexKey() } }), ...(cache ? { cache } : {}) });
}

// The tenant provider obeys every KeyProvider rule; each makeProvider is a fresh tenant (a fresh key), rotate adds a version.
const shared = { store: undefined as KeyStore | undefined, keyring: undefined as Keyring | undefined };
runProviderConformance({
  name: 'tenant (keystore keyring)',
  describe,
  it,
  makeProvider: async () => {
    shared.store ??= await sqliteStore();
    shared.keyring ??= await keyringOn(shared.store);
    const id = `tenant-${++tenants}`;
    await shared.keyring.createTenant(id);
    return shared.keyring.tenant(id);
  },
  rotate: async (p) => {
    await shared.keyring!.rotateTenantKey(p.keyId);
    return p;
  },
});

describe.each([
  ['SQLite', () => sqliteStore()],
  ['PostgreSQL', () => pgStore()],
] as const)('tenant keys on %s', (_name, open) => {
  it('keyring.tenant(id) seals and opens envelopes; tenants cannot open each other’s', async () => {
    const store = await open();
    const keyring = await keyringOn(store);
    try {
      await keyring.createTenant('acme');
      await keyring.createTenant('globex');
      const acme = createEnvelope({ providers: [keyring.tenant('acme')] });
      const sealed = await acme.seal('acme invoice', { table: 'invoices' });
      expect(new TextDecoder().decode(await acme.open(sealed))).toBe('acme invoice');
      expect(acme.inspect(sealed).wrappedKeys).toEqual([{ kind: 'tenant', keyId: 'acme', keyVersion: '1', ciphertextLength: 60 }]);
      await expect(createEnvelope({ providers: [keyring.tenant('globex')] }).open(sealed)).rejects.toMatchObject({ code: 'NO_PROVIDER' });
      await expect(keyring.createTenant('acme')).rejects.toMatchObject({ code: 'ALREADY_EXISTS' });
      expect(await keyring.listTenants()).toEqual([
        { id: 'acme', activeVersion: 1, versions: 1, shredded: false },
        { id: 'globex', activeVersion: 1, versions: 1, shredded: false },
      ]);
      expect((await store.listAudit({ event: 'tenant.create' })).map((e) => e.subject)).toEqual(['tenant:acme', 'tenant:globex']);
    } finally {
      await keyring.close();
      await store.close();
    }
  });

  it('rotateTenantKey: new seals use the new version, old envelopes still open (audited)', async () => {
    const store = await open();
    const keyring = await keyringOn(store);
    try {
      await keyring.createTenant('acme');
      const env = createEnvelope({ providers: [keyring.tenant('acme')] });
      const old = await env.seal('before');
      expect(await keyring.rotateTenantKey('acme')).toEqual({ id: 'acme', activeVersion: 2, versions: 2, shredded: false });
      const fresh = await env.seal('after');
      expect(env.inspect(fresh).wrappedKeys[0]?.keyVersion).toBe('2');
      expect(new TextDecoder().decode(await env.open(old))).toBe('before');
      expect((await store.findDataKey(tenantOwner('acme'), 1))?.state).toBe('retired');
      expect((await store.listAudit({ event: 'tenant.rotate' }))[0]?.details).toMatchObject({ tenant: 'acme', version: 2 });
      await expect(keyring.rotateTenantKey('nobody')).rejects.toMatchObject({ code: 'KEY_NOT_FOUND' });
    } finally {
      await keyring.close();
      await store.close();
    }
  });

  it('shredTenant: every version destroyed, its envelopes never open again, in this process or another (audited)', async () => {
    const store = await open();
    const keyring = await keyringOn(store);
    try {
      await keyring.createTenant('acme');
      await keyring.createTenant('globex');
      const acme = createEnvelope({ providers: [keyring.tenant('acme')] });
      const v1 = await acme.seal('one');
      await keyring.rotateTenantKey('acme');
      const v2 = await acme.seal('two');
      const globex = await createEnvelope({ providers: [keyring.tenant('globex')] }).seal('other');
      // A second keyring (another process) has acme's key cached.
      const other = await openKeyring({ store, provider: keyring.provider, cache: { ttlMs: 0 } });
      await createEnvelope({ providers: [other.tenant('acme')] }).open(v2);

      expect(await keyring.shredTenant('acme')).toEqual({ id: 'acme', destroyed: 2 });
      for (const sealed of [v1, v2]) {
        await expect(acme.open(sealed)).rejects.toMatchObject({ code: 'KEY_NOT_FOUND', message: expect.stringContaining('shredded') });
        await expect(createEnvelope({ providers: [other.tenant('acme')] }).open(sealed)).rejects.toMatchObject({ code: 'KEY_NOT_FOUND' });
      }
      await expect(acme.seal('three')).rejects.toMatchObject({ code: 'KEY_NOT_FOUND' });
      expect(keyring.cachedKeys).toBe(1); // globex only
      expect(new TextDecoder().decode(await createEnvelope({ providers: [keyring.tenant('globex')] }).open(globex))).toBe('other');
      for (const v of [1, 2]) {
        const rec = await store.getDataKey(tenantKeyId('acme', v));
        expect(rec).toMatchObject({ state: 'destroyed', wrapped: undefined, keyCheck: undefined });
      }
      expect(await keyring.getTenant('acme')).toEqual({ id: 'acme', activeVersion: undefined, versions: 2, shredded: true });
      await expect(keyring.rotateTenantKey('acme')).rejects.toMatchObject({ code: 'KEY_NOT_FOUND' });
      await expect(keyring.createTenant('acme')).rejects.toMatchObject({ code: 'ALREADY_EXISTS' });
      expect((await store.listAudit({ event: 'tenant.shred' }))[0]).toMatchObject({ subject: 'tenant:acme', details: { tenant: 'acme', destroyed: 2 } });
      expect((await store.verifyAudit()).ok).toBe(true);
      await other.close();
    } finally {
      await keyring.close();
      await store.close();
    }
  });
});

describe('tenant key cache and safety', () => {
  it('is bounded, wipes keys on eviction and close, and refuses a stored key moved to another row', async () => {
    const store = await sqliteStore();
    const keyring = await keyringOn(store, { maxEntries: 2 });
    try {
      for (const t of ['a', 'b', 'c']) await keyring.createTenant(t);
      expect(keyring.cachedKeys).toBe(2);
      const sealed = await createEnvelope({ providers: [keyring.tenant('a')] }).seal('x');
      expect(keyring.cachedKeys).toBe(2);
      // Swap a's stored key for b's (same KEK, but bound to another row): refused.
      const a = (await store.getDataKey(tenantKeyId('a', 1)))!;
      const b = (await store.getDataKey(tenantKeyId('b', 1)))!;
      await store.updateDataKey(a.id, a.revision, { wrapped: b.wrapped! });
      const fresh = await openKeyring({ store, provider: keyring.provider });
      await expect(createEnvelope({ providers: [fresh.tenant('a')] }).open(sealed)).rejects.toMatchObject({ code: 'DECRYPT_FAILED' });
      await fresh.close();
      await keyring.close();
      expect(keyring.cachedKeys).toBe(0);
      expect(() => keyring.tenant('a')).toThrow(/closed/);
    } finally {
      await store.close();
    }
  });

  it('refuses the memory provider in production and malformed tenant ids', async () => {
    const store = await sqliteStore();
    try {
      const memory = createMemoryProvider({ securityMode: 'development' });
      await expect(openKeyring({ store, provider: memory, securityMode: 'production' })).rejects.toMatchObject({ code: 'POLICY_VIOLATION' });
      expect(await store.getInstallLock()).toBeUndefined();
      const keyring = await keyringOn(store);
      await expect(keyring.createTenant('has space')).rejects.toBeInstanceOf(RangeError);
      expect(() => keyring.tenant('x'.repeat(65))).toThrow(RangeError);
      await keyring.close();
    } finally {
      await store.close();
    }
  });
});
