/**
 * `keyfold backup --out FILE` and `keyfold restore --in FILE`: the key store as wrapped material only (install
 * lock, KEK versions, wrapped data keys, audit log), with a digest. Restore verifies the file and its audit chain
 * before anything is written; an SQLite store is restored into a temporary file that is renamed into place only
 * when everything succeeded.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { KeyfoldError } from '@keyfold/envelope-core';
import type { BackupSummary } from '@keyfold/keystore';
import type { CommandContext } from '../command.js';
import { loadConfig } from '../config.js';
import { formatCount, formatFields, printable } from '../output.js';
import { cliActor, openStoreAt, requiredOption, sqlitePath, storeConfig, withStore } from '../store.js';

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
  const summary = await withStore(ctx, async ({ store, actor }) => {
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
  const { restoreStore } = await import('@keyfold/keystore');
  let summary: BackupSummary;
  if (cfg.backend === 'postgres') {
    const store = await openStoreAt(ctx, loaded.dir, cfg, loaded, 'create');
    try {
      summary = await restoreStore({ store, path, actor: cliActor() });
    } finally {
      await store.close();
    }
  } else {
    const target = sqlitePath(loaded.dir, cfg);
    const assertTargetFree = (when: string): void => {
      if (existsSync(target)) {
        throw new KeyfoldError('ALREADY_EXISTS', `the key store ${target} ${when}; restore only replaces a missing store (move it away first). Nothing was written.`);
      }
      // A -wal / -journal of an earlier store at the target would be replayed into the restored one by SQLite.
      const leftover = ['-wal', '-shm', '-journal'].find((suffix) => existsSync(target + suffix));
      if (leftover !== undefined) {
        throw new KeyfoldError(
          'ALREADY_EXISTS',
          `${target}${leftover} is left from an earlier store: SQLite would mix it into the restored one; move it away first. Nothing was written.`,
        );
      }
    };
    assertTargetFree('exists');
    const temp = join(dirname(target), `.${basename(target)}.restore-${randomBytes(6).toString('hex')}`);
    const cleanup = async (): Promise<void> => {
      for (const s of ['', '-wal', '-shm', '-journal']) await rm(temp + s, { force: true });
    };
    try {
      const { openSqliteKeyStore } = await import('@keyfold/keystore');
      const store = await openSqliteKeyStore({ path: temp, create: true, securityMode: loaded.securityMode });
      try {
        summary = await restoreStore({ store, path, actor: cliActor() });
      } finally {
        await store.close();
      }
      assertTargetFree('appeared while restoring');
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
