import { readFileSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createEnvelope } from '@keyfold/envelope-core';
import { createEnvProvider } from '@keyfold/provider-local';
import { backupStore, openKeyring, restoreStore, type KeyStore } from '../src/index.js';
import { executeRaw, freshPath, hexKey, pgStore, sqliteStore, tempDir } from './helpers.js';

async function populate(store: KeyStore): Promise<{ sealed: Uint8Array; provider: ReturnType<typeof createEnvProvider> }> {
  const provider = createEnvProvider({ env: { KEYFOLD_KEK_V1: hexKey() } });
  const keyring = await openKeyring({ store, provider });
  for (const t of ['acme', 'globex', 'initech']) await keyring.createTenant(t);
  await keyring.rotateTenantKey('acme');
  await keyring.shredTenant('initech');
  const sealed = await createEnvelope({ providers: [keyring.tenant('acme')] }).seal('kept');
  await keyring.close();
  return { sealed, provider };
}

describe('backupStore / restoreStore', () => {
  it('round-trips wrapped material and the audit chain, SQLite to PostgreSQL; the backup is 0600 and holds no plaintext key', async () => {
    const source = await sqliteStore();
    const target = await pgStore();
    const path = `${tempDir()}/store.backup`;
    try {
      const { sealed, provider } = await populate(source);
      const summary = await backupStore({ store: source, path, actor: 'cli:test' });
      expect(statSync(path).mode & 0o777).toBe(0o600);
      expect(summary).toMatchObject({ dataKeys: 4, kekVersions: 1 });
      expect(summary.auditHead.seq).toBe(summary.auditEntries);
      expect(readFileSync(path, 'utf8')).not.toMatch(/"dataKey"|"plaintext"/);
      await expect(backupStore({ store: source, path })).rejects.toMatchObject({ code: 'ALREADY_EXISTS' });

      const restored = await restoreStore({ store: target, path, actor: 'cli:test', provider });
      expect(restored.digest).toBe(summary.digest);
      expect(await target.countDataKeys()).toBe(4);
      expect(await target.getInstallLock()).toMatchObject({ kind: 'env', keyId: 'KEYFOLD_KEK' });
      const v = await target.verifyAudit();
      expect(v).toMatchObject({ ok: true, keyed: true, installation: (await source.getAuditKey())?.installation });
      expect(v.entries).toBe(summary.auditEntries + 1);
      expect((await target.listAudit({ event: 'store.restore' }))[0]?.details).toMatchObject({ restoredHead: summary.auditHead.seq });
      // The restored store opens the tenant's envelope with the same KEK; the shredded tenant stays shredded.
      const keyring = await openKeyring({ store: target, provider });
      expect(new TextDecoder().decode(await createEnvelope({ providers: [keyring.tenant('acme')] }).open(sealed))).toBe('kept');
      expect((await keyring.getTenant('initech'))?.shredded).toBe(true);
      await keyring.close();
      await expect(restoreStore({ store: target, path, provider })).rejects.toMatchObject({ code: 'ALREADY_EXISTS' });
    } finally {
      await source.close();
      await target.close();
    }
  });

  it("refuses another installation's backup (its install lock names another provider) before its audit key is tried: PROVIDER_MISMATCH, nothing written", async () => {
    const source = await sqliteStore();
    const target = await sqliteStore();
    const path = `${tempDir()}/store.backup`;
    try {
      await populate(source);
      await backupStore({ store: source, path });
      const other = createEnvProvider({ prefix: 'OTHER_KEK_V', env: { OTHER_KEK_V1: hexKey() } });
      await expect(restoreStore({ store: target, path, provider: other })).rejects.toMatchObject({
        code: 'PROVIDER_MISMATCH',
        message: expect.stringMatching(/backup of another installation: its install lock is env:KEYFOLD_KEK but .*env:OTHER_KEK.*Nothing was written/),
      });
      expect(await target.isEmpty()).toBe(true);
    } finally {
      await source.close();
      await target.close();
    }
  });

  it('refuses a backup whose audit chain does not verify, and writes nothing', async () => {
    const source = await sqliteStore();
    const path = `${tempDir()}/store.backup`;
    try {
      const { provider } = await populate(source);
      await backupStore({ store: source, path });
      // Edit an audit entry inside the backup and fix up the file digest, as a careful attacker would.
      const lines = readFileSync(path, 'utf8').trimEnd().split('\n');
      const i = lines.findIndex((l) => l.includes('"tenant.shred"'));
      lines[i] = lines[i]!.replace('"tenant:initech"', '"tenant:nobody"');
      const { createHash } = await import('node:crypto');
      const body = lines.slice(0, -1).map((l) => `${l}\n`).join('');
      const end = JSON.parse(lines[lines.length - 1]!) as Record<string, unknown>;
      end.digest = createHash('sha256').update(body).digest('hex');
      writeFileSync(path, `${body}${JSON.stringify(end)}\n`);
      const target = await sqliteStore();
      try {
        await expect(restoreStore({ store: target, path, provider })).rejects.toMatchObject({ code: 'INTEGRITY_FAILED', message: expect.stringMatching(/edited at entry #\d+/) });
        expect(await target.isEmpty()).toBe(true);
      } finally {
        await target.close();
      }
    } finally {
      await source.close();
    }
  });

  it('refuses a modified or truncated backup file (INTEGRITY_FAILED), and a store whose own audit chain is broken', async () => {
    const source = await sqliteStore();
    const dir = tempDir();
    try {
      const { provider } = await populate(source);
      const path = `${dir}/a.backup`;
      await backupStore({ store: source, path });
      const text = readFileSync(path, 'utf8');
      writeFileSync(`${dir}/modified`, text.replace('"globex"', '"globez"'));
      writeFileSync(`${dir}/truncated`, text.slice(0, text.lastIndexOf('{"t":"end"')));
      for (const bad of ['modified', 'truncated']) {
        const target = await sqliteStore();
        await expect(restoreStore({ store: target, path: `${dir}/${bad}`, provider })).rejects.toMatchObject({ code: 'INTEGRITY_FAILED' });
        expect(await target.isEmpty()).toBe(true);
        await target.close();
      }
      await executeRaw(source, "UPDATE keyfold_audit SET actor = 'x' WHERE seq = 2", []);
      await expect(backupStore({ store: source, path: `${dir}/b.backup` })).rejects.toMatchObject({ code: 'INTEGRITY_FAILED' });
      expect(existsSync(`${dir}/b.backup`)).toBe(false);
      expect(freshPath()).toBeTruthy();
    } finally {
      await source.close();
    }
  });

  it('a keyed backup: restored only with the KEK provider, and refused when its log was re-chained or truncated with a moved head', async () => {
    const source = await sqliteStore();
    const dir = tempDir();
    try {
      const { provider } = await populate(source);
      const path = `${dir}/a.backup`;
      await backupStore({ store: source, path });
      const { createHash } = await import('node:crypto');
      const { auditHash } = await import('../src/index.js');
      /** Rewrites the backup's records with `edit` and fixes every hash, the head and the digest, as a keyless attacker can. */
      const forge = (name: string, edit: (records: Record<string, unknown>[]) => Record<string, unknown>[]): string => {
        const lines = readFileSync(path, 'utf8').trimEnd().split('\n');
        const end = JSON.parse(lines.pop()!) as Record<string, unknown>;
        let records = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
        records = edit(records);
        let prev = '0'.repeat(64);
        let last = { seq: 0, hash: prev };
        for (const r of records) {
          if (r.t !== 'audit') continue;
          r.prevHash = prev;
          r.hash = auditHash(r as never);
          prev = r.hash as string;
          last = { seq: r.seq as number, hash: prev };
        }
        for (const r of records) if (r.t === 'head') Object.assign(r, last);
        const body = records.map((r) => `${JSON.stringify(r)}\n`).join('');
        end.digest = createHash('sha256').update(body).digest('hex');
        writeFileSync(`${dir}/${name}`, `${body}${JSON.stringify(end)}\n`);
        return `${dir}/${name}`;
      };
      const rechained = forge('rechained', (rs) => rs.map((r) => (r.t === 'audit' && r.event === 'tenant.shred' ? { ...r, subject: 'tenant:nobody' } : r)));
      const auditSeqs = (rs: Record<string, unknown>[]) => rs.filter((r) => r.t === 'audit').map((r) => r.seq as number);
      const truncated = forge('truncated', (rs) => {
        const max = Math.max(...auditSeqs(rs));
        return rs.filter((r) => !(r.t === 'audit' && (r.seq as number) > max - 2));
      });
      for (const bad of [rechained, truncated]) {
        const target = await sqliteStore();
        try {
          // The keyless chain holds: only the MACs (with the KEK) catch it.
          await expect(restoreStore({ store: target, path: bad, provider })).rejects.toMatchObject({ code: 'INTEGRITY_FAILED' });
          await expect(restoreStore({ store: target, path: bad })).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
          expect(await target.isEmpty()).toBe(true);
        } finally {
          await target.close();
        }
      }
    } finally {
      await source.close();
    }
  });
});
