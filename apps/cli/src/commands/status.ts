/**
 * `keyfold status`: where the configuration is, which provider and key it uses, the key versions, capabilities,
 * the latency of the describe call and the security mode. Prints nothing secret.
 * @module
 */
import type { CommandContext } from '../command.js';
import { withProvider } from '../config.js';
import { openStoreAt } from '../store.js';
import { formatFields, printable } from '../output.js';
import { formatProviderCalls, providerCallCounters } from '../provider-calls.js';

function yesNo(v: boolean): string {
  return v ? 'yes' : 'no';
}

export async function run(ctx: CommandContext): Promise<number | undefined> {
  const status = await withProvider(ctx, async (provider, loaded) => {
    const start = performance.now();
    const d = await provider.describe();
    const latencyMs = performance.now() - start;
    const store = loaded.config.store === undefined ? undefined : await storeStatus(ctx, loaded);
    return {
      ...(store === undefined ? {} : { store }),
      config: { dir: loaded.dir, path: loaded.path, createdAt: loaded.config.createdAt },
      securityMode: loaded.securityMode,
      provider: {
        kind: d.kind,
        keyId: d.keyId,
        protection: d.protection,
        activeVersion: d.activeVersion,
        versions: [...d.versions],
        capabilities: d.capabilities,
        /** Round trip of the describe call, in ms. */
        latencyMs,
        /** This run's provider call counters (retries, failures, breaker), or null for a local provider. */
        calls: providerCallCounters(provider),
        ...(d.details === undefined ? {} : { details: d.details }),
      },
    };
  });

  ctx.out.result(status, () => {
    const p = status.provider;
    const rows: [string, string][] = [
      ['config', status.config.path],
      ['created', status.config.createdAt],
      ['security mode', status.securityMode],
      ['provider', `${printable(p.kind)} (${p.protection})`],
      ['key id', printable(p.keyId)],
      ['active version', printable(p.activeVersion)],
      ['versions', p.versions.map(printable).join(', ')],
      ['latency', `${p.latencyMs.toFixed(1)} ms (describe)`],
      ['provider calls', formatProviderCalls(p.calls)],
      [
        'capabilities',
        `generateDataKey ${yesNo(p.capabilities.generateDataKey)}, rewrapKey ${yesNo(p.capabilities.rewrapKey)}, ` +
          `rotate ${yesNo(p.capabilities.rotate)}`,
      ],
    ];
    for (const [k, v] of Object.entries(p.details ?? {})) rows.push([printable(k), printable(String(v))]);
    const st = status.store;
    if (st !== undefined) {
      rows.push(['key store', `${printable(st.location)} (${st.backend}, schema ${st.schemaVersion})`]);
      rows.push(['install lock', st.installLock === null ? '-' : printable(`${st.installLock.kind}:${st.installLock.keyId}`)]);
      rows.push(['data keys', `${st.dataKeys.active} active, ${st.dataKeys.retired} retired, ${st.dataKeys.destroyed} destroyed`]);
      rows.push(['audit', `${st.auditHead.seq} entries`]);
      if (st.interruptedRotations.length > 0) {
        rows.push(['rotation', `interrupted: ${st.interruptedRotations.map((c) => `${printable(c.name)} (${c.processed} done)`).join(', ')}; run 'keyfold kek rotate' to resume`]);
      }
    }
    return formatFields(rows, ctx.out.out);
  });
  return undefined;
}

/** The key store part of `status`: location, install lock, key counts, audit head, interrupted rotations. */
async function storeStatus(ctx: CommandContext, loaded: Parameters<Parameters<typeof withProvider>[1]>[1]) {
  const store = await openStoreAt(ctx, loaded.dir, loaded.config.store as NonNullable<typeof loaded.config.store>, loaded, 'read');
  try {
    const lock = await store.getInstallLock();
    const count = (state: 'active' | 'retired' | 'destroyed') => store.countDataKeys({ states: [state] });
    return {
      backend: store.backend,
      location: store.location,
      schemaVersion: store.schemaVersion,
      installLock: lock === undefined ? null : { kind: lock.kind, keyId: lock.keyId },
      dataKeys: { active: await count('active'), retired: await count('retired'), destroyed: await count('destroyed') },
      auditHead: await store.auditHead(),
      interruptedRotations: (await store.listCheckpoints('rotate:')).map((c) => ({ name: c.name, processed: c.processed, updatedAt: c.updatedAt })),
    };
  } finally {
    await store.close();
  }
}
