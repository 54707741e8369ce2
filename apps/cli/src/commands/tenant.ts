/**
 * `keyfold tenant create|list|rotate|shred`: per-tenant keys in the key store, wrapped under the installation's
 * KEK (`openTenantKeys`). `list` reads the store only; the others open the provider too. `rotate --reencrypt` is
 * tenant-reencrypt.ts; `shred --key-version N` destroys one old version.
 * @module
 */
import type { CommandContext } from '../command.js';
import { UsageError } from '../exit-codes.js';
import { formatCount, formatTable, printable } from '../output.js';
import { intOption, requiredOption, withStore, withStoreAndProvider } from '../store.js';

/** Options of `tenant rotate` that only `--reencrypt` uses. */
const REENCRYPT_ONLY = ['recursive', 'stdin-list', 'table', 'column', 'id-column', 'database-url', 'settle', 'batch-size', 'concurrency'];

function tenantId(ctx: CommandContext): string {
  return requiredOption(ctx, 'tenant', 'ID');
}

/** Malformed ids are usage errors (exit 2). */
async function usage<T>(ctx: CommandContext, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof TypeError || err instanceof RangeError) throw new UsageError(err.message, ctx.name);
    throw err;
  }
}

async function list(ctx: CommandContext): Promise<void> {
  const tenants = await withStore(ctx, async ({ store }) =>
    (await store.listOwners('tenant:')).map((o) => ({
      id: o.owner.slice('tenant:'.length),
      activeVersion: o.destroyed ? null : (o.activeVersion ?? null),
      versions: o.versions,
      shredded: o.destroyed,
    })),
    'read',
  );
  ctx.out.result({ tenants }, () =>
    tenants.length === 0
      ? "No tenants yet: keyfold tenant create --tenant ID"
      : formatTable(
          [
            ['tenant', 'active version', 'versions', 'state'],
            ...tenants.map((t) => [
              printable(t.id),
              t.activeVersion === null ? '-' : String(t.activeVersion),
              formatCount(t.versions),
              t.shredded ? ctx.out.out.red('shredded') : 'active',
            ]),
          ],
          ctx.out.out,
          [1, 2],
        ),
  );
}

export async function run(ctx: CommandContext): Promise<number | undefined> {
  if (ctx.name === 'tenant list') {
    await list(ctx);
    return undefined;
  }
  const id = tenantId(ctx);
  if (ctx.name === 'tenant rotate') {
    if (ctx.args.flag('reencrypt')) {
      const { runReencrypt } = await import('./tenant-reencrypt.js');
      return runReencrypt(ctx, id);
    }
    const given = [...(ctx.positionals ?? []), ...(ctx.rest ?? [])].length > 0 ? 'FILE' : REENCRYPT_ONLY.find((o) => ctx.args.flag(o) || ctx.args.string(o) !== undefined);
    if (given !== undefined) throw new UsageError(`${given === 'FILE' ? 'files' : `--${given}`} only go with --reencrypt`, ctx.name);
  }
  const keyVersion = ctx.name === 'tenant shred' ? intOption(ctx, 'key-version', 1, 999_999_999) : undefined;
  if (ctx.name === 'tenant shred' && !ctx.args.flag('yes')) {
    throw new UsageError(
      keyVersion === undefined
        ? `shredding destroys every key of tenant ${JSON.stringify(id)} for good: add --yes to confirm`
        : `shredding destroys key version ${keyVersion} of tenant ${JSON.stringify(id)} for good: add --yes to confirm`,
      ctx.name,
    );
  }
  const result = await withStoreAndProvider(ctx, async ({ store, provider, actor, loaded }) => {
    const { openTenantKeys } = await import('@keyfold/keystore');
    const tenantKeys = await openTenantKeys({ store, provider, actor, securityMode: loaded.securityMode });
    try {
      switch (ctx.name) {
        case 'tenant create':
          return { ok: true, action: 'created', ...(await usage(ctx, () => tenantKeys.createTenant(id))) };
        case 'tenant rotate':
          return { ok: true, action: 'rotated', ...(await usage(ctx, () => tenantKeys.rotateTenantKey(id))) };
        default: {
          if (keyVersion !== undefined) {
            const shred = await usage(ctx, () => tenantKeys.shredTenantKeyVersion(id, keyVersion));
            return { ok: true, action: 'shredded-version', id: shred.id, version: shred.version, destroyed: shred.destroyed };
          }
          const shred = await usage(ctx, () => tenantKeys.shredTenant(id));
          return { ok: true, action: 'shredded', id: shred.id, destroyed: shred.destroyed };
        }
      }
    } finally {
      await tenantKeys.close();
    }
  });
  ctx.out.result(result, () => {
    if (result.action === 'shredded-version' && 'version' in result) {
      return result.destroyed
        ? `Destroyed key version ${result.version} of tenant ${printable(id)}: envelopes still sealed under it can never be opened again. The other versions keep working.`
        : `Key version ${result.version} of tenant ${printable(id)} was already destroyed; nothing changed.`;
    }
    if (result.action === 'shredded') {
      return (
        `Shredded tenant ${printable(id)}: ${'destroyed' in result ? result.destroyed : 0} key version(s) destroyed. ` +
        'Its envelopes can never be opened again.'
      );
    }
    const version = 'activeVersion' in result ? result.activeVersion : undefined;
    return result.action === 'created'
      ? `Created tenant ${printable(id)} (key version ${version ?? 1}). Seal for it: keyfold encrypt --tenant ${printable(id)} ...`
      : `Rotated tenant ${printable(id)}: new envelopes use key version ${version ?? '?'}; older ones still open.`;
  });
  return undefined;
}
