/**
 * The per-tenant key lifecycle (issue 14, item 4), on SQLite and PostgreSQL: one old version of a tenant's key
 * destroyed on its own (`shredTenantKeyVersion`, refused for the active version), and tenant keys created on first
 * seal (`createTenantKey: 'on-first-use'`), race-free across two real processes sharing the store.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { createEnvelope } from '@keyfold/envelope-core';
import { createEnvProvider } from '@keyfold/provider-local';
import { openTenantKeys, tenantOwner, type KeyStore, type TenantKeys, type TenantKeysOptions } from '../src/index.js';
import { freshPath, freshSchema, hexKey, pgStore, pgUrl, sqliteStore } from './helpers.js';

const CHILD = fileURLToPath(new URL('./fixtures/first-use-child.mjs', import.meta.url));
const text = (b: Uint8Array): string => new TextDecoder().decode(b);

async function tenantKeysOn(store: KeyStore, kek: string, extra: Partial<TenantKeysOptions> = {}): Promise<TenantKeys> {
  return openTenantKeys({ store, provider: createEnvProvider({ env: { KEYFOLD_KEK_V1: kek } }), ...extra });
}

interface Child {
  ready: Promise<void>;
  go(): void;
  done: Promise<{ code: number | null; result: Record<string, string> | undefined; stderr: string }>;
}

function startChild(env: Record<string, string>): Child {
  const child = spawn(process.execPath, [CHILD], { cwd: join(fileURLToPath(import.meta.url), '..'), env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  let result: Record<string, string> | undefined;
  let stderr = '';
  let onReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (onReady = resolve));
  createInterface({ input: child.stdout }).on('line', (line) => {
    if (line === 'ready') onReady();
    if (line.startsWith('result ')) result = JSON.parse(line.slice(7)) as Record<string, string>;
  });
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<{ code: number | null; result: Record<string, string> | undefined; stderr: string }>((resolve) =>
    child.on('exit', (code) => {
      onReady();
      resolve({ code, result, stderr });
    }),
  );
  return { ready, go: () => child.stdin.end('go\n'), done };
}

describe.each([
  ['SQLite', 'sqlite'],
  ['PostgreSQL', 'postgres'],
] as const)('tenant key lifecycle on %s', (_name, backend) => {
  const open = (): Promise<KeyStore> => (backend === 'sqlite' ? sqliteStore() : pgStore());

  it('shredTenantKeyVersion destroys one old version: what it sealed never opens again, the rest keeps working (audited)', async () => {
    const store = await open();
    const tenantKeys = await tenantKeysOn(store, hexKey());
    try {
      await tenantKeys.createTenant('acme');
      const env = createEnvelope({ providers: [tenantKeys.tenant('acme')] });
      const underV1 = await env.seal('v1 secret');
      await tenantKeys.rotateTenantKey('acme');
      const underV2 = await env.seal('v2 secret');

      // The active version is refused, with nothing written.
      await expect(tenantKeys.shredTenantKeyVersion('acme', 2)).rejects.toMatchObject({ code: 'POLICY_VIOLATION' });
      expect((await store.findDataKey(tenantOwner('acme'), 2))?.state).toBe('active');
      await expect(tenantKeys.shredTenantKeyVersion('acme', 7)).rejects.toMatchObject({ code: 'KEY_NOT_FOUND' });
      await expect(tenantKeys.shredTenantKeyVersion('nobody', 1)).rejects.toMatchObject({ code: 'KEY_NOT_FOUND' });
      await expect(tenantKeys.shredTenantKeyVersion('acme', 0)).rejects.toBeInstanceOf(RangeError);

      expect(await tenantKeys.shredTenantKeyVersion('acme', 1)).toEqual({ id: 'acme', version: 1, destroyed: true });
      const v1 = await store.findDataKey(tenantOwner('acme'), 1);
      expect(v1).toMatchObject({ state: 'destroyed', wrapped: undefined, keyCheck: undefined });
      // Even this process, which had version 1 cached, cannot open what only version 1 sealed.
      await expect(env.open(underV1)).rejects.toMatchObject({ code: 'KEY_NOT_FOUND', name: 'TenantKeyDestroyedError', tenant: 'acme', version: 1 });
      expect(text(await env.open(underV2))).toBe('v2 secret');

      // Idempotent; the tenant is not shredded, keeps sealing and rotating.
      expect(await tenantKeys.shredTenantKeyVersion('acme', 1)).toEqual({ id: 'acme', version: 1, destroyed: false });
      expect(await tenantKeys.getTenant('acme')).toEqual({ id: 'acme', activeVersion: 2, versions: 2, shredded: false });
      expect((await tenantKeys.rotateTenantKey('acme')).activeVersion).toBe(3);
      expect(text(await env.open(await env.seal('v3 secret')))).toBe('v3 secret');
      expect((await tenantKeys.tenantKeyVersions('acme')).map((v) => [v.version, v.state])).toEqual([
        [1, 'destroyed'],
        [2, 'retired'],
        [3, 'active'],
      ]);
      const audit = await store.listAudit({ event: 'tenant.shred-version' });
      expect(audit.map((e) => [e.subject, e.details.tenant, e.details.version])).toEqual([['tenant:acme', 'acme', 1]]);
      expect((await store.verifyAudit()).ok).toBe(true);

      // Whole-tenant shred still works after a version shred.
      expect((await tenantKeys.shredTenant('acme')).destroyed).toBe(2);
      expect((await tenantKeys.getTenant('acme'))?.shredded).toBe(true);
    } finally {
      await tenantKeys.close();
      await store.close();
    }
  });

  it("an unknown tenant is KEY_NOT_FOUND by default; createTenantKey: 'on-first-use' creates its key on the first seal only", async () => {
    const store = await open();
    const kek = hexKey();
    const strict = await tenantKeysOn(store, kek);
    const lazy = await tenantKeysOn(store, kek, { createTenantKey: 'on-first-use' });
    try {
      await expect(createEnvelope({ providers: [strict.tenant('newco')] }).seal('x')).rejects.toMatchObject({ code: 'KEY_NOT_FOUND' });
      expect(await strict.getTenant('newco')).toBeUndefined();
      await expect(tenantKeysOn(store, kek, { createTenantKey: 'always' as never })).rejects.toBeInstanceOf(TypeError);

      const env = createEnvelope({ providers: [lazy.tenant('newco')] });
      const sealed = await env.seal('first');
      expect(env.inspect(sealed).wrappedKeys[0]).toMatchObject({ kind: 'tenant', keyId: 'newco', keyVersion: '1' });
      expect(await strict.getTenant('newco')).toEqual({ id: 'newco', activeVersion: 1, versions: 1, shredded: false });
      expect(text(await createEnvelope({ providers: [strict.tenant('newco')] }).open(sealed))).toBe('first');
      const created = await store.listAudit({ event: 'tenant.create' });
      expect(created.map((e) => e.details)).toEqual([expect.objectContaining({ tenant: 'newco', version: 1, onFirstUse: true })]);

      // Opening never creates; a shredded tenant is never re-created.
      await expect(createEnvelope({ providers: [lazy.tenant('ghost')] }).open(sealed)).rejects.toMatchObject({ code: 'NO_PROVIDER' });
      expect(await strict.getTenant('ghost')).toBeUndefined();
      await lazy.shredTenant('newco');
      await expect(createEnvelope({ providers: [lazy.tenant('newco')] }).seal('again')).rejects.toMatchObject({ code: 'KEY_NOT_FOUND' });
      expect(await strict.getTenant('newco')).toMatchObject({ shredded: true, versions: 1 });
    } finally {
      await strict.close();
      await lazy.close();
      await store.close();
    }
  });

  it('two processes sealing for the same new tenants at once both succeed, and each tenant gets ONE key', async () => {
    const kek = hexKey();
    const tenants = Array.from({ length: 16 }, (_, i) => `new-${i}`);
    const base: Record<string, string> = { KF_KEK_V1: kek, KF_TENANTS: tenants.join(',') };
    let store: KeyStore;
    if (backend === 'sqlite') {
      const path = freshPath();
      store = await sqliteStore(path);
      base.KF_STORE = path;
    } else {
      const schema = freshSchema();
      store = await pgStore(schema);
      Object.assign(base, { KF_PG_URL: pgUrl(), KF_PG_SCHEMA: schema });
    }
    // The install lock and audit key exist before the race (as after `keyfold init`).
    const parent = await tenantKeysOn(store, kek);
    try {
      const a = startChild({ ...base, KF_ACTOR: 'proc-a' });
      const b = startChild({ ...base, KF_ACTOR: 'proc-b' });
      await Promise.all([a.ready, b.ready]);
      a.go();
      b.go();
      const [ra, rb] = await Promise.all([a.done, b.done]);
      for (const r of [ra, rb]) {
        expect(r.stderr).toBe('');
        expect(r.code).toBe(0);
        expect(Object.keys(r.result ?? {})).toHaveLength(tenants.length);
      }
      for (const t of tenants) {
        expect(await store.countDataKeys({ owner: tenantOwner(t) })).toBe(1);
        const env = createEnvelope({ providers: [parent.tenant(t)] });
        // Both processes' envelopes open with the one stored key.
        expect(text(await env.open(ra.result![t]!))).toBe(`proc-a:${t}`);
        expect(text(await env.open(rb.result![t]!))).toBe(`proc-b:${t}`);
      }
      const created = await store.listAudit({ event: 'tenant.create', limit: 100 });
      expect(created.map((e) => e.subject).sort()).toEqual(tenants.map((t) => tenantOwner(t)).sort());
      expect((await store.verifyAudit()).ok).toBe(true);
    } finally {
      await parent.close();
      await store.close();
    }
  });
});
