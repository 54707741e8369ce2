/**
 * `keyfold rewrap --table T --column C [--id-column ID] --database-url URL [--check]`: the envelopes of a database
 * column moved to the provider's active KEK version by `@keyfold/rotation`'s `rewrapEnvelopes` (verified before each
 * compare-and-swap write, batch by batch), or counted by `checkEnvelopes` (headers only, nothing written). Rows under
 * another key (tenant envelopes) are counted and left alone. A progress bar on a terminal; Ctrl-C stops between
 * batches. The counts per KEK version the run leaves are recorded in the audit log.
 * @module
 */
import type { CheckEnvelopesReport, RewrapEnvelopesReport } from '@keyfold/rotation';
import type { CommandContext } from '../command.js';
import { formatCount, formatFields, formatTable, printable } from '../output.js';
import { ProgressBar, withInterrupt } from '../progress.js';
import { concurrencyFor, intOption, requiredOption, withStoreAndProvider } from '../store.js';
import { databaseError, openTable, parseDatabaseUrl } from './rewrap-database.js';
import { exitStatus, recordRun } from './rewrap-audit.js';

type Failure = { readonly id: string | number; readonly code: string };

function render(
  ctx: CommandContext,
  check: boolean,
  r: { source: string; target: string; scanned: number; rewrapped: number; current: number; stale: number; foreign: number; failed: readonly Failure[]; aborted: boolean; durationMs: number },
): string {
  const s = ctx.out.out;
  const rows: [string, string][] = [
    ['source', printable(r.source)],
    ['target', printable(r.target)],
    ['rows read', formatCount(r.scanned)],
  ];
  if (check) rows.push(['not current', formatCount(r.stale)]);
  else rows.push(['re-wrapped', formatCount(r.rewrapped)]);
  rows.push(['already current', formatCount(r.current)], ['other keys', `${formatCount(r.foreign)} (tenant keys or another KEK: left as they are)`]);
  rows.push(['failed', formatCount(r.failed.length)], ['duration', `${r.durationMs.toFixed(0)} ms`]);
  const lines = [formatFields(rows, s)];
  if (r.failed.length > 0) {
    lines.push('', formatTable([['row', 'error'], ...r.failed.slice(0, 50).map((f) => [printable(String(f.id)), f.code])], s));
    if (r.failed.length > 50) lines.push(`... and ${formatCount(r.failed.length - 50)} more (--json lists all)`);
    lines.push('Failed rows were left exactly as they were.');
  }
  if (r.aborted) lines.push('', 'Interrupted: the batches done are written; run the command again for the rest.');
  else if (check) {
    lines.push(
      '',
      r.stale > 0
        ? `${formatCount(r.stale)} row(s) are not on the active version: run it again without --check. Nothing was written.`
        : 'Every envelope is on the active version. Nothing was written.',
    );
  }
  return lines.join('\n');
}

/** Runs the table form of `keyfold rewrap`. */
export async function runTable(ctx: CommandContext, table: string, check: boolean): Promise<number | undefined> {
  const column = requiredOption(ctx, 'column', 'C (the envelope column of --table)');
  const idColumn = ctx.args.string('id-column') ?? 'id';
  const url = requiredOption(ctx, 'database-url', 'URL (postgres://... or sqlite:PATH)');
  const batchSize = intOption(ctx, 'batch-size', 1, 10_000) ?? 500;
  const target = parseDatabaseUrl(url, ctx.env, ctx.cwd, ctx.name);
  const what = { table, column, idColumn };
  return withStoreAndProvider(ctx, async (session) => {
    const { checkEnvelopes, rewrapEnvelopes } = await import('@keyfold/rotation');
    const { provider, loaded } = session;
    const opened = await openTable(target, what, check);
    try {
      const bar = new ProgressBar(ctx, check ? 'checking' : 're-wrapping');
      // The bar needs a total: one header-only pass first, on a terminal only.
      const total = bar.enabled ? (await checkEnvelopes({ source: opened.source, to: provider })).scanned : 0;
      let checked: CheckEnvelopesReport | undefined;
      let rewrapped: RewrapEnvelopesReport | undefined;
      try {
        await withInterrupt(ctx, async (signal) => {
          if (check) {
            checked = await checkEnvelopes({
              source: opened.source,
              to: provider,
              batchSize,
              signal,
              onProgress: (p) => bar.update({ total, done: p.scanned, failed: 0, elapsedMs: p.elapsedMs }),
            });
          } else {
            rewrapped = await rewrapEnvelopes({
              source: opened.source,
              to: provider,
              batchSize,
              concurrency: concurrencyFor(ctx, provider),
              skipForeign: true,
              securityMode: loaded.securityMode,
              signal,
              onProgress: (p) => bar.update({ total, done: p.scanned, failed: p.failed, elapsedMs: p.elapsedMs }),
            });
            // What the run left, per KEK version, for the audit entry (headers only).
            if (!rewrapped.aborted) checked = await checkEnvelopes({ source: opened.source, to: provider, batchSize });
          }
        });
      } finally {
        bar.finish();
      }
      const main = (rewrapped ?? checked) as RewrapEnvelopesReport | CheckEnvelopesReport;
      const r = {
        source: `${target.display}#${table}.${column}`,
        target: `${main.target.kind}:${main.target.keyId} v${main.target.version}`,
        scanned: main.scanned,
        rewrapped: rewrapped?.rewrapped ?? 0,
        current: rewrapped?.skipped ?? checked?.current ?? 0,
        stale: rewrapped === undefined ? (checked?.stale ?? 0) : 0,
        foreign: rewrapped?.foreign ?? checked?.foreign ?? 0,
        failed: [...main.failed].map((f) => ({ id: f.id, code: f.code })),
        aborted: main.aborted,
        durationMs: main.durationMs,
      };
      const audit = await recordRun(ctx, session, {
        check,
        subject: `table:${r.source}`.slice(0, 1024),
        source: { kind: 'table', database: target.display, table, column, idColumn },
        target: main.target,
        counts: { scanned: r.scanned, rewrapped: r.rewrapped, current: r.current, stale: r.stale, foreign: r.foreign, failed: r.failed.length },
        versions: { ...(checked?.versions ?? {}) },
        aborted: r.aborted,
      });
      const failedCodes = r.failed.map((f) => f.code);
      const ok = failedCodes.length === 0 && !r.aborted && audit.recorded && r.stale === 0;
      ctx.out.result({ ok, check, ...r, target: main.target, versions: checked?.versions ?? {}, audit }, () => render(ctx, check, r));
      return exitStatus({ aborted: r.aborted, failedCodes, stale: r.stale, audit });
    } catch (err) {
      throw databaseError(err, target, what);
    } finally {
      await opened.close();
    }
  });
}
