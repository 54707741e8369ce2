/**
 * `keyfold migrate --provider KIND [options]`: moves the installation to another KEK provider. Every stored key is
 * re-wrapped from the current provider to the new one (migrateProvider); only when none failed does the store's
 * install lock move (atomically, audited) and config.json switch to the new provider.
 * @module
 */
import type { KeyProvider, SecurityMode } from '@keyfold/envelope-core';
import type { CommandContext } from '../command.js';
import { ExitCode, UsageError } from '../exit-codes.js';
import { formatCount, formatFields, printable } from '../output.js';
import { ProgressBar, withInterrupt } from '../progress.js';
import { isProviderKind, type ProviderConfig, type ProviderKind } from '../provider-config.js';
import type { InitOpened } from '../providers/types.js';
import { updateConfig } from '../store-init.js';
import { concurrencyFor, intOption, withStoreAndProvider } from '../store.js';

/** Opens the provider to migrate to from the command-line options, importing its adapter (and vendor SDK) only now. */
async function openTarget(ctx: CommandContext, kind: ProviderKind, securityMode: SecurityMode): Promise<InitOpened> {
  const { openFromOptions, providerAdapter } = await import('../providers/registry.js');
  const { migrate } = await providerAdapter(kind);
  if (!migrate.supported) throw new UsageError(migrate.reason, ctx.name);
  return openFromOptions(ctx, securityMode, migrate.openTarget);
}

export async function run(ctx: CommandContext): Promise<number | undefined> {
  const kind = ctx.args.string('provider');
  if (kind === undefined || !isProviderKind(kind)) {
    throw new UsageError('--provider KIND (env, aws-kms, vault-transit, gcp-kms, azure-kv, pkcs11) is required', ctx.name);
  }
  const dryRun = ctx.args.flag('dry-run');
  const batchSize = intOption(ctx, 'batch-size', 1, 10_000);
  const outcome = await withStoreAndProvider(ctx, async ({ store, provider: from, actor, loaded }) => {
    const target = await openTarget(ctx, kind, loaded.securityMode);
    const to: KeyProvider = target.provider;
    try {
      if (to.kind === from.kind && to.keyId === from.keyId) {
        throw new UsageError(`the installation already uses ${from.kind}:${from.keyId}`, ctx.name);
      }
      const { migrateProvider } = await import('@keyfold/rotation');
      const bar = new ProgressBar(ctx, 'migrating');
      let report;
      try {
        report = await withInterrupt(ctx, (signal) =>
          migrateProvider({
            store,
            from,
            to,
            actor,
            dryRun,
            signal,
            concurrency: Math.max(concurrencyFor(ctx, from), concurrencyFor(ctx, to)),
            ...(batchSize === undefined ? {} : { batchSize }),
            onProgress: (p) => bar.update(p),
          }),
        );
      } finally {
        bar.finish();
      }
      if (report.lockChanged) {
        const config: ProviderConfig = target.config;
        await updateConfig(loaded.dir, (c) => {
          c.provider = config;
        });
      }
      return { report, from: { kind: from.kind, keyId: from.keyId }, to: { kind: to.kind, keyId: to.keyId } };
    } finally {
      await to.close();
    }
  });
  const { report } = outcome;
  const ok = report.failed.length === 0 && !report.aborted;
  const result = { ok, from: outcome.from, to: outcome.to, ...report, failed: [...report.failed] };
  ctx.out.result(result, () => {
    const rows: [string, string][] = [
      ['from', printable(`${outcome.from.kind}:${outcome.from.keyId}`)],
      ['to', printable(`${outcome.to.kind}:${outcome.to.keyId} v${report.target.version}`)],
      [dryRun ? 'would re-wrap' : 're-wrapped', formatCount(report.rewrapped)],
      ['failed', formatCount(report.failed.length)],
      ['install lock', report.lockChanged ? 'moved to the new provider (config.json updated)' : 'unchanged'],
      ['duration', `${report.durationMs.toFixed(0)} ms`],
    ];
    const lines = [formatFields(rows, ctx.out.out)];
    if (report.lockChanged) {
      lines.push('', 'Keep the old provider until nothing sealed directly under it (without a tenant) is needed any more.');
    } else if (!dryRun) {
      lines.push('', 'Nothing moved: fix the failures (or let it finish) and run migrate again.');
    }
    return lines.join('\n');
  });
  if (report.aborted) return ExitCode.INTERRUPTED;
  return ok ? undefined : ExitCode.INTEGRITY;
}
