/**
 * `keyfold backup --out FILE` and `keyfold restore --in FILE`: the key store as wrapped material only (install
 * lock, KEK versions, wrapped data keys, the wrapped audit key, audit log), with a digest. Both open the KEK provider:
 * restore verifies the file and its audit log's MACs before anything is written; an SQLite store is restored into a temporary file that is renamed into place only
 * when everything succeeded.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { KeyfoldError, type KeyProvider } from '@keyfold/envelope-core';
import type { BackupSummary } from '@keyfold/keystore';
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

async function restore(ctx: CommandContext): Promise<void> {
  const path = resolve(ctx.cwd, requiredOption(ctx, 'in', 'FILE'));
  const loaded = await loadConfig(ctx);
  const cfg = storeConfig(loaded);
  // The installation's provider verifies the backup's audit MACs before anything is written, and opens the audit key.
  const provider = await openProvider(ctx, loaded);
  try {
    return await restoreWith(ctx, path, loaded, cfg, provider);
  } finally {
    await provider.close();
  }
}

async function restoreWith(
  ctx: CommandContext,
  path: string,
  loaded: Awaited<ReturnType<typeof loadConfig>>,
  cfg: ReturnType<typeof storeConfig>,
  provider: KeyProvider,
): Promise<void> {
  const { restoreStore } = await import('@keyfold/keystore');
  let summary: BackupSummary;
  if (cfg.backend === 'postgres') {
    const store = await openStoreAt(ctx, loaded.dir, cfg, loaded, true);
    try {
      summary = await restoreStore({ store, path, actor: cliActor(), provider });
    } finally {
      await store.close();
    }
  } else {
    const target = sqlitePath(loaded.dir, cfg);
    if (existsSync(target)) {
      throw new KeyfoldError('ALREADY_EXISTS', `the key store ${target} exists; restore only replaces a missing store (move it away first). Nothing was written.`);
    }
    const temp = join(dirname(target), `.${basename(target)}.restore-${randomBytes(6).toString('hex')}`);
    const cleanup = async (): Promise<void> => {
      for (const s of ['', '-wal', '-shm', '-journal']) await rm(temp + s, { force: true });
    };
    try {
      const { openSqliteKeyStore } = await import('@keyfold/keystore');
      const store = await openSqliteKeyStore({ path: temp, create: true, securityMode: loaded.securityMode });
      try {
        summary = await restoreStore({ store, path, actor: cliActor(), provider });
      } finally {
        await store.close();
      }
      if (existsSync(target)) throw new KeyfoldError('ALREADY_EXISTS', `the key store ${target} appeared while restoring; nothing was written`);
      await rename(temp, target);
    } finally {
      await cleanup();
    }
  }
  ctx.out.result({ ok: true, ...summary }, () => render(ctx, `Restored into ${cfg.backend === 'sqlite' ? sqlitePath(loaded.dir, cfg) : cfg.url}`, summary));
}

export async function run(ctx: CommandContext): Promise<number | undefined> {
  if (ctx.name === 'restore') await restore(ctx);
  else await backup(ctx);
  return undefined;
}
