import { describe, expect, it } from 'vitest';
import { createEnvProvider } from '@keyfold/provider-local';
import { retireKekVersion, rotateKek, verifyKek } from '../src/index.js';
import { keyId, makeKeks, seedKeys, sqliteStore } from './helpers.js';

const V1 = { kind: 'env', keyId: 'KEYFOLD_KEK', version: '1' };
const V2 = { kind: 'env', keyId: 'KEYFOLD_KEK', version: '2' };

describe('verifyKek', () => {
  it('unwraps every key, counts keys per KEK version, and names the ones that fail', async () => {
    const store = await sqliteStore();
    const keks = makeKeks();
    try {
      await seedKeys(store, keks.v1, 120);
      await rotateKek({ store, to: keks.v2, batchSize: 50, onProgress: (p) => p.done >= 50 && undefined });
      await seedKeys(store, keks.v1, 30, 1000);
      const k = (await store.getDataKey(keyId(5)))!;
      const ct = k.wrapped!.ciphertext.slice();
      ct[13] = (ct[13] ?? 0) ^ 4;
      await store.updateDataKey(k.id, k.revision, { wrapped: { ...k.wrapped!, ciphertext: ct } });
      const progress: number[] = [];
      const report = await verifyKek({ store, providers: [keks.v2], batchSize: 40, onProgress: (p) => progress.push(p.checked) });
      expect(report.checked).toBe(150);
      expect(report.ok).toBe(149);
      expect(report.failed).toEqual([{ id: keyId(5), code: 'UNWRAP_FAILED' }]);
      expect(report.byVersion).toEqual({ 'env:KEYFOLD_KEK@1': 30, 'env:KEYFOLD_KEK@2': 120 });
      // The audit key went to V2 with the rotation, and is checked like a data key.
      expect(report.auditKey).toEqual({ kek: 'env:KEYFOLD_KEK@2', ok: true });
      expect(progress.at(-1)).toBe(150);
      const only = await verifyKek({ store, providers: [keks.v2], kek: V1 });
      expect(only.checked).toBe(30);
      const other = await verifyKek({ store, providers: [createEnvProvider({ prefix: 'X_V', env: { X_V1: keks.env.KEYFOLD_KEK_V1! } })], kek: V1 });
      expect(new Set(other.failed.map((f) => f.code))).toEqual(new Set(['NO_PROVIDER']));
      expect((await store.listAudit({ event: 'kek.verify' })).length).toBe(3);
    } finally {
      await store.close();
    }
  });

  it('an abort from outside the run (a Ctrl-C handler, a timer) stops it after the page in progress', async () => {
    const store = await sqliteStore();
    const keks = makeKeks();
    try {
      await seedKeys(store, keks.v1, 300);
      const ac = new AbortController();
      const report = await verifyKek({
        store,
        providers: [keks.v1],
        batchSize: 100,
        signal: ac.signal,
        onProgress: (p) => p.checked === 100 && setImmediate(() => ac.abort()),
      });
      expect(report).toMatchObject({ aborted: true, checked: 100, ok: 100, failed: [] });
    } finally {
      await store.close();
    }
  });
});

describe('retireKekVersion', () => {
  it('is refused while any key is wrapped under the version, and allowed once none is', async () => {
    const store = await sqliteStore();
    const keks = makeKeks();
    try {
      await seedKeys(store, keks.v1, 20);
      await store.recordKekVersion(V1, { activate: true, actor: 'test' });
      await store.recordKekVersion(V2, { activate: true, actor: 'test' });
      await expect(retireKekVersion({ store, kek: V1 })).rejects.toMatchObject({ code: 'POLICY_VIOLATION', message: expect.stringContaining('20 data key') });
      await expect(retireKekVersion({ store, kek: V2 })).rejects.toMatchObject({ code: 'POLICY_VIOLATION', message: expect.stringContaining('active version') });
      await rotateKek({ store, to: keks.v2 });
      const retired = await retireKekVersion({ store, kek: V1, actor: 'cli:test' });
      expect(retired.state).toBe('retired');
      expect((await store.listAudit({ event: 'kek.retire' }))[0]).toMatchObject({ actor: 'cli:test', subject: 'env:KEYFOLD_KEK@1' });
      // A rotation back onto a retired version is refused.
      await expect(rotateKek({ store, to: keks.v1 })).rejects.toMatchObject({ code: 'KEY_VERSION_RETIRED' });
    } finally {
      await store.close();
    }
  });
});
