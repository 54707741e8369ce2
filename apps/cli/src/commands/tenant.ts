/**
 * `keyfold tenant create|list|rotate|shred`: per-tenant keys in the key store, wrapped under the installation's
 * KEK (`openTenantKeys`). `list` reads the store only; the others open the provider too.
 * @module
 */
import type { CommandContext } from '../command.js';
import { UsageError } from '../exit-codes.js';
import { formatCount, formatTable, printable } from '../output.js';
import { requiredOption, withStore, withStoreAndProvider } from '../store.js';

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
  if (ctx.name === 'tenant shred' && !ctx.args.flag('yes')) {
    throw new UsageError(`shredding destroys every key of tenant ${JSON.stringify(id)} for good: add --yes to confirm`, ctx.name);
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
          const shred = await usage(ctx, () => tenantKeys.shredTenant(id));
          return { ok: true, action: 'shredded', id: shred.id, destroyed: shred.destroyed };
        }
      }
    } finally {
      await tenantKeys.close();
    }
  });
  ctx.out.result(result, () => {
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
