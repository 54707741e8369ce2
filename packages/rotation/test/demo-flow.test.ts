/**
 * The library calls behind `keyfold demo` (issue 4), end to end: an embedded installation (file KEK + SQLite store)
 * -> 3 tenants -> seal records -> add a KEK version and rotate with progress -> every record opens -> rotate one
 * tenant key -> shred one tenant (its records refuse to open) -> the audit log verifies.
 */
import { describe, expect, it } from 'vitest';
import { createEnvelope } from '@keyfold/envelope-core';
import { openKeyring } from '@keyfold/keystore';
import { createFileProvider, initFileKeyring } from '@keyfold/provider-local';
import { rotateKek, verifyKek, type RotationProgress } from '../src/index.js';
import { sqliteStore, tempDir } from './helpers.js';

const RECORDS = 3000;
const TENANTS = ['acme', 'globex', 'initech'] as const;

describe('the demo flow, as library calls', () => {
  it('init -> tenants -> seal -> rotate KEK -> open all -> rotate tenant -> shred tenant -> audit verify', async () => {
    const dir = tempDir();
    await initFileKeyring({ dir: `${dir}/keys`, passphrase: 'demo passphrase', kdf: { name: 'pbkdf2-sha256', iterations: 1000 } });
    const provider = await createFileProvider({ dir: `${dir}/keys`, passphrase: 'demo passphrase' });
    const store = await sqliteStore(`${dir}/store.db`);
    const keyring = await openKeyring({ store, provider, actor: 'demo' });
    try {
      for (const t of TENANTS) await keyring.createTenant(t);
      const envelopes = Object.fromEntries(TENANTS.map((t) => [t, createEnvelope({ providers: [keyring.tenant(t)] })]));
      const records: { tenant: (typeof TENANTS)[number]; sealed: Uint8Array; text: string }[] = [];
      for (let i = 0; i < RECORDS; i++) {
        const tenant = TENANTS[i % 3]!;
        const text = `record ${i} of ${tenant}`;
        records.push({ tenant, sealed: await envelopes[tenant]!.seal(text, { record: String(i) }), text });
      }

      const version = await provider.rotate();
      const progress: RotationProgress[] = [];
      const report = await rotateKek({ store, to: provider, onProgress: (p) => progress.push(p) });
      expect(report).toMatchObject({ rewrapped: 3, failed: [], target: { kind: 'file', version } });
      expect(progress.at(-1)?.done).toBe(3);
      expect((await verifyKek({ store, providers: [provider] })).failed).toEqual([]);

      for (const r of records) expect(new TextDecoder().decode(await envelopes[r.tenant]!.open(r.sealed))).toBe(r.text);

      await keyring.rotateTenantKey('globex');
      const fresh = await envelopes.globex!.seal('after rotation');
      expect(envelopes.globex!.inspect(fresh).wrappedKeys[0]?.keyVersion).toBe('2');

      await keyring.shredTenant('initech');
      const initech = records.filter((r) => r.tenant === 'initech');
      for (const r of initech.slice(0, 20)) await expect(envelopes.initech!.open(r.sealed)).rejects.toMatchObject({ code: 'KEY_NOT_FOUND' });
      for (const r of records.filter((x) => x.tenant !== 'initech').slice(0, 20)) {
        expect(new TextDecoder().decode(await envelopes[r.tenant]!.open(r.sealed))).toBe(r.text);
      }

      const audit = await store.verifyAudit();
      expect(audit.ok).toBe(true);
      const events = new Set((await store.listAudit({ limit: 10_000 })).map((e) => e.event));
      for (const e of ['install.lock', 'tenant.create', 'kek.activate', 'kek.rewrap', 'kek.rotate', 'kek.verify', 'tenant.rotate', 'tenant.shred']) {
        expect(events).toContain(e);
      }
      expect(await keyring.listTenants()).toEqual([
        { id: 'acme', activeVersion: 1, versions: 1, shredded: false },
        { id: 'globex', activeVersion: 2, versions: 2, shredded: false },
        { id: 'initech', activeVersion: undefined, versions: 1, shredded: true },
      ]);
    } finally {
      await keyring.close();
      await store.close();
      await provider.close();
    }
  });
});
