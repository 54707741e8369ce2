/**
 * `keyfold backup --out FILE` and `keyfold restore --in FILE`: the key store as wrapped material only (install
 * lock, KEK versions, wrapped data keys, the wrapped audit key, audit log), with a digest. Both open the KEK provider:
 * restore verifies the file and its audit log's MACs before anything is written; an SQLite store is restored into a temporary file that is renamed into place only
 * when everything succeeded.
 *
 * Security rule: a backup file comes from outside, so before it becomes this installation's store its install lock
 * must name this installation's provider (config.json): a backup of another installation would otherwise replace
 * the store with keys this KEK cannot open and an audit history that is not this installation's. It is first
 * restored into a private temporary SQLite store and checked there; only then is it renamed into place (SQLite) or
 * restored into the PostgreSQL store.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { KeyfoldError, PolicyError, syncDirectory, type KeyProvider } from '@keyfold/envelope-core';
import type { BackupSummary } from '@keyfold/keystore';
import type { LoadedConfig } from '../config.js';
import type { CommandContext } from '../command.js';
import { loadConfig, openProvider } from '../config.js';
import { formatCount, formatFields, printable } from '../output.js';
import { cliActor, openStoreAt, requiredOption, sqlitePath, storeConfig, withStoreAndProvider } from '../store.js';

function render(ctx: CommandContext, title: string, s: BackupSummary): string {
  return [
    title,
    '',
    formatFields(
      [
        ['file', printable(s.path)],
        ['data keys', formatCount(s.dataKeys)],
        ['KEK versions', formatCount(s.kekVersions)],
        ['audit entries', `${formatCount(s.auditEntries)} (head #${s.auditHead.seq} ${s.auditHead.hash.slice(0, 16)}…)`],
        ['digest', `sha256:${s.digest}`],
      ],
      ctx.out.out,
    ),
  ].join('\n');
}

async function backup(ctx: CommandContext): Promise<void> {
  const path = resolve(ctx.cwd, requiredOption(ctx, 'out', 'FILE'));
  // With the provider: the audit key is open, so the log is verified with its MACs and the store.backup entry MAC'd.
  const summary = await withStoreAndProvider(ctx, async ({ store, actor }) => {
    const { backupStore } = await import('@keyfold/keystore');
    return backupStore({ store, path, actor });
  });
  ctx.out.result({ ok: true, ...summary }, () =>
    `${render(ctx, 'Backup written (wrapped keys only; mode 0600)', summary)}\n\nIt is useless without the KEK: keep the KEK's own backup separately.`,
  );
}

/**
 * Restores `path` into a new SQLite store at `temp` and checks its install lock against the configuration; the
 * caller removes `temp` (and its journal files) whatever happens.
 * @throws PolicyError PROVIDER_MISMATCH when the backup belongs to another installation; restoreStore's errors.
 */
async function restoreChecked(ctx: CommandContext, loaded: LoadedConfig, path: string, temp: string, provider: KeyProvider): Promise<BackupSummary> {
  const { openSqliteKeyStore, restoreStore } = await import('@keyfold/keystore');
  const store = await openSqliteKeyStore({ path: temp, create: true, securityMode: loaded.securityMode });
  try {
    const summary = await restoreStore({ store, path, actor: cliActor(), provider });
    const lock = await store.getInstallLock();
    const cfg = loaded.config.provider;
    // A backup without a lock (a store nothing was written to) gets this installation's on first use.
    if (lock !== undefined && (lock.kind !== cfg.kind || lock.keyId !== cfg.keyId)) {
      throw new PolicyError(
        'PROVIDER_MISMATCH',
        `${path} is a backup of another installation: its install lock is ${printable(`${lock.kind}:${lock.keyId}`)} but ` +
          `${loaded.path} names ${printable(`${cfg.kind}:${cfg.keyId}`)}; restore it with that installation's configuration. Nothing was written.`,
      );
    }
    return summary;
  } finally {
    await store.close();
  }
}

/** Removes an SQLite store file with its companions (the keystore's `sqliteStoreFiles`). */
async function removeSqliteFiles(path: string): Promise<void> {
  const { sqliteStoreFiles } = await import('@keyfold/keystore');
  for (const file of sqliteStoreFiles(path)) await rm(file, { force: true });
}

async function restore(ctx: CommandContext): Promise<void> {
  const path = resolve(ctx.cwd, requiredOption(ctx, 'in', 'FILE'));
  const loaded = await loadConfig(ctx);
  const cfg = storeConfig(loaded);
  const target = cfg.backend === 'sqlite' ? sqlitePath(loaded.dir, cfg) : undefined;
  const { SQLITE_COMPANION_SUFFIXES } = await import('@keyfold/keystore');
  const assertTargetFree = (when: string): void => {
    if (target === undefined) return;
    if (existsSync(target)) {
      throw new KeyfoldError('ALREADY_EXISTS', `the key store ${target} ${when}; restore only replaces a missing store (move it away first). Nothing was written.`);
    }
    // A -wal / -journal of an earlier store at the target would be replayed into the restored one by SQLite.
    const leftover = SQLITE_COMPANION_SUFFIXES.find((suffix) => existsSync(target + suffix));
    if (leftover !== undefined) {
      throw new KeyfoldError(
        'ALREADY_EXISTS',
        `${target}${leftover} is left from an earlier store: SQLite would mix it into the restored one; move it away first. Nothing was written.`,
      );
    }
  };
  // Checked before the provider is opened: no passphrase is asked for a restore that cannot happen.
  assertTargetFree('exists');
  // The installation's provider verifies the backup's audit MACs before anything is written, and opens the audit key.
  // The store is missing (SQLite) or about to be filled: there is no install lock to check it against yet.
  const provider = await openProvider(ctx, loaded, { storeLockChecked: true });
  let summary: BackupSummary;
  try {
    if (cfg.backend === 'postgres') {
      // Checked in a private scratch store first: the PostgreSQL restore commits as it goes.
      const scratchDir = await mkdtemp(join(tmpdir(), 'keyfold-restore-'));
      try {
        await restoreChecked(ctx, loaded, path, join(scratchDir, 'check.db'), provider);
      } finally {
        await rm(scratchDir, { recursive: true, force: true });
      }
      const { restoreStore } = await import('@keyfold/keystore');
      const store = await openStoreAt(ctx, loaded.dir, cfg, loaded, 'create');
      try {
        summary = await restoreStore({ store, path, actor: cliActor(), provider });
      } finally {
        await store.close();
      }
    } else {
      const temp = join(dirname(target as string), `.${basename(target as string)}.restore-${randomBytes(6).toString('hex')}`);
      try {
        summary = await restoreChecked(ctx, loaded, path, temp, provider);
        assertTargetFree('appeared while restoring');
        await rename(temp, target as string);
        await syncDirectory(dirname(target as string));
      } finally {
        await removeSqliteFiles(temp);
      }
    }
  } finally {
    await provider.close();
  }
  ctx.out.result({ ok: true, ...summary }, () => render(ctx, `Restored into ${cfg.backend === 'sqlite' ? sqlitePath(loaded.dir, cfg) : cfg.url}`, summary));
}

export async function run(ctx: CommandContext): Promise<number | undefined> {
  if (ctx.name === 'restore') await restore(ctx);
  else await backup(ctx);
  return undefined;
}
