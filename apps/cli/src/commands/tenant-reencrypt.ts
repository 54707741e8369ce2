/**
 * `keyfold tenant rotate --tenant ID --reencrypt FILE... | DIR... -r | --stdin-list | --table T --column C
 * --database-url URL`: a tenant's "rotate my key" with shredding, by `@keyfold/rotation`'s `reencryptTenant`. The
 * tenant's key is rotated (or an unfinished run resumed), every envelope of the tenant in the files and the table
 * given is re-wrapped under the new version (bodies untouched), and the old version(s) are destroyed only when none
 * failed and none is left under them. Each file and failed row is reported; the old versions survive any failure.
 * @module
 */
import type { ReencryptTenantReport, TenantSourceReport } from '@keyfold/rotation';
import type { CommandContext } from '../command.js';
import { ExitCode, UsageError, exitCodeForFailedKeys } from '../exit-codes.js';
import { formatCount, formatFields, formatTable, printable } from '../output.js';
import { withInterrupt } from '../progress.js';
import { intOption, withStoreAndProvider } from '../store.js';
import { databaseError, openTable, parseDatabaseUrl, type OpenTable } from './rewrap-database.js';
import { collectFiles, type FileOutcome } from './rewrap-files.js';
import { pathsOf } from './rewrap.js';
import { tenantFiles, type TenantFiles } from './tenant-files.js';

const DEFAULT_SETTLE_SECONDS = 60;

type TableReport = Omit<TenantSourceReport, 'failed'> & { readonly failed: readonly { readonly id: string; readonly code: string }[] };

function render(ctx: CommandContext, id: string, report: ReencryptTenantReport, files: readonly FileOutcome[], tables: readonly TableReport[]): string {
  const s = ctx.out.out;
  const lines: string[] = [];
  if (files.length > 0) {
    const rows = files.map((o) => {
      const was = (o.versions ?? []).map(printable).join(', ');
      const detail =
        o.status === 'rewrapped'
          ? `${was} -> v${report.version}`
          : o.status === 'failed'
            ? `${o.code ?? 'INTERNAL'}: ${printable(o.reason ?? '')}`
            : o.status === 'current'
              ? was
              : printable(o.reason ?? '');
      return [o.status, printable(o.path), detail];
    });
    lines.push(formatTable([['status', 'file', 'detail'], ...rows], s), '');
  }
  for (const t of tables) {
    lines.push(
      formatFields(
        [
          ['table', printable(t.source)],
          ['re-encrypted', formatCount(t.rewrapped)],
          ['already current', formatCount(t.current)],
          ['other keys', `${formatCount(t.foreign)} (left as they are)`],
          ['failed', formatCount(t.failed.length)],
          ['left on an old version', formatCount(t.remaining)],
        ],
        s,
      ),
    );
    if (t.failed.length > 0) lines.push(formatTable([['row', 'error'], ...t.failed.slice(0, 50).map((f) => [printable(f.id), f.code])], s));
    if (t.failed.length > 50) lines.push(`... and ${formatCount(t.failed.length - 50)} more (--json lists all)`);
    lines.push('');
  }
  const how = report.rotated ? `rotated to key version ${report.version}` : `key version ${report.version} (resumed: not rotated again)`;
  lines.push(`Tenant ${printable(id)}: ${how}.`);
  if (report.complete) {
    lines.push(
      report.destroyed.length > 0
        ? `Destroyed old key version(s) ${report.destroyed.join(', ')}: every envelope given is on version ${report.version}; what only the old version(s) opened can never be opened again.`
        : `Every envelope given is on version ${report.version}; no old key version was left to destroy.`,
    );
  } else if (report.aborted) {
    lines.push(`Interrupted: old key version(s) ${report.kept.join(', ')} kept. Run the same command again to continue (no new version is made).`);
  } else {
    lines.push(
      `Old key version(s) ${report.kept.join(', ')} kept: some envelopes failed or are still under them (listed above), and nothing was lost. ` +
        'Fix them (or remove what is no longer needed) and run the same command again: it resumes without rotating again.',
    );
  }
  return lines.join('\n');
}

/** Runs `tenant rotate --reencrypt`. */
export async function runReencrypt(ctx: CommandContext, id: string): Promise<number | undefined> {
  const paths = await pathsOf(ctx);
  const table = ctx.args.string('table');
  const tableOnly = ['column', 'id-column', 'database-url'].filter((o) => ctx.args.string(o) !== undefined);
  if (table === undefined && tableOnly.length > 0) throw new UsageError(`--${tableOnly[0] ?? ''} needs --table`, ctx.name);
  if (paths.length === 0 && table === undefined) {
    throw new UsageError(
      "name where the tenant's envelopes are (FILE..., DIR... --recursive, --stdin-list, or --table T --column C --database-url URL): " +
        'the old key version is destroyed afterwards, so every envelope under it must be re-encrypted first',
      ctx.name,
    );
  }
  const settle = intOption(ctx, 'settle', 0, 86_400) ?? DEFAULT_SETTLE_SECONDS;
  const batchSize = intOption(ctx, 'batch-size', 1, 10_000) ?? 500;
  let db: { target: ReturnType<typeof parseDatabaseUrl>; what: { table: string; column: string; idColumn: string } } | undefined;
  if (table !== undefined) {
    const column = ctx.args.string('column');
    const url = ctx.args.string('database-url');
    if (column === undefined || column === '') throw new UsageError('--column C (the envelope column of --table) is required', ctx.name);
    if (url === undefined || url === '') throw new UsageError('--database-url URL (postgres://... or sqlite:PATH) is required', ctx.name);
    db = { target: parseDatabaseUrl(url, ctx.env, ctx.cwd, ctx.name), what: { table, column, idColumn: ctx.args.string('id-column') ?? 'id' } };
  }
  const items = paths.length > 0 ? await collectFiles(paths, { cwd: ctx.cwd, recursive: ctx.args.flag('recursive'), command: ctx.name }) : [];

  return withStoreAndProvider(ctx, async ({ store, provider, actor, loaded }) => {
    const [keystore, { reencryptTenant }] = await Promise.all([import('@keyfold/keystore'), import('@keyfold/rotation')]);
    const { openTenantKeys } = keystore;
    try {
      const check: (value: unknown) => void = keystore.assertTenantId;
      check(id);
    } catch (err) {
      throw new UsageError((err as Error).message, ctx.name);
    }
    const tenantKeys = await openTenantKeys({ store, provider, actor, securityMode: loaded.securityMode });
    let opened: OpenTable | undefined;
    try {
      const files: TenantFiles | undefined = items.length > 0 ? await tenantFiles(items, id) : undefined;
      if (db) opened = await openTable(db.target, db.what, false);
      const sources = [...(files ? [files.source] : []), ...(opened ? [opened.source] : [])];
      let report: ReencryptTenantReport;
      try {
        report = await withInterrupt(ctx, (signal) =>
          reencryptTenant({
            tenantKeys,
            tenant: id,
            sources,
            batchSize,
            // Tenant keys are local: one at a time is fastest unless asked otherwise.
            concurrency: intOption(ctx, 'concurrency', 1, 1024) ?? 1,
            // A file that could not be looked at may hold an envelope under the old version: keep it then.
            destroyOld: files?.blocked !== true,
            settleMs: settle * 1000,
            signal,
            securityMode: loaded.securityMode,
          }),
        );
      } catch (err) {
        throw db ? databaseError(err, db.target, db.what) : err;
      }
      const fileOutcomes = files ? files.outcomes(report.sources[0], report.version) : [];
      const tableName = db ? `${db.target.display}#${db.what.table}.${db.what.column}` : '';
      const tables: TableReport[] = opened
        ? report.sources.slice(files ? 1 : 0).map((t) => ({ ...t, source: tableName, failed: t.failed.map((f) => ({ id: String(f.id), code: f.code })) }))
        : [];
      const failedCodes = [
        ...fileOutcomes.filter((o) => o.status === 'failed').map((o) => o.code ?? 'INTERNAL'),
        ...tables.flatMap((t) => t.failed.map((f) => f.code)),
      ];
      const result = {
        ok: report.complete,
        action: 'reencrypted',
        id,
        version: report.version,
        rotated: report.rotated,
        resumed: report.resumed,
        destroyed: report.destroyed,
        kept: report.kept,
        complete: report.complete,
        aborted: report.aborted,
        files: fileOutcomes,
        tables,
      };
      ctx.out.result(result, () => render(ctx, id, report, fileOutcomes, tables));
      if (report.aborted) return ExitCode.INTERRUPTED;
      if (report.complete) return undefined;
      const left = tables.reduce((n, t) => n + t.remaining, 0) + fileOutcomes.filter((o) => o.status === 'stale').length;
      const code = failedCodes[0];
      ctx.out.note(
        `keyfold: key version(s) ${report.kept.join(', ')} of tenant ${id} kept: ${failedCodes.length} envelope(s) failed, ${left} left on an old version` +
          (code === undefined ? '' : ` [${code}]`),
      );
      return failedCodes.length > 0 ? exitCodeForFailedKeys(failedCodes) : ExitCode.FAILURE;
    } finally {
      await opened?.close();
      await tenantKeys.close();
    }
  });
}
