import { describe, expect, it } from 'vitest';
import { createEnvelope, type EncryptionContext, type KeyProvider, type WrappedKey } from '@keyfold/envelope-core';
import { openKeyring, type KeyStore } from '@keyfold/keystore';
import { createEnvProvider, createMemoryProvider } from '@keyfold/provider-local';
import { checkpointName, rotateKek, type RotationProgress } from '../src/index.js';
import { countOpening, keyId, makeKeks, pgStore, seedKeys, sqliteStore } from './helpers.js';

const V2 = { kind: 'env', keyId: 'KEYFOLD_KEK', version: '2' };

/** A target provider whose wrapped keys are broken: rotation must never write them. */
function breakingProvider(inner: KeyProvider): KeyProvider {
  return {
    kind: inner.kind,
    keyId: inner.keyId,
    protection: inner.protection,
    wrapKey: async (dk: Uint8Array, ctx: EncryptionContext): Promise<WrappedKey> => {
      const w = await inner.wrapKey(dk, ctx);
      const ct = w.ciphertext.slice();
      ct[20] = (ct[20] ?? 0) ^ 1;
      return { ...w, ciphertext: ct };
    },
    unwrapKey: (w, ctx) => inner.unwrapKey(w, ctx),
    describe: () => inner.describe(),
    probe: () => inner.probe(),
    close: () => inner.close(),
  };
}

describe.each([
  ['SQLite', () => sqliteStore()],
  ['PostgreSQL', () => pgStore()],
] as const)('rotateKek on %s', (_name, open) => {
  it('re-wraps every key onto the target, reports, audits, and a second run is a no-op', async () => {
    const store: KeyStore = await open();
    const keks = makeKeks();
    try {
      const plain = await seedKeys(store, keks.v1, 1200);
      const progress: RotationProgress[] = [];
      const report = await rotateKek({ store, to: keks.v2, batchSize: 250, onProgress: (p) => progress.push(p) });
      expect(report).toMatchObject({ target: V2, scanned: 1200, rewrapped: 1200, skipped: 0, failed: [], dryRun: false, aborted: false, resumed: false });
      expect(progress.at(-1)).toMatchObject({ total: 1200, done: 1200, rewrapped: 1200, failed: 0 });
      expect(progress.length).toBe(5);
      // The audit key followed the data keys, audited; the log verifies with it.
      expect((await store.getAuditKey())?.wrapped.keyVersion).toBe(V2.version);
      expect(await store.listAudit({ event: 'audit.rewrap' })).toHaveLength(1);
      expect(await countOpening(store, keks.v2, plain)).toBe(1200);
      expect(await store.getCheckpoint(checkpointName(V2))).toBeUndefined();
      const versions = await store.listKekVersions();
      expect(versions.find((v) => v.version === '2')?.state).toBe('active');
      expect((await store.listAudit({ event: 'kek.rotate' }))[0]?.details).toMatchObject({ rewrapped: 1200, failed: 0 });

      const head = await store.auditHead();
      const again = await rotateKek({ store, to: keks.v2 });
      expect(again).toMatchObject({ scanned: 1200, rewrapped: 0, skipped: 1200, failed: [] });
      expect((await store.listDataKeys({ limit: 1200 })).every((k) => k.revision === 2)).toBe(true);
      // Only the run's own summary entry was added.
      expect((await store.listAudit({ after: head.seq })).map((e) => e.event)).toEqual(['kek.rotate']);
    } finally {
      await store.close();
    }
  });

  it('dry run verifies and counts but writes nothing', async () => {
    const store = await open();
    const keks = makeKeks();
    try {
      await seedKeys(store, keks.v1, 300);
      const k = await store.getDataKey(keyId(7));
      const bad = k!.wrapped!.ciphertext.slice();
      bad[0] = (bad[0] ?? 0) ^ 0xff;
      await store.updateDataKey(k!.id, k!.revision, { wrapped: { ...k!.wrapped!, ciphertext: bad } });
      const head = await store.auditHead();
      const report = await rotateKek({ store, to: keks.v2, dryRun: true });
      expect(report).toMatchObject({ dryRun: true, rewrapped: 299, failed: [{ id: keyId(7), code: 'UNWRAP_FAILED' }] });
      expect(await store.countDataKeys({ kek: V2 })).toBe(0);
      expect(await store.auditHead()).toEqual(head);
      expect(await store.listKekVersions()).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it('reports a key that does not unwrap, leaves it as it was, and re-wraps the rest', async () => {
    const store = await open();
    const keks = makeKeks();
    try {
      await seedKeys(store, keks.v1, 100);
      const k = (await store.getDataKey(keyId(42)))!;
      const swapped = (await store.getDataKey(keyId(43)))!;
      // Another row's wrapped key: the context binding makes it fail to unwrap here.
      await store.updateDataKey(k.id, k.revision, { wrapped: swapped.wrapped! });
      const report = await rotateKek({ store, to: keks.v2, batchSize: 30 });
      expect(report.failed).toEqual([{ id: keyId(42), code: 'UNWRAP_FAILED' }]);
      expect(report.rewrapped).toBe(99);
      const after = (await store.getDataKey(k.id))!;
      expect(after.revision).toBe(2);
      expect(after.wrapped?.keyVersion).toBe('1');
      expect(Buffer.from(after.wrapped!.ciphertext).equals(Buffer.from(swapped.wrapped!.ciphertext))).toBe(true);
      // A second run tries the failed key again, and only it.
      expect(await rotateKek({ store, to: keks.v2 })).toMatchObject({ rewrapped: 0, skipped: 99, failed: [{ id: keyId(42) }] });
    } finally {
      await store.close();
    }
  });

  it('never replaces a key with one that does not unwrap', async () => {
    const store = await open();
    const keks = makeKeks();
    try {
      const plain = await seedKeys(store, keks.v1, 50);
      const report = await rotateKek({ store, to: breakingProvider(keks.v2) });
      expect(report.rewrapped).toBe(0);
      // The 50 data keys and the audit key: none is replaced by a wrap that does not unwrap.
      expect(report.failed).toHaveLength(51);
      expect(report.failed.filter((f) => f.id === 'keyfold:audit-key')).toEqual([{ id: 'keyfold:audit-key', code: 'UNWRAP_FAILED' }]);
      expect(new Set(report.failed.map((f) => f.code))).toEqual(new Set(['UNWRAP_FAILED']));
      expect(await store.countDataKeys({ kek: { kind: 'env', keyId: 'KEYFOLD_KEK', version: '1' } })).toBe(50);
      expect((await store.getAuditKey())?.wrapped.keyVersion).toBe('1');
      expect(await store.verifyAudit()).toMatchObject({ ok: true, keyed: true });
      expect(await countOpening(store, keks.v1, plain)).toBe(50);
    } finally {
      await store.close();
    }
  });

  it('an abort from outside the run (a Ctrl-C handler, a timer) stops it after the batch in progress', async () => {
    const store = await open();
    const keks = makeKeks();
    try {
      const plain = await seedKeys(store, keks.v1, 400);
      const ac = new AbortController();
      // Aborted from a macrotask, as a SIGINT handler does: it can only run if the rotation lets the event loop turn.
      const first = await rotateKek({
        store,
        to: keks.v2,
        batchSize: 100,
        signal: ac.signal,
        onProgress: (p) => p.done === 100 && setImmediate(() => ac.abort()),
      });
      expect(first).toMatchObject({ aborted: true, rewrapped: 100 });
      const second = await rotateKek({ store, to: keks.v2, batchSize: 100 });
      expect(second).toMatchObject({ aborted: false, resumed: true, rewrapped: 300 });
      expect(await countOpening(store, keks.v2, plain)).toBe(400);
    } finally {
      await store.close();
    }
  });

  it('stops on abort, keeps its checkpoint, and the next run resumes and finishes', async () => {
    const store = await open();
    const keks = makeKeks();
    try {
      const plain = await seedKeys(store, keks.v1, 400);
      const ac = new AbortController();
      const first = await rotateKek({ store, to: keks.v2, batchSize: 100, signal: ac.signal, onProgress: (p) => p.done >= 200 && ac.abort() });
      expect(first).toMatchObject({ aborted: true, rewrapped: 200 });
      expect((await store.getCheckpoint(checkpointName(V2)))?.processed).toBe(200);
      const second = await rotateKek({ store, to: keks.v2, batchSize: 100 });
      expect(second).toMatchObject({ aborted: false, resumed: true, rewrapped: 200, skipped: 200 });
      expect(await countOpening(store, keks.v2, plain)).toBe(400);
    } finally {
      await store.close();
    }
  });

  it('refuses a target that is not the installed provider (PROVIDER_MISMATCH), writing nothing', async () => {
    const store = await open();
    const keks = makeKeks();
    const other = createEnvProvider({ prefix: 'OTHER_KEK_V', env: { OTHER_KEK_V1: keks.env.KEYFOLD_KEK_V1 } });
    try {
      await seedKeys(store, keks.v1, 10);
      const head = await store.auditHead();
      await expect(rotateKek({ store, to: other })).rejects.toMatchObject({ code: 'PROVIDER_MISMATCH', message: expect.stringContaining('OTHER_KEK') });
      expect(await store.auditHead()).toEqual(head);
    } finally {
      await store.close();
    }
  });

  it('tenant envelopes keep opening after their tenant keys were re-wrapped to a new KEK', async () => {
    const store = await open();
    const keks = makeKeks();
    try {
      const keyring = await openKeyring({ store, provider: keks.v1 });
      await keyring.createTenant('acme');
      await keyring.rotateTenantKey('acme');
      const sealed = await createEnvelope({ providers: [keyring.tenant('acme')] }).seal('invoice 1');
      await keyring.close();
      expect(await rotateKek({ store, to: keks.v2 })).toMatchObject({ rewrapped: 2, failed: [] });
      const after = await openKeyring({ store, provider: keks.v2 });
      expect(new TextDecoder().decode(await createEnvelope({ providers: [after.tenant('acme')] }).open(sealed))).toBe('invoice 1');
      await after.close();
    } finally {
      await store.close();
    }
  });
});

describe('rotateKek arguments', () => {
  it('rejects bad options with TypeError / RangeError before touching the store', async () => {
    const store = await sqliteStore();
    const to = createMemoryProvider({ securityMode: 'development' });
    try {
      await expect(rotateKek({ store, to, batchSize: 0 })).rejects.toBeInstanceOf(RangeError);
      await expect(rotateKek({ store, to, concurrency: 1.5 })).rejects.toBeInstanceOf(RangeError);
      await expect(rotateKek({ store, to: {} as KeyProvider })).rejects.toBeInstanceOf(TypeError);
      await expect(rotateKek({ store, to, workerId: 'bad id!' })).rejects.toBeInstanceOf(TypeError);
      expect(await store.getInstallLock()).toBeUndefined();
    } finally {
      await store.close();
    }
  });
});
