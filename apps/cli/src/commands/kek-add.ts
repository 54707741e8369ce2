/**
 * `keyfold kek add`: a new key-encryption key version, registered in the key store and made its active version
 * (`--no-activate`: registered only; `kek activate` moves the pointer later). The KEK file gets a random version sealed
 * under the passphrase; a PKCS#11 token generates the next version inside itself. Key services rotate their keys
 * themselves, so for them this command says which of the service's own commands to run instead.
 * @module
 */
import type { KeyProvider } from '@keyfold/envelope-core';
import type { KeyStore } from '@keyfold/keystore';
import type { CommandContext } from '../command.js';
import { loadConfig } from '../config.js';
import { CliError, UsageError } from '../exit-codes.js';
import { formatFields, printable } from '../output.js';
import type { KekAdded } from '../providers/types.js';
import { assertStoreLock, checkStoreLock, cliActor, openStoreAt } from '../store.js';

/** The name of the checkpoint written and deleted again to prove the store takes writes. */
const WRITE_CHECK = 'kek-add:write-check';

/**
 * Proves the store takes writes before anything else changes: a checkpoint row written and deleted again (a
 * read-only SQLite file or directory, a PostgreSQL role without write rights, a full disk fail here).
 */
async function proveWritable(store: KeyStore): Promise<void> {
  await store.saveCheckpoint({ name: WRITE_CHECK, cursor: undefined, processedDelta: 0 });
  await store.deleteCheckpoint(WRITE_CHECK);
}

export async function run(ctx: CommandContext): Promise<number | undefined> {
  // --no-activate: registered, but the key store's pointer (the version every process writes under) stays.
  const activate = !ctx.args.flag('no-activate');
  const loaded = await loadConfig(ctx);
  if (!activate && loaded.config.store === undefined) {
    throw new UsageError(`--no-activate needs a key store (its active version is what it leaves alone); ${loaded.path} records none`, ctx.name);
  }
  const cfg = loaded.config.provider;
  // All or nothing. The key store is opened for writing, checked (permissions, damage, the install lock against
  // config.json and the provider) and proved writable before the provider changes, so a store that refuses leaves
  // the KEK untouched; a failure to record the new version after that undoes it in the KEK file.
  await checkStoreLock(ctx, loaded);
  const store = loaded.config.store === undefined ? undefined : await openStoreAt(ctx, loaded.dir, loaded.config.store, loaded, 'write');
  let added: KekAdded;
  let recorded = false;
  let pointer: string | undefined;
  try {
    if (store !== undefined) {
      await assertStoreLock(store, loaded);
      await store.ensureInstallLock({ kind: cfg.kind, keyId: cfg.keyId }, cliActor());
      await proveWritable(store);
    }
    // Keyed audit log: the kek.activate entry below is MAC'd, so the store's audit key is opened with the provider first.
    const openAuditKey = async (provider: KeyProvider): Promise<void> => {
      await store?.openAuditKey(provider, { actor: cliActor() });
    };
    const { withAdapter } = await import('../providers/registry.js');
    const result = await withAdapter(cfg, (adapter, c) => {
      if (adapter.kekAdd.by === 'elsewhere') {
        throw new CliError('UNSUPPORTED', `kek add is for the file and pkcs11 providers; ${adapter.kekAdd.hint(c)}`);
      }
      return adapter.kekAdd.add(ctx, loaded, c, store === undefined ? undefined : openAuditKey);
    });
    ({ added } = result);
    const { undo } = result;
    if (store !== undefined) {
      try {
        // Audited kek.activate (kek.register with --no-activate): the store's pointer decides what new writes use.
        await store.recordKekVersion({ kind: added.kind, keyId: added.keyId, version: added.version }, { activate, actor: cliActor() });
        pointer = (await store.getActiveKekVersion({ kind: added.kind, keyId: added.keyId }))?.version;
      } catch (err) {
        if (undo === undefined) {
          throw new CliError(
            'IO_ERROR',
            `the key store did not record KEK version ${printable(added.version)}, which the token now holds as ` +
              `${printable(added.objectLabel ?? added.version)} (${printable(err instanceof Error ? err.message : String(err))}); ` +
              'fix the store, then record it before adding another',
            { cause: err },
          );
        }
        await undo();
        throw err;
      }
      recorded = true;
    }
  } finally {
    await store?.close();
  }

  // With a store, its pointer is the active version (the provider's own choice only matters without one).
  if (pointer !== undefined) added = { ...added, activeVersion: pointer };
  const activated = added.activeVersion === added.version;
  ctx.out.result({ ok: true, ...added, activated, recordedInStore: recorded }, () => {
    const rows: [string, string][] = [
      ['provider', printable(added.kind)],
      ['key id', printable(added.keyId)],
      ['new version', printable(added.version)],
      ['active version', printable(added.activeVersion)],
      ['versions', added.versions.map(printable).join(', ')],
    ];
    if (added.objectLabel !== undefined) rows.push(['token object', printable(added.objectLabel)]);
    if (added.tokenLabel !== undefined) rows.push(['token', `${printable(added.tokenLabel)} (slot ${printable(added.slot ?? '')})`]);
    return [
      `Added KEK version ${printable(added.version)}`,
      '',
      formatFields(rows, ctx.out.out),
      '',
      activated
        ? 'New envelopes use it; envelopes sealed under older versions still open. Processes that open the key store use it from now on (running library processes within their pointer refresh interval).'
        : `The key store's active version stays ${printable(added.activeVersion)}: roll version ${printable(added.version)} out to every host, then 'keyfold kek activate --kek-version ${printable(added.version)}'.`,
      ...(recorded && activated ? ["Next: 'keyfold kek rotate' re-wraps the key store's keys under it."] : []),
    ].join('\n');
  });
  return undefined;
}
