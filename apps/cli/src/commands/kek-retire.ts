/**
 * `keyfold kek retire --kek-version V`: retires a KEK version of the installation's KEK once nothing references it
 * (no data key and not the audit key).
 * @module
 */
import type { CommandContext } from '../command.js';
import { formatFields, printable } from '../output.js';
import { requiredOption, withStoreAndProvider } from '../store.js';

export async function run(ctx: CommandContext): Promise<number | undefined> {
  const version = requiredOption(ctx, 'kek-version', 'V (the version to retire)');
  // With the provider: the kek.retire entry is MAC'd under the audit key (a keyed log refuses keyless writes).
  const rec = await withStoreAndProvider(ctx, async ({ store, loaded, actor }) => {
    const { retireKekVersion } = await import('@keyfold/rotation');
    const lock = await store.getInstallLock();
    const kek = { kind: lock?.kind ?? loaded.config.provider.kind, keyId: lock?.keyId ?? loaded.config.provider.keyId, version };
    return retireKekVersion({ store, kek, actor });
  });
  const result = { ok: true, kind: rec.kind, keyId: rec.keyId, version: rec.version, state: rec.state, retiredAt: rec.retiredAt ?? null };
  ctx.out.result(result, () =>
    [
      `Retired KEK version ${printable(rec.version)}`,
      '',
      formatFields([['kek', printable(`${rec.kind}:${rec.keyId}`)], ['retired at', rec.retiredAt ?? '-']], ctx.out.out),
      '',
      'Nothing in the key store needs it any more: remove it from the provider when you are ready.',
    ].join('\n'),
  );
  return undefined;
}
