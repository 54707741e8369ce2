import { describe, expect, it } from 'vitest';
import { createEnvelope } from '@keyfold/envelope-core';
import { openKeyring } from '@keyfold/keystore';
import { createFileProvider, initFileKeyring } from '@keyfold/provider-local';
import { migrateProvider } from '../src/index.js';
import { countOpening, keyId, makeKeks, pgStore, seedKeys, sqliteStore, tempDir } from './helpers.js';

const FAST_KDF = { name: 'pbkdf2-sha256', iterations: 1000 } as const;

async function fileProvider(): Promise<Awaited<ReturnType<typeof createFileProvider>>> {
  const dir = `${tempDir()}/keys`;
  await initFileKeyring({ dir, passphrase: 'correct horse battery staple', kdf: FAST_KDF, keyId: 'file-kek' });
  return createFileProvider({ dir, passphrase: 'correct horse battery staple' });
}

describe.each([
  ['SQLite', () => sqliteStore()],
  ['PostgreSQL', () => pgStore()],
] as const)('migrateProvider on %s', (_name, open) => {
  it('moves every key from the env provider to the file provider, then the install lock, atomically and audited', async () => {
    const store = await open();
    const keks = makeKeks();
    const file = await fileProvider();
    try {
      const plain = await seedKeys(store, keks.v1, 500);
      const keyring = await openKeyring({ store, provider: keks.v1 });
      await keyring.createTenant('acme');
      const sealed = await createEnvelope({ providers: [keyring.tenant('acme')] }).seal('hello');
      await keyring.close();

      const report = await migrateProvider({ store, from: keks.v1, to: file, batchSize: 100 });
      expect(report).toMatchObject({ lockChanged: true, rewrapped: 501, failed: [], lock: { kind: 'file', keyId: 'file-kek' } });
      expect(await countOpening(store, file as never, plain)).toBe(500);
      expect(await store.countDataKeys({ kek: { kind: 'env', keyId: 'KEYFOLD_KEK' } })).toBe(0);
      const events = (await store.listAudit({ limit: 10_000 })).map((e) => e.event);
      expect(events.indexOf('install.migrate.start')).toBeLessThan(events.indexOf('install.migrate'));
      // The old provider is now refused; the new one opens the tenant's envelope.
      await expect(openKeyring({ store, provider: keks.v1 })).rejects.toMatchObject({ code: 'PROVIDER_MISMATCH' });
      const after = await openKeyring({ store, provider: file });
      expect(new TextDecoder().decode(await createEnvelope({ providers: [after.tenant('acme')] }).open(sealed))).toBe('hello');
      await after.close();
      expect((await store.verifyAudit()).ok).toBe(true);
    } finally {
      await store.close();
      await file.close();
    }
  });

  it('keeps the install lock when a key could not be moved', async () => {
    const store = await open();
    const keks = makeKeks();
    const file = await fileProvider();
    try {
      await seedKeys(store, keks.v1, 20);
      const k = (await store.getDataKey(keyId(3)))!;
      const other = (await store.getDataKey(keyId(4)))!;
      await store.updateDataKey(k.id, k.revision, { wrapped: other.wrapped! });
      const report = await migrateProvider({ store, from: keks.v1, to: file });
      expect(report).toMatchObject({ lockChanged: false, rewrapped: 19, failed: [{ id: keyId(3), code: 'UNWRAP_FAILED' }] });
      expect(await store.getInstallLock()).toMatchObject({ kind: 'env', keyId: 'KEYFOLD_KEK' });
      await expect(store.changeInstallLock(keks.v1, file, 'test')).rejects.toMatchObject({ code: 'POLICY_VIOLATION' });
    } finally {
      await store.close();
      await file.close();
    }
  });

  it('refuses a from provider that is not the install lock', async () => {
    const store = await open();
    const keks = makeKeks();
    const file = await fileProvider();
    try {
      await seedKeys(store, keks.v1, 1);
      await expect(migrateProvider({ store, from: file, to: keks.v2 })).rejects.toMatchObject({ code: 'PROVIDER_MISMATCH' });
    } finally {
      await store.close();
      await file.close();
    }
  });
});
