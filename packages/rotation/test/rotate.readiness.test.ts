/**
 * Readiness before rotation and targeted rotation (issue 14, item 2), on SQLite and PostgreSQL: checkReadiness
 * probes the target here and lists live registered processes that have not loaded it; rotateKek with `readiness`
 * refuses before writing anything unless `force` (recorded on the audit entry); `fromVersion` re-wraps exactly the
 * keys under one version; `toVersion` must be the store's active version and the provider's write version.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { KeyStore } from '@keyfold/keystore';
import { createEnvProvider } from '@keyfold/provider-local';
import { RotationNotReadyError, checkReadiness, rotateKek } from '../src/index.js';
import { freshSchema, pgStore, seedKeys, sqliteStore } from './helpers.js';

const hex = (): string => randomBytes(32).toString('hex');
const KEK = { kind: 'env', keyId: 'KEYFOLD_KEK' } as const;

function keks3() {
  const env = { KEYFOLD_KEK_V1: hex(), KEYFOLD_KEK_V2: hex(), KEYFOLD_KEK_V3: hex() };
  const only = (n: number, active = n): ReturnType<typeof createEnvProvider> =>
    createEnvProvider({ env: Object.fromEntries(Object.entries(env).filter(([k]) => Number(k.slice(13)) <= n)), activeVersion: active });
  return { env, only };
}

const schemas = new WeakMap<KeyStore, string>();
async function pgStoreNamed(): Promise<KeyStore> {
  const schema = freshSchema();
  const store = await pgStore(schema);
  schemas.set(store, schema);
  return store;
}
/** A second store object on the same store: what another process opens. */
function secondOpen(store: KeyStore): Promise<KeyStore> {
  return store.backend === 'sqlite' ? sqliteStore(store.location) : pgStore(schemas.get(store));
}

describe.each([
  ['SQLite', () => sqliteStore()],
  ['PostgreSQL', () => pgStoreNamed()],
] as const)('readiness and targeted rotation on %s', (_name, open) => {
  it('a live process that has not loaded the target makes it not ready; rotateKek refuses (nothing written) unless forced, which is audited', async () => {
    const store: KeyStore = await open();
    const k = keks3();
    const v1 = k.only(1);
    const v2 = k.only(2);
    try {
      await seedKeys(store, v1, 20);
      await store.recordKekVersion({ ...KEK, version: '1' }, { activate: true, actor: 'test' });
      // A long-running process (another store object: another process) that loaded version 1 only.
      const other = await secondOpen(store);
      const stale = await other.registerProcess(v1, { label: 'old-app' });
      const self = await store.registerProcess(v2, { label: 'rotator' });
      try {
        const r = await checkReadiness({ store, provider: v2, version: '2', exclude: [self.id] });
        expect(r).toMatchObject({ ready: false, probe: { method: 'wrap-unwrap', ok: true }, processes: { live: 1 } });
        expect(r.processes.notReady.map((p) => [p.id, p.label, p.versions])).toEqual([[stale.id, 'old-app', ['1']]]);
        // Without exclude, its own record (version 2 loaded) counts as ready.
        expect((await checkReadiness({ store, provider: v2, version: '2' })).processes.live).toBe(2);

        const head = await store.auditHead();
        const err = await rotateKek({ store, to: v2, readiness: { exclude: [self.id] } }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(RotationNotReadyError);
        expect(err).toMatchObject({ code: 'POLICY_VIOLATION', message: expect.stringContaining('old-app, loaded 1') });
        expect((await store.auditHead()).seq).toBe(head.seq);
        expect(await store.countDataKeys({ kek: { ...KEK, version: '2' } })).toBe(0);
        expect(await store.listCheckpoints('rotate:')).toEqual([]);

        const forced = await rotateKek({ store, to: v2, readiness: { exclude: [self.id], force: true } });
        expect(forced).toMatchObject({ rewrapped: 20, failed: [], readiness: { ready: false, forced: true } });
        const summary = (await store.listAudit({ event: 'kek.rotate' })).at(-1);
        expect(summary?.details).toMatchObject({ readiness: 'forced', notReady: [`${stale.record.host}:${stale.record.pid}`], from: null, to: '2' });

        // Once the stale process is gone (closed: its record removed), the target is ready.
        await stale.close();
        expect(await checkReadiness({ store, provider: v2, version: '2', exclude: [self.id] })).toMatchObject({ ready: true, processes: { live: 0, notReady: [] } });
      } finally {
        await self.close();
        await other.close();
      }
    } finally {
      await store.close();
    }
  });

  it('probes a version that is not the write version by unwrapping a stored key under it; a version not loaded is not ready', async () => {
    const store = await open();
    const k = keks3();
    try {
      await seedKeys(store, k.only(1), 3);
      const both = k.only(2); // writes with 2, has 1 too
      expect((await checkReadiness({ store, provider: both, version: '1' })).probe).toMatchObject({ method: 'unwrap-existing', ok: true, keyId: 'k0000000' });
      expect((await checkReadiness({ store, provider: k.only(3), version: '1' })).probe).toMatchObject({ method: 'unwrap-existing', ok: true });
      expect(await checkReadiness({ store, provider: k.only(1), version: '2' })).toMatchObject({ ready: false, probe: { method: 'not-loaded', ok: false } });
      // A provider with the right names but another key for version 1: the stored key does not unwrap.
      const wrong = createEnvProvider({ env: { KEYFOLD_KEK_V1: hex(), KEYFOLD_KEK_V2: k.env.KEYFOLD_KEK_V2 }, activeVersion: 2 });
      expect(await checkReadiness({ store, provider: wrong, version: '1' })).toMatchObject({ ready: false, probe: { method: 'unwrap-existing', ok: false, code: 'UNWRAP_FAILED' } });
      // No stored key under 2, and the env provider can write under a chosen version: a throwaway key round-trips under 2.
      expect((await checkReadiness({ store, provider: k.only(3, 3), version: '2' })).probe).toEqual({ method: 'wrap-unwrap', ok: true });
    } finally {
      await store.close();
    }
  });

  it('fromVersion re-wraps exactly the keys under that version; toVersion must be the active version', async () => {
    const store = await open();
    const k = keks3();
    try {
      await seedKeys(store, k.only(1), 10);
      await seedKeys(store, k.only(2), 10, 10);
      await store.recordKekVersion({ ...KEK, version: '3' }, { activate: true, actor: 'test' });
      const v3 = k.only(3);
      // toVersion other than the store's active version: refused before anything is written.
      await expect(rotateKek({ store, to: v3, toVersion: '2' })).rejects.toMatchObject({ code: 'POLICY_VIOLATION', message: expect.stringContaining("not the store's active version (3)") });
      // The provider writes with 2 here, the store says 3: refused.
      await expect(rotateKek({ store, to: k.only(3, 2), toVersion: '3' })).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
      await expect(rotateKek({ store, to: v3, fromVersion: '3' })).rejects.toMatchObject({ code: 'POLICY_VIOLATION' });
      await expect(rotateKek({ store, to: v3, fromVersion: 'bad version!' })).rejects.toBeInstanceOf(TypeError);

      const r = await rotateKek({ store, to: v3, fromVersion: '2', toVersion: '3' });
      expect(r).toMatchObject({ rewrapped: 10, failed: [], fromVersion: '2' });
      const by = async (v: string): Promise<number> => store.countDataKeys({ kek: { ...KEK, version: v } });
      expect([await by('1'), await by('2'), await by('3')]).toEqual([10, 0, 10]);
      expect((await store.listAudit({ event: 'kek.rotate' })).at(-1)?.details).toMatchObject({ from: '2', to: '3', rewrapped: 10 });
      // The default run moves the rest.
      expect(await rotateKek({ store, to: v3 })).toMatchObject({ rewrapped: 10 });
      expect(await by('3')).toBe(20);
    } finally {
      await store.close();
    }
  });
});
