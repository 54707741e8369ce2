/**
 * `keyfold kek rotate`: re-wraps stored keys under the provider's active KEK version (rotateKek), with a progress
 * bar on a terminal, Ctrl-C stopping after the batch in progress (the next run resumes), and a report.
 *
 * Before writing anything the target must be ready (`kek verify --target`): it works here and every live process
 * registered in the store has loaded it; otherwise the processes that have not are listed and the command exits 1
 * (NOT_READY). `--force` rotates anyway, and the audit entry records it with the processes that were not ready.
 * `--from-version N` re-wraps only the keys under N; `--to-version M` must be the store's active version.
 * @module
 */
import type { ReadinessReport } from '@keyfold/rotation';
import type { CommandContext } from '../command.js';
import { ExitCode, exitCodeForFailedKeys } from '../exit-codes.js';
import { formatCount, formatFields, formatTable, printable } from '../output.js';
import { ProgressBar, withInterrupt } from '../progress.js';
import { concurrencyFor, intOption, withStoreAndProvider } from '../store.js';
import { reportNotReady, versionOption } from './kek-readiness.js';

export async function run(ctx: CommandContext): Promise<number | undefined> {
  const dryRun = ctx.args.flag('dry-run');
  const force = ctx.args.flag('force');
  const batchSize = intOption(ctx, 'batch-size', 1, 10_000);
  const lockWait = intOption(ctx, 'lock-wait', 0, 3600);
  const fromVersion = versionOption(ctx, 'from-version');
  const toVersion = versionOption(ctx, 'to-version');
  let notReady: ReadinessReport | undefined;
  const report = await withStoreAndProvider(ctx, async ({ store, provider, actor, registration }) => {
    const { RotationNotReadyError, rotateKek } = await import('@keyfold/rotation');
    const bar = new ProgressBar(ctx, dryRun ? 'checking' : 'rotating');
    try {
      return await withInterrupt(ctx, (signal) =>
        rotateKek({
          store,
          to: provider,
          concurrency: concurrencyFor(ctx, provider),
          dryRun,
          actor,
          signal,
          readiness: { exclude: registration === undefined ? [] : [registration.id], force },
          ...(fromVersion === undefined ? {} : { fromVersion }),
          ...(toVersion === undefined ? {} : { toVersion }),
          ...(batchSize === undefined ? {} : { batchSize }),
          ...(lockWait === undefined ? {} : { lockWaitMs: lockWait * 1000 }),
          onProgress: (p) => bar.update(p),
        }),
      );
    } catch (err) {
      if (!(err instanceof RotationNotReadyError)) throw err;
      notReady = err.readiness;
      return undefined;
    } finally {
      bar.finish();
    }
  });
  if (report === undefined) {
    const r = notReady as ReadinessReport;
    return reportNotReady(ctx, r, `nothing was written; roll version ${r.target.version} out to every process first (check with 'keyfold kek verify --target ${r.target.version}'), or rotate anyway with --force`);
  }
  const ok = report.failed.length === 0 && !report.aborted;
  const rate = report.durationMs > 0 ? (report.rewrapped * 1000) / report.durationMs : 0;
  const result = { ok, ...report, failed: [...report.failed], keysPerSecond: rate };
  ctx.out.result(result, () => {
    const t = report.target;
    const rows: [string, string][] = [
      ['target', printable(`${t.kind}:${t.keyId} v${t.version}`)],
      ['from', report.fromVersion === undefined ? 'every other version' : printable(`v${report.fromVersion}`)],
      [dryRun ? 'would re-wrap' : 're-wrapped', formatCount(report.rewrapped)],
      ['already on target', formatCount(report.skipped)],
      ['failed', formatCount(report.failed.length)],
      ['duration', `${report.durationMs.toFixed(0)} ms (${formatCount(Math.round(rate))} keys/s)`],
    ];
    if (report.resumed) rows.push(['resumed', 'yes (from the checkpoint of an interrupted run)']);
    if (report.takenOver !== undefined) rows.push(['taken over', `from ${printable(report.takenOver.owner)} (its lease had expired)`]);
    if (report.readiness !== undefined) {
      const r = report.readiness;
      rows.push([
        'readiness',
        r.forced
          ? ctx.out.out.red(`NOT READY, forced (--force): ${formatCount(r.processes.notReady.length)} process(es) had not loaded v${printable(t.version)}${r.probe.ok ? '' : ', probe failed here'}`)
          : `ready (${formatCount(r.processes.live)} other live process(es), every one has loaded v${printable(t.version)})`,
      ]);
    }
    const lines = [formatFields(rows, ctx.out.out)];
    if (report.failed.length > 0) {
      lines.push('', formatTable([['key', 'error'], ...report.failed.slice(0, 50).map((f) => [printable(f.id), f.code])], ctx.out.out));
      lines.push('Failed keys were left exactly as they were; fix the cause and run again.');
      const locked = report.failed.filter((f) => f.code === 'LOCKED').length;
      if (locked > 0) {
        lines.push(
          `${formatCount(locked)} key(s) were held locked by another transaction for the whole wait (LOCKED): they are ` +
            "still on their old KEK version. Run 'keyfold kek rotate' again once that transaction ends; do not retire " +
            'the old version or remove it from the provider before a run reports no failures.',
        );
      }
    }
    if (report.aborted) lines.push('', 'Interrupted: the batches done are saved; run the command again to resume.');
    else if (dryRun) lines.push('', 'Dry run: nothing was written.');
    else if (ok) lines.push('', report.rewrapped === 0 ? 'Nothing to do: every key is on the target version.' : 'Every key is on the target version.');
    return lines.join('\n');
  });
  if (report.aborted) return ExitCode.INTERRUPTED;
  return ok ? undefined : exitCodeForFailedKeys(report.failed.map((f) => f.code));
}
