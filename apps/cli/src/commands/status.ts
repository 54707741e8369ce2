/**
 * `keyfold status`: where the configuration is, which provider and key it uses, the key versions, capabilities,
 * the latency of the describe call and the security mode; with a key store, its key counts in total and per KEK
 * version, and the live processes registered in it (host, pid, start time, the KEK versions each loaded). Prints
 * nothing secret, and writes nothing (the store is opened read-only; this command does not register itself).
 * @module
 */
import type { KekUsage, KekVersionRecord } from '@keyfold/keystore';
import type { CommandContext } from '../command.js';
import { withProvider } from '../config.js';
import { openStoreAt } from '../store.js';
import { formatCount, formatFields, formatTable, printable } from '../output.js';
import { formatProviderCalls, providerCallCounters } from '../provider-calls.js';
import { processJson } from './kek-readiness.js';

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
      rows.push(['processes', `${formatCount(st.processes.length)} live registered`]);
    }
    const parts = [formatFields(rows, ctx.out.out)];
    if (st !== undefined && st.kekVersions.length > 0) {
      parts.push(
        '',
        formatTable(
          [
            ['KEK version', 'state', 'active keys', 'retired keys'],
            ...st.kekVersions.map((v) => [printable(`${v.kind}:${v.keyId} v${v.version}`), v.state, formatCount(v.keys.active), formatCount(v.keys.retired)]),
          ],
          ctx.out.out,
          [2, 3],
        ),
      );
      if (st.dataKeys.destroyed > 0) parts.push(`(${formatCount(st.dataKeys.destroyed)} destroyed key(s) are under no KEK version: their wrapped material was deleted)`);
    }
    if (st !== undefined && st.processes.length > 0) {
      parts.push(
        '',
        formatTable(
          [
            ['host', 'pid', 'started', 'process', 'KEK', 'versions loaded', 'refreshed'],
            ...st.processes.map((p) => [
              printable(p.host),
              String(p.pid),
              p.startedAt,
              printable(p.label),
              printable(`${p.kind}:${p.keyId}`),
              printable(p.versions.join(', ')) || '-',
              p.refreshedAt,
            ]),
          ],
          ctx.out.out,
          [1],
        ),
      );
    }
    return parts.join('\n');
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
      kekVersions: keysByVersion(await store.listKekVersions(), await store.kekUsage()),
      processes: (await store.listProcesses()).map(processJson),
      auditHead: await store.auditHead(),
      interruptedRotations: (await store.listCheckpoints('rotate:')).map((c) => ({ name: c.name, processed: c.processed, updatedAt: c.updatedAt })),
    };
  } finally {
    await store.close();
  }
}

/**
 * Key counts per KEK version: every version of the registry (with its state) and every version keys are wrapped
 * under that the registry does not know (`unregistered`). Destroyed keys have no version (their wrapped material is
 * deleted): they are counted in `dataKeys.destroyed` only.
 */
function keysByVersion(
  versions: readonly KekVersionRecord[],
  usage: readonly KekUsage[],
): { kind: string; keyId: string; version: string; state: string; keys: { active: number; retired: number } }[] {
  const name = (k: { kind: string; keyId: string; version: string }): string => `${k.kind}\u0000${k.keyId}\u0000${k.version}`;
  type Row = { kind: string; keyId: string; version: string; state: string; keys: { active: number; retired: number } };
  const out = new Map<string, Row>(versions.map((v) => [name(v), { kind: v.kind, keyId: v.keyId, version: v.version, state: v.state, keys: { active: 0, retired: 0 } }]));
  for (const u of usage) {
    let row = out.get(name(u.kek));
    if (row === undefined) {
      row = { kind: u.kek.kind, keyId: u.kek.keyId, version: u.kek.version, state: 'unregistered', keys: { active: 0, retired: 0 } };
      out.set(name(u.kek), row);
    }
    if (u.state === 'active' || u.state === 'retired') row.keys[u.state] += u.count;
  }
  return [...out.values()];
}
