/**
 * `keyfold kek verify`: unwraps every live data key of the store (and the audit key) with the configured provider and
 * compares its key check value. Exit 3 when any key fails (listed with its error code). With `--kek-version V`,
 * only the keys under V; when none is, it says so (0 keys checked is not a proof that V works).
 *
 * `kek verify --target N` is the readiness check before a rotation to N: N must work here (a probe) and every live
 * process registered in the store must have loaded N; otherwise the processes that have not are listed and the
 * command exits 1 (NOT_READY).
 * @module
 */
import type { CommandContext } from '../command.js';
import { ExitCode, UsageError } from '../exit-codes.js';
import { formatCount, formatFields, formatTable, printable } from '../output.js';
import { ProgressBar, withInterrupt } from '../progress.js';
import { concurrencyFor, withStoreAndProvider } from '../store.js';
import { readinessJson, readinessText, reportNotReady, versionOption } from './kek-readiness.js';

/** `--target N`: the readiness check. */
async function verifyTarget(ctx: CommandContext, target: string): Promise<number | undefined> {
  const report = await withStoreAndProvider(ctx, async ({ store, provider, registration }) => {
    const { checkReadiness } = await import('@keyfold/rotation');
    return checkReadiness({ store, provider, version: target, exclude: registration === undefined ? [] : [registration.id] });
  });
  if (!report.ready) {
    return reportNotReady(ctx, report, `roll version ${target} out to every process (restart them with it loaded), then run this again`);
  }
  ctx.out.result({ ok: true, ...readinessJson(report) }, () =>
    [readinessText(ctx, report), '', `Version ${printable(target)} is ready: it works here and every live registered process has loaded it.`].join('\n'),
  );
  return undefined;
}

export async function run(ctx: CommandContext): Promise<number | undefined> {
  const target = versionOption(ctx, 'target');
  const version = ctx.args.string('kek-version');
  if (target !== undefined) {
    if (version !== undefined) throw new UsageError('--target and --kek-version are different checks: give one of them', ctx.name);
    return verifyTarget(ctx, target);
  }
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
  // `--kek-version V` with no key under V proves nothing about V: said plainly, never a silent pass.
  const nothingUnder = version !== undefined && report.checked === 0 && !report.aborted;
  const warning = nothingUnder
    ? `no stored key is wrapped under version ${version}: 0 keys checked, nothing about version ${version} was verified. ` +
      `Before a rotation to it, run 'keyfold kek verify --target ${version}'.`
    : undefined;
  const result = { ok, verified, ...rest, failed: [...report.failed], ...(warning === undefined ? {} : { warning }) };
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
    else if (warning !== undefined) lines.push('', `0 keys checked: ${warning}`);
    else lines.push('', ok ? 'Every key unwraps to the key it was created with.' : ctx.out.out.red('Some keys do not unwrap: see above.'));
    return lines.join('\n');
  });
  if (report.aborted) return ExitCode.INTERRUPTED;
  return ok ? undefined : ExitCode.INTEGRITY;
}
