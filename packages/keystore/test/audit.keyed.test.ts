/**
 * The keyed audit log across store objects, on both stores: what a reader without the key can and cannot do, a
 * swapped audit key row seen by a fresh open, the upgrade of a schema-1 store (unkeyed chain), and the audit key
 * through rotation, retirement and a provider migration.
 */
import { describe, expect, it } from 'vitest';
import { createEnvProvider } from '@keyfold/provider-local';
import { SCHEMA_VERSION, auditHash, openKeyring, type AuditEntry, type KeyStore } from '../src/index.js';
import { executeRaw, freshPath, freshSchema, hexKey, pgStore, sqliteStore } from './helpers.js';

interface Opener {
  /** Opens the same store again (a new store object, as a new process would). */
  readonly reopen: () => Promise<KeyStore>;
}

/** The PostgreSQL schema of each store these tests opened (for raw SQL). */
const schemas = new WeakMap<KeyStore, string>();

const backends = [
  [
    'SqliteKeyStore',
    (): Opener => {
      const path = freshPath();
      return { reopen: () => sqliteStore(path) };
    },
  ],
  [
    'PostgresKeyStore',
    (): Opener => {
      const schema = freshSchema();
      return {
        reopen: async () => {
          const store = await pgStore(schema);
          schemas.set(store, schema);
          return store;
        },
      };
    },
  ],
] as const;

/** Raw SQL against `store` (which must have been opened by `reopen`: the helper finds its schema by location). */
async function sql(store: KeyStore, schemaOf: string | undefined, text: string, params: readonly unknown[] = []): Promise<void> {
  if (store.backend === 'sqlite') return executeRaw(store, text, params);
  const pg = (await import('pg')).default;
  const { inject } = await import('vitest');
  const client = new pg.Client({ connectionString: inject('pgUrl') });
  await client.connect();
  try {
    let i = 0;
    await client.query(text.replace(/\?/g, () => `$${++i}`).replace(/\bkeyfold_/g, `"${schemaOf ?? ''}".keyfold_`), params as unknown[]);
  } finally {
    await client.end();
  }
}

describe.each(backends)('%s: keyed audit log across store objects', (_name, make) => {
  async function setup(): Promise<{ opener: Opener; provider: ReturnType<typeof createEnvProvider>; kek: string }> {
    const kek = hexKey();
    const opener = make();
    const provider = createEnvProvider({ env: { KEYFOLD_KEK_V1: kek } });
    const store = await opener.reopen();
    try {
      const keyring = await openKeyring({ store, provider });
      await keyring.createTenant('acme');
      await keyring.createTenant('globex');
      await keyring.close();
      expect(await store.verifyAudit()).toMatchObject({ ok: true, keyed: true, keyedFrom: 1 });
    } finally {
      await store.close();
    }
    return { opener, provider, kek };
  }

  it('without the key: list and a keyless verify work (keyed: false); every audited write is refused and writes nothing', async () => {
    const { opener, provider } = await setup();
    const store = await opener.reopen();
    try {
      const before = await store.auditHead();
      expect((await store.listAudit()).filter((e) => e.event === 'tenant.create')).toHaveLength(2);
      expect(await store.verifyAudit()).toMatchObject({ ok: true, keyed: false });
      await expect(store.appendAudit({ actor: 'x', event: 'forged', subject: 's' })).rejects.toMatchObject({ code: 'POLICY_VIOLATION' });
      await expect(store.recordKekVersion({ kind: 'env', keyId: 'KEYFOLD_KEK', version: '9' }, { activate: true, actor: 'x' })).rejects.toMatchObject({
        code: 'POLICY_VIOLATION',
      });
      expect(await store.auditHead()).toEqual(before);
      expect(await store.listKekVersions()).toHaveLength(1);
      // With the key, the same store object writes again and verifies keyed.
      await store.ensureInstallLock(provider, 'test');
      await store.appendAudit({ actor: 'x', event: 'ok', subject: 's' });
      expect(await store.verifyAudit()).toMatchObject({ ok: true, keyed: true });
    } finally {
      await store.close();
    }
  });

  it("a fresh open with another installation's audit key row (same KEK): INTEGRITY_FAILED at the first keyed entry; under another KEK: refused on open", async () => {
    const a = await setup();
    const other = make();
    const ostore = await other.reopen();
    const sameKek = createEnvProvider({ env: { KEYFOLD_KEK_V1: a.kek } });
    await ostore.ensureInstallLock(sameKek, 'test');
    const k = (await ostore.getAuditKey())!;
    await ostore.close();
    const store = await a.opener.reopen();
    try {
      const installation = (await store.getAuditKey())!.installation;
      await rawOn(store, 'UPDATE keyfold_audit_key SET installation = ?, wrapped = ? WHERE id = 1', [k.installation, Buffer.from(k.wrapped.ciphertext)]);
      await store.ensureInstallLock(a.provider, 'test');
      const v = await store.verifyAudit();
      expect(v).toMatchObject({ ok: false, keyed: true, problem: { kind: 'edited', seq: 1 } });
      expect(v.installation).not.toBe(installation);
    } finally {
      await store.close();
    }
    const foreign = createEnvProvider({ env: { KEYFOLD_KEK_V1: hexKey() } });
    const fstore = await other.reopen();
    try {
      // The foreign installation's key does not unwrap under this KEK: refused on open, with the one integrity code.
      await expect(fstore.ensureInstallLock(foreign, 'test')).rejects.toMatchObject({ code: 'INTEGRITY_FAILED' });
    } finally {
      await fstore.close();
    }
  });

  it('a schema-1 store (unkeyed chain) is upgraded on the first open with the KEK: an audit.keyed entry anchors the old chain', async () => {
    const opener = make();
    const provider = createEnvProvider({ env: { KEYFOLD_KEK_V1: hexKey() } });
    let store = await opener.reopen();
    // Written as a schema-1 store would be: a lock by reference, entries without MACs; then the schema-2 parts dropped.
    await store.ensureInstallLock({ kind: provider.kind, keyId: provider.keyId }, 'old');
    for (let i = 1; i <= 4; i++) await store.appendAudit({ actor: 'old', event: 'tenant.create', subject: `tenant:t${i}` });
    await downgradeToSchema1(store);
    await store.close();
    store = await opener.reopen();
    try {
      expect(store.schemaVersion).toBe(SCHEMA_VERSION);
      expect(await store.getAuditKey()).toBeUndefined();
      expect(await store.verifyAudit()).toMatchObject({ ok: true, keyed: false, entries: 5 });
      await store.ensureInstallLock(provider, 'new');
      const keyedEntry = (await store.listAudit({ event: 'audit.keyed' }))[0] as AuditEntry;
      expect(keyedEntry).toMatchObject({ seq: 6, details: { anchoredSeq: 5 } });
      expect(await store.verifyAudit()).toMatchObject({ ok: true, keyed: true, keyedFrom: 6, entries: 6 });
      // An older entry rewritten with its hash chain recomputed up to the head breaks the anchor: caught at #6.
      const entries = await store.listAudit();
      await rechain(store, entries.map((e) => (e.seq === 2 ? { ...e, subject: 'tenant:forged' } : e)));
      expect((await store.verifyAudit()).problem).toMatchObject({ seq: 6 });
    } finally {
      await store.close();
    }
  });

  it('rotation re-wraps the audit key; retiring its old version is refused until then; a migration moves it with the lock', async () => {
    const opener = make();
    const v1 = hexKey();
    const v2 = hexKey();
    const p1 = createEnvProvider({ env: { KEYFOLD_KEK_V1: v1 } });
    const store = await opener.reopen();
    try {
      await store.ensureInstallLock(p1, 'test');
      const p2 = createEnvProvider({ env: { KEYFOLD_KEK_V1: v1, KEYFOLD_KEK_V2: v2 } });
      await store.recordKekVersion({ kind: 'env', keyId: 'KEYFOLD_KEK', version: '1' }, { activate: true, actor: 'test' });
      await store.recordKekVersion({ kind: 'env', keyId: 'KEYFOLD_KEK', version: '2' }, { activate: true, actor: 'test' });
      await expect(store.retireKekVersion({ kind: 'env', keyId: 'KEYFOLD_KEK', version: '1' }, 'test')).rejects.toMatchObject({
        code: 'POLICY_VIOLATION',
        message: expect.stringContaining('audit key'),
      });
      expect(await store.rewrapAuditKey(p2, 'test')).toBe(true);
      expect(await store.rewrapAuditKey(p2, 'test')).toBe(false);
      expect((await store.getAuditKey())?.wrapped.keyVersion).toBe('2');
      await store.retireKekVersion({ kind: 'env', keyId: 'KEYFOLD_KEK', version: '1' }, 'test');
      expect(await store.verifyAudit()).toMatchObject({ ok: true, keyed: true });
      // A new store object with only V2 opens the audit key.
      const again = await opener.reopen();
      try {
        await again.ensureInstallLock(createEnvProvider({ env: { KEYFOLD_KEK_V2: v2 } }), 'test');
        expect(await again.verifyAudit()).toMatchObject({ ok: true, keyed: true });
      } finally {
        await again.close();
      }
      const to = createEnvProvider({ prefix: 'OTHER_KEK_V', env: { OTHER_KEK_V1: hexKey() } });
      await expect(store.changeInstallLock(p2, { kind: to.kind, keyId: to.keyId }, 'test')).rejects.toMatchObject({ code: 'POLICY_VIOLATION' });
      await store.changeInstallLock(p2, to, 'test');
      expect((await store.getAuditKey())?.wrapped.keyId).toBe(to.keyId);
      const moved = await opener.reopen();
      try {
        await moved.ensureInstallLock(to, 'test');
        expect(await moved.verifyAudit()).toMatchObject({ ok: true, keyed: true });
      } finally {
        await moved.close();
      }
    } finally {
      await store.close();
    }
  });
});

/** Raw SQL on a store opened by these tests. */
function rawOn(store: KeyStore, text: string, params: readonly unknown[] = []): Promise<void> {
  return sql(store, pgSchemaOf(store), text, params);
}

function pgSchemaOf(store: KeyStore): string | undefined {
  return schemas.get(store);
}

/** Drops what schemas 2 and 3 added, as a store written by schema 1 looks. */
async function downgradeToSchema1(store: KeyStore): Promise<void> {
  await rawOn(store, 'DROP TABLE keyfold_processes');
  await rawOn(store, 'ALTER TABLE keyfold_checkpoints DROP COLUMN lease_owner');
  await rawOn(store, 'ALTER TABLE keyfold_checkpoints DROP COLUMN lease_expires_at');
  await rawOn(store, 'DROP TABLE keyfold_audit_key');
  await rawOn(store, 'ALTER TABLE keyfold_audit DROP COLUMN mac');
  await rawOn(store, 'ALTER TABLE keyfold_audit_head DROP COLUMN mac');
  if (store.backend === 'sqlite') await rawOn(store, 'PRAGMA user_version = 1');
  else await rawOn(store, "UPDATE keyfold_meta SET value = '1' WHERE key = 'schema_version'");
}

/** Rewrites the whole log with valid hashes and moves the head: what a writer without the KEK can do. */
async function rechain(store: KeyStore, entries: readonly AuditEntry[]): Promise<void> {
  await rawOn(store, 'DELETE FROM keyfold_audit');
  let prev = '0'.repeat(64);
  for (const e of entries) {
    const hash = auditHash({ ...e, prevHash: prev });
    await rawOn(store, 'INSERT INTO keyfold_audit (seq, time, actor, event, subject, details, prev_hash, hash, mac) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)', [
      e.seq,
      e.time,
      e.actor,
      e.event,
      e.subject,
      JSON.stringify(e.details),
      prev,
      hash,
      e.mac ?? null,
    ]);
    prev = hash;
  }
  await rawOn(store, 'UPDATE keyfold_audit_head SET seq = ?, hash = ? WHERE id = 1', [entries.length, prev]);
}
