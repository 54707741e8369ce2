/**
 * `keyfold rewrap`: envelopes sealed directly under the installation's KEK, in files (`FILE...`, `DIR... -r`,
 * `--stdin-list`) or in a database column (`--table`), moved to the provider's active KEK version without touching
 * their bodies; `--check` only counts. The store and the provider are opened (and checked against the install lock)
 * first; every run ends with one audit entry (rewrap-audit.ts), written even when some envelopes failed.
 * @module
 */
import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import { createEnvelope } from '@keyfold/envelope-core';
import type { KekRef } from '@keyfold/keystore';
import type { CommandContext } from '../command.js';
import { UsageError } from '../exit-codes.js';
import { readAll } from '../input.js';
import { formatCount, formatFields, formatTable, printable } from '../output.js';
import { withInterrupt } from '../progress.js';
import { withStoreAndProvider, type ProviderSession } from '../store.js';
import { exitStatus, kekLabel, recordRun, type EnvelopeRun } from './rewrap-audit.js';
import { collectFiles, processAll, type FileOutcome, type FileStatus } from './rewrap-files.js';

/** The most paths `--stdin-list` reads (a list is held in memory). */
const MAX_STDIN_LIST_BYTES = 64 * 1024 * 1024;
const STATUSES: readonly FileStatus[] = ['rewrapped', 'current', 'stale', 'tenant', 'skipped', 'failed'];

/** The provider's active version: what "current" means. */
async function targetOf(s: ProviderSession): Promise<KekRef> {
  const d = await s.provider.describe();
  return { kind: s.provider.kind, keyId: s.provider.keyId, version: d.activeVersion };
}

/** The audit subject of a files run: the one root, or a digest of all of them (the roots themselves are in details). */
function filesSubject(roots: readonly string[], stdinList: boolean): string {
  if (!stdinList && roots.length === 1) return `files:${roots[0] ?? ''}`.slice(0, 1024);
  const digest = createHash('sha256').update(JSON.stringify([...roots].sort())).digest('hex').slice(0, 16);
  return `files:${stdinList ? 'stdin-list' : `${roots.length} paths`} #${digest}`;
}

/** Envelope counts per wrapped key as the run leaves them (a re-wrapped file counts under the target). */
function versionsAfter(outcomes: readonly FileOutcome[], target: KekRef): Record<string, number> {
  const versions: Record<string, number> = {};
  for (const o of outcomes) {
    const names = o.status === 'rewrapped' || o.status === 'current' ? [kekLabel(target)] : (o.versions ?? []);
    for (const name of new Set(names)) versions[name] = (versions[name] ?? 0) + 1;
  }
  return versions;
}

/** The paths given: arguments, or one a line on stdin with `--stdin-list`. @throws UsageError for both, or a list too long. */
export async function pathsOf(ctx: CommandContext): Promise<string[]> {
  const given = [...(ctx.positionals ?? []), ...(ctx.rest ?? [])];
  if (!ctx.args.flag('stdin-list')) return given;
  if (given.length > 0) throw new UsageError('give paths either as arguments or with --stdin-list, not both', ctx.name);
  let text: string;
  try {
    text = (await readAll(ctx.stdin, MAX_STDIN_LIST_BYTES)).toString('utf8');
  } catch (err) {
    if (err instanceof RangeError) throw new UsageError(`--stdin-list reads at most ${MAX_STDIN_LIST_BYTES} bytes of paths`, ctx.name);
    throw err;
  }
  return text.split('\n').filter((line) => line !== '');
}

function renderFiles(ctx: CommandContext, check: boolean, target: KekRef, outcomes: readonly FileOutcome[], counts: Record<FileStatus, number>, aborted: boolean): string {
  const s = ctx.out.out;
  const rows = outcomes.map((o) => {
    const was = o.versions === undefined ? '' : o.versions.map(printable).join(', ');
    const detail =
      o.status === 'rewrapped'
        ? `${was} -> v${printable(target.version)}`
        : o.status === 'failed'
          ? `${o.code ?? 'INTERNAL'}: ${printable(o.reason ?? '')}`
          : o.status === 'current' || o.status === 'stale'
            ? was
            : printable(o.reason ?? '');
    return [o.status, printable(o.path), detail];
  });
  const lines: string[] = [];
  if (rows.length > 0) lines.push(formatTable([['status', 'file', 'detail'], ...rows], s), '');
  const fields: [string, string][] = [['target', printable(`${target.kind}:${target.keyId} v${target.version}`)]];
  for (const st of STATUSES) if (counts[st] > 0 || st === (check ? 'stale' : 'rewrapped')) fields.push([check && st === 'stale' ? 'not current' : st, formatCount(counts[st])]);
  lines.push(formatFields(fields, s));
  if (aborted) lines.push('', 'Interrupted: the files not listed were not looked at; run the command again.');
  else if (check) {
    lines.push(
      '',
      counts.stale > 0
        ? `${formatCount(counts.stale)} envelope(s) are not on the active version: run 'keyfold rewrap' without --check. Nothing was written.`
        : 'Every envelope is on the active version (or under a tenant key). Nothing was written.',
    );
  } else if (counts.failed > 0) lines.push('', 'Failed files were left exactly as they were; fix the cause and run again.');
  return lines.join('\n');
}

async function runFiles(ctx: CommandContext, check: boolean): Promise<number | undefined> {
  const paths = await pathsOf(ctx);
  if (paths.length === 0) {
    throw new UsageError('name the envelope files or directories (with --recursive) to re-wrap, or use --stdin-list or --table', ctx.name);
  }
  const items = await collectFiles(paths, { cwd: ctx.cwd, recursive: ctx.args.flag('recursive'), command: ctx.name });
  return withStoreAndProvider(ctx, async (session) => {
    const target = await targetOf(session);
    const envelope = createEnvelope({ providers: [session.provider], policy: { securityMode: session.loaded.securityMode } });
    let run: { outcomes: FileOutcome[]; aborted: boolean };
    try {
      run = await withInterrupt(ctx, (signal) => processAll({ envelope, target, check }, items, signal));
    } finally {
      await envelope.close();
    }
    const { outcomes, aborted } = run;
    const counts = Object.fromEntries(STATUSES.map((st) => [st, outcomes.filter((o) => o.status === st).length])) as Record<FileStatus, number>;
    const roots = paths.map((p) => resolve(ctx.cwd, p));
    const stdinList = ctx.args.flag('stdin-list');
    const record: EnvelopeRun = {
      check,
      subject: filesSubject(roots, stdinList),
      source: { kind: stdinList ? 'stdin-list' : 'files', roots: roots.slice(0, 20), rootCount: roots.length, files: outcomes.length },
      target,
      counts,
      versions: versionsAfter(outcomes, target),
      aborted,
    };
    const audit = await recordRun(ctx, session, record);
    const failedCodes = outcomes.filter((o) => o.status === 'failed').map((o) => o.code ?? 'INTERNAL');
    const ok = failedCodes.length === 0 && !aborted && audit.recorded && (!check || counts.stale === 0);
    ctx.out.result(
      { ok, check, target, files: outcomes, counts, versions: record.versions, aborted, audit },
      () => renderFiles(ctx, check, target, outcomes, counts, aborted),
    );
    return exitStatus({ aborted, failedCodes, stale: check ? counts.stale : 0, audit });
  });
}

export async function run(ctx: CommandContext): Promise<number | undefined> {
  const check = ctx.args.flag('check');
  const table = ctx.args.string('table');
  const tableOnly = ['column', 'id-column', 'database-url', 'batch-size', 'concurrency'].filter((o) => ctx.args.string(o) !== undefined);
  if (table === undefined) {
    if (tableOnly.length > 0) throw new UsageError(`--${tableOnly[0] ?? ''} needs --table`, ctx.name);
    return runFiles(ctx, check);
  }
  const fileOnly = [...(ctx.positionals ?? []), ...(ctx.rest ?? [])].length > 0 || ctx.args.flag('stdin-list') || ctx.args.flag('recursive');
  if (fileOnly) throw new UsageError('--table re-wraps a database column: do not also give files, --stdin-list or --recursive', ctx.name);
  const { runTable } = await import('./rewrap-table.js');
  return runTable(ctx, table, check);
}
