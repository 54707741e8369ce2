/**
 * `keyfold kek verify`: unwraps every live data key of the store (and the audit key) with the configured provider and
 * compares its key check value. Exit 3 when any key fails (listed with its error code).
 * @module
 */
import type { CommandContext } from '../command.js';
import { ExitCode } from '../exit-codes.js';
import { formatCount, formatFields, formatTable, printable } from '../output.js';
import { ProgressBar, withInterrupt } from '../progress.js';
import { concurrencyFor, withStoreAndProvider } from '../store.js';

export async function run(ctx: CommandContext): Promise<number | undefined> {
  const version = ctx.args.string('kek-version');
  const report = await withStoreAndProvider(ctx, async ({ store, provider, actor }) => {
    const { verifyKek } = await import('@keyfold/rotation');
    const bar = new ProgressBar(ctx, 'verifying');
    try {
      return await withInterrupt(ctx, (signal) =>
        verifyKek({
          store,
          providers: [provider],
          concurrency: concurrencyFor(ctx, provider),
          actor,
          signal,
          ...(version === undefined ? {} : { kek: { kind: provider.kind, keyId: provider.keyId, version } }),
          onProgress: (p) => bar.update({ total: p.total, done: p.checked, failed: p.failed, elapsedMs: p.elapsedMs }),
        }),
      );
    } finally {
      bar.finish();
    }
  });
  const ok = report.failed.length === 0 && !report.aborted;
  const { ok: verified, ...rest } = report;
  const result = { ok, verified, ...rest, failed: [...report.failed] };
  ctx.out.result(result, () => {
    const rows: [string, string][] = [
      ['checked', formatCount(report.checked)],
      ['ok', formatCount(report.ok)],
      ['failed', formatCount(report.failed.length)],
      ['by version', Object.entries(report.byVersion).map(([k, n]) => `${printable(k)}: ${formatCount(n)}`).join(', ') || '-'],
      ['audit key', report.auditKey ? `${printable(report.auditKey.kek)}: ${report.auditKey.ok ? 'unwraps' : 'FAILED'}` : '-'],
      ['duration', `${report.durationMs.toFixed(0)} ms`],
    ];
    const lines = [formatFields(rows, ctx.out.out)];
    if (report.failed.length > 0) {
      lines.push('', formatTable([['key', 'error'], ...report.failed.slice(0, 50).map((f) => [printable(f.id), f.code])], ctx.out.out));
      if (report.failed.length > 50) lines.push(`... and ${report.failed.length - 50} more (--json lists all)`);
    }
    if (report.aborted) lines.push('', 'interrupted: not every key was checked');
    else lines.push('', ok ? 'Every key unwraps to the key it was created with.' : ctx.out.out.red('Some keys do not unwrap: see above.'));
    return lines.join('\n');
  });
  if (report.aborted) return ExitCode.INTERRUPTED;
  return ok ? undefined : ExitCode.INTEGRITY;
}
