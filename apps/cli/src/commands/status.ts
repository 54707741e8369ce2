/**
 * `keyfold status`: where the configuration is, which provider and key it uses, the key versions, capabilities,
 * the latency of the describe call and the security mode. Prints nothing secret.
 * @module
 */
import type { CommandContext } from '../command.js';
import { withProvider } from '../config.js';
import { formatFields, printable } from '../output.js';

function yesNo(v: boolean): string {
  return v ? 'yes' : 'no';
}

export async function run(ctx: CommandContext): Promise<number | undefined> {
  const status = await withProvider(ctx, async (provider, loaded) => {
    const start = performance.now();
    const d = await provider.describe();
    const latencyMs = performance.now() - start;
    return {
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
      [
        'capabilities',
        `generateDataKey ${yesNo(p.capabilities.generateDataKey)}, rewrapKey ${yesNo(p.capabilities.rewrapKey)}, ` +
          `rotate ${yesNo(p.capabilities.rotate)}`,
      ],
    ];
    for (const [k, v] of Object.entries(p.details ?? {})) rows.push([printable(k), printable(String(v))]);
    return formatFields(rows, ctx.out.out);
  });
  return undefined;
}
