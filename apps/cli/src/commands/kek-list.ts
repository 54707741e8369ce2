/**
 * `keyfold kek list`: the KEK versions the key store knows (state, dates) and how many keys each holds. Reads the
 * store only.
 * @module
 */
import type { CommandContext } from '../command.js';
import { formatCount, formatTable, printable } from '../output.js';
import { withStore } from '../store.js';

export async function run(ctx: CommandContext): Promise<number | undefined> {
  const result = await withStore(ctx, async ({ store }) => {
    const [versions, usage, lock] = await Promise.all([store.listKekVersions(), store.kekUsage(), store.getInstallLock()]);
    return {
      installLock: lock === undefined ? null : { kind: lock.kind, keyId: lock.keyId },
      versions: versions.map((v) => {
        const mine = usage.filter((u) => u.kek.kind === v.kind && u.kek.keyId === v.keyId && u.kek.version === v.version);
        const count = (state: string): number => mine.filter((u) => u.state === state).reduce((n, u) => n + u.count, 0);
        return {
          kind: v.kind,
          keyId: v.keyId,
          version: v.version,
          state: v.state,
          createdAt: v.createdAt,
          activatedAt: v.activatedAt ?? null,
          retiredAt: v.retiredAt ?? null,
          keys: { active: count('active'), retired: count('retired') },
        };
      }),
    };
  }, 'read');
  ctx.out.result(result, () => {
    if (result.versions.length === 0) return 'No KEK versions recorded yet.';
    const rows = [
      ['kek', 'version', 'state', 'active keys', 'retired keys', 'activated', 'created'],
      ...result.versions.map((v) => [
        printable(`${v.kind}:${v.keyId}`),
        printable(v.version),
        v.state === 'active' ? ctx.out.out.green(v.state) : v.state,
        formatCount(v.keys.active),
        formatCount(v.keys.retired),
        v.activatedAt ?? '-',
        v.createdAt,
      ]),
    ];
    return formatTable(rows, ctx.out.out, [3, 4]);
  });
  return undefined;
}
