/**
 * Issue 6's last bullet, on real SoftHSM2 (no mocks): an installation on the passphrase-sealed file provider moves to
 * a PKCS#11 HSM with `migrateProvider`, then rotates between KEK versions made inside the token
 * (`generatePkcs11KekVersion` -> `rotateKek` -> `retireKekVersion`). Every data key is checked to open to the bytes
 * it was created with, with the HSM provider alone.
 */
import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createEnvelope, type KeyProvider } from '@keyfold/envelope-core';
import { dataKeyContext, keyCheckValue, openKeyring, type KeyStore, type NewDataKey } from '@keyfold/keystore';
import { createFileProvider, initFileKeyring, type FileProvider } from '@keyfold/provider-local';
import { createPkcs11Provider, generatePkcs11KekVersion, type Pkcs11Provider } from '@keyfold/provider-pkcs11';
import { migrateProvider, retireKekVersion, rotateKek, verifyKek } from '../src/index.js';
import { freshPath, keyId, sqliteStore, tempDir } from './helpers.js';
import { createSoftHsm, SOFTHSM_LIBRARY, uniqueLabel, type TestToken } from './softhsm.js';

const FAST_KDF = { name: 'pbkdf2-sha256', iterations: 1000 } as const;
const PASSPHRASE = 'correct horse battery staple';
const KEYS = 300;

// Every token this file uses exists before the first provider opens (SoftHSM2 reads its token dir at C_Initialize).
const softhsm = createSoftHsm();
const migrationToken = softhsm.token(uniqueLabel('migrate'));
const rotationToken = softhsm.token(uniqueLabel('rotate'));

/** A fresh file keyring in a temp dir, production security mode (0700 directory, 0600 keyring file checked). */
async function fileProvider(): Promise<{ dir: string; provider: FileProvider }> {
  const dir = join(tempDir(), 'keys');
  await initFileKeyring({ dir, passphrase: PASSPHRASE, kdf: FAST_KDF, keyId: 'file-kek', securityMode: 'production' });
  return { dir, provider: await createFileProvider({ dir, passphrase: PASSPHRASE, securityMode: 'production' }) };
}

/** Opens an AES_GCM provider on `keyLabel` in `token` (active version: the highest on the token). */
async function hsmProvider(token: TestToken, keyLabel: string): Promise<Pkcs11Provider> {
  return createPkcs11Provider({ library: SOFTHSM_LIBRARY, tokenLabel: token.label, pin: token.pin, keyLabel, mechanism: 'AES_GCM', sessions: 4 });
}

/** Stores `count` random data keys wrapped under `provider`; returns the plaintext keys (key i at offset 32 * i). */
async function seed(store: KeyStore, provider: KeyProvider, count: number): Promise<Uint8Array> {
  await store.ensureInstallLock(provider);
  const all = new Uint8Array(randomBytes(32 * count));
  const batch: NewDataKey[] = [];
  for (let i = 0; i < count; i++) {
    const id = keyId(i);
    const owner = `table:t:${i}`;
    const dk = all.slice(32 * i, 32 * i + 32);
    batch.push({ id, owner, version: 1, wrapped: await provider.wrapKey(dk, dataKeyContext({ id, owner })), keyCheck: keyCheckValue(dk) });
    dk.fill(0);
  }
  await store.insertDataKeys(batch);
  return all;
}

/** Unwraps every seeded key with `provider` alone; returns the KEK versions seen and how many opened to their bytes. */
async function openAll(store: KeyStore, provider: KeyProvider, plain: Uint8Array): Promise<{ opened: number; kinds: Set<string> }> {
  let opened = 0;
  const kinds = new Set<string>();
  for (const k of await store.listDataKeys({ limit: 10_000 })) {
    if (!k.wrapped || !k.owner.startsWith('table:t:')) continue;
    kinds.add(`${k.wrapped.kind}:${k.wrapped.keyId}@${k.wrapped.keyVersion}`);
    const i = Number(k.id.slice(1));
    const got = await provider.unwrapKey(k.wrapped, dataKeyContext(k));
    if (Buffer.from(got).equals(Buffer.from(plain.subarray(32 * i, 32 * i + 32)))) opened++;
    got.fill(0);
  }
  return { opened, kinds };
}

describe('file provider -> PKCS#11 (SoftHSM2) migration and HSM KEK rotation', () => {
  it('migrates every data key from the file provider to the HSM, moves the install lock, and needs the file provider no more', async () => {
    const storePath = freshPath();
    const store = await sqliteStore(storePath);
    const { dir, provider: file } = await fileProvider();
    const keyLabel = uniqueLabel('payments');
    const generated = await generatePkcs11KekVersion({ library: SOFTHSM_LIBRARY, tokenLabel: migrationToken.label, pin: migrationToken.pin, keyLabel });
    expect(generated).toMatchObject({ version: '1', objectLabel: `${keyLabel}.v1`, tokenLabel: migrationToken.label });
    const hsm = await hsmProvider(migrationToken, keyLabel);
    let fileClosed = false;
    try {
      // Production permissions on the key directory and the store file.
      expect(statSync(dir).mode & 0o777).toBe(0o700);
      expect(statSync(join(dir, 'keyring.json')).mode & 0o777).toBe(0o600);
      expect(statSync(storePath).mode & 0o777).toBe(0o600);

      const plain = await seed(store, file, KEYS);
      const keyring = await openKeyring({ store, provider: file });
      await keyring.createTenant('acme');
      const sealed = await createEnvelope({ providers: [keyring.tenant('acme')] }).seal('hello from the file era');
      await keyring.close();
      const before = (await store.getDataKey(keyId(0)))!;
      expect(before.wrapped).toMatchObject({ kind: 'file', keyId: 'file-kek' });

      const report = await migrateProvider({ store, from: file, to: hsm, batchSize: 64 });
      expect(report).toMatchObject({
        lockChanged: true,
        rewrapped: KEYS + 1, // the seeded keys and acme's tenant key
        failed: [],
        dryRun: false,
        aborted: false,
        target: { kind: 'pkcs11', keyId: keyLabel, version: '1' },
        lock: { kind: 'pkcs11', keyId: keyLabel },
      });
      expect(await store.getInstallLock()).toMatchObject({ kind: 'pkcs11', keyId: keyLabel });
      expect(await store.countDataKeys({ kek: { kind: 'file', keyId: 'file-kek' } })).toBe(0);
      expect(await store.countDataKeys({ kek: { kind: 'pkcs11', keyId: keyLabel, version: '1' } })).toBe(KEYS + 1);
      expect((await store.getDataKey(keyId(0)))!.revision).not.toBe(before.revision);

      // Audited: the start, one kek.rewrap per batch, the summary, and the lock move naming both providers.
      const audit = await store.listAudit({ limit: 10_000 });
      const events = audit.map((e) => e.event);
      expect(events.indexOf('install.migrate.start')).toBeGreaterThanOrEqual(0);
      expect(events.indexOf('install.migrate.start')).toBeLessThan(events.indexOf('install.migrate'));
      expect(events.filter((e) => e === 'kek.rewrap').length).toBeGreaterThanOrEqual(Math.ceil((KEYS + 1) / 64));
      expect(audit.find((e) => e.event === 'install.migrate')).toMatchObject({
        subject: `pkcs11:${keyLabel}`,
        details: { from: 'file:file-kek', to: `pkcs11:${keyLabel}`, rewrapped: KEYS + 1 },
      });
      expect((await store.verifyAudit()).ok).toBe(true);

      // The file provider is no longer needed: close it (a key wrapped by it no longer opens), then open every key
      // with the HSM provider alone.
      await file.close();
      fileClosed = true;
      await expect(file.unwrapKey(before.wrapped!, dataKeyContext(before))).rejects.toMatchObject({ code: 'PROVIDER_CLOSED' });
      const opened = await openAll(store, hsm, plain);
      expect(opened).toEqual({ opened: KEYS, kinds: new Set([`pkcs11:${keyLabel}@1`]) });
      const verified = await verifyKek({ store, providers: [hsm] });
      expect(verified).toMatchObject({ checked: KEYS + 1, ok: KEYS + 1, failed: [], byVersion: { [`pkcs11:${keyLabel}@1`]: KEYS + 1 } });

      // The tenant's envelope sealed in the file era opens through the HSM; the file provider is now refused.
      const after = await openKeyring({ store, provider: hsm });
      expect(new TextDecoder().decode(await createEnvelope({ providers: [after.tenant('acme')] }).open(sealed))).toBe('hello from the file era');
      await after.close();
      const reopened = await createFileProvider({ dir, passphrase: PASSPHRASE });
      try {
        await expect(openKeyring({ store, provider: reopened })).rejects.toMatchObject({ code: 'PROVIDER_MISMATCH' });
      } finally {
        await reopened.close();
      }
    } finally {
      if (!fileClosed) await file.close();
      await hsm.close();
      await store.close();
    }
  });

  it('rotates between KEK versions made inside the HSM, idempotently, then retires the old version', async () => {
    const store = await sqliteStore();
    const keyLabel = uniqueLabel('ledger');
    const tokenOptions = { library: SOFTHSM_LIBRARY, tokenLabel: rotationToken.label, pin: rotationToken.pin, keyLabel };
    await generatePkcs11KekVersion(tokenOptions);
    const v1 = await hsmProvider(rotationToken, keyLabel);
    const V1 = { kind: 'pkcs11', keyId: keyLabel, version: '1' };
    const V2 = { kind: 'pkcs11', keyId: keyLabel, version: '2' };
    let v2: Pkcs11Provider | undefined;
    try {
      expect((await v1.describe()).activeVersion).toBe('1');
      const plain = await seed(store, v1, KEYS);
      await store.recordKekVersion(V1, { activate: true, actor: 'test' });

      // Version 2 is generated inside the token; a provider opened now makes it its active version.
      const generated = await generatePkcs11KekVersion(tokenOptions);
      expect(generated).toMatchObject({ version: '2', objectLabel: `${keyLabel}.v2`, versions: ['1', '2'] });
      v2 = await hsmProvider(rotationToken, keyLabel);
      expect((await v2.describe()).activeVersion).toBe('2');
      await expect(retireKekVersion({ store, kek: V1 })).rejects.toMatchObject({ code: 'POLICY_VIOLATION' });

      const progress: number[] = [];
      const report = await rotateKek({ store, to: v2, batchSize: 100, onProgress: (p) => progress.push(p.done) });
      expect(report).toMatchObject({ target: V2, rewrapped: KEYS, failed: [], dryRun: false, aborted: false });
      expect(progress.at(-1)).toBe(KEYS);
      expect(await store.countDataKeys({ kek: V1 })).toBe(0);
      expect(await store.countDataKeys({ kek: V2 })).toBe(KEYS);
      expect(await openAll(store, v2, plain)).toEqual({ opened: KEYS, kinds: new Set([`pkcs11:${keyLabel}@2`]) });
      // A process still running with version 1 active finds version 2 on the token by label.
      expect((await openAll(store, v1, plain)).opened).toBe(KEYS);
      expect(await verifyKek({ store, providers: [v2] })).toMatchObject({ checked: KEYS, failed: [], byVersion: { [`pkcs11:${keyLabel}@2`]: KEYS } });

      // Idempotent: a second run re-wraps nothing.
      const again = await rotateKek({ store, to: v2 });
      expect(again).toMatchObject({ rewrapped: 0, failed: [] });
      expect(await store.countDataKeys({ kek: V2 })).toBe(KEYS);

      // Nothing references version 1 any more: it can be retired, and is then refused as a target.
      const retired = await retireKekVersion({ store, kek: V1, actor: 'cli:test' });
      expect(retired).toMatchObject({ kind: 'pkcs11', keyId: keyLabel, version: '1', state: 'retired' });
      expect((await store.listAudit({ event: 'kek.retire' }))[0]).toMatchObject({ actor: 'cli:test', subject: `pkcs11:${keyLabel}@1` });
      await expect(retireKekVersion({ store, kek: V2 })).rejects.toMatchObject({ code: 'POLICY_VIOLATION' });
      await expect(rotateKek({ store, to: v1 })).rejects.toMatchObject({ code: 'KEY_VERSION_RETIRED' });
      expect((await store.verifyAudit()).ok).toBe(true);
    } finally {
      await v1.close();
      await v2?.close();
      await store.close();
    }
  });
});
