/**
 * Readiness of a KEK version for a rotation, as `kek verify --target` and `kek rotate` show it: the probe made here
 * and the live registered processes that have not loaded the version (host, pid, start time, loaded versions).
 * Rendering only: the check itself is `checkReadiness` of `@keyfold/rotation`.
 * @module
 */
import type { ProcessRecord } from '@keyfold/keystore';
import type { ReadinessReport } from '@keyfold/rotation';
import type { CommandContext } from '../command.js';
import { CliError, ExitCode, UsageError } from '../exit-codes.js';
import { formatCount, formatFields, formatTable, printable } from '../output.js';

const VERSION = /^[A-Za-z0-9._:/-]{1,256}$/;

/** A KEK version option (`--target`, `--from-version`, `--to-version`). @throws UsageError naming the option. */
export function versionOption(ctx: CommandContext, name: string): string | undefined {
  const v = ctx.args.string(name);
  if (v === undefined) return undefined;
  if (!VERSION.test(v)) throw new UsageError(`--${name} must be a KEK version (1-256 of A-Z a-z 0-9 . _ : / -); got ${JSON.stringify(v)}`, ctx.name);
  return v;
}

const PROBE_TEXT: Record<ReadinessReport['probe']['method'], string> = {
  'wrap-unwrap': 'a throwaway key wrapped under it and unwrapped again',
  'unwrap-existing': 'a stored key under it unwrapped (it is not the version this provider writes with, so it cannot wrap a new key)',
  'loaded-only': 'the provider has loaded it; no stored key is under it to unwrap (it is not the version this provider writes with)',
  'not-loaded': "this host's provider has not loaded it",
};

/** A process registry record as `--json` prints it (`kek verify --target`, `kek rotate`, `status`). */
export function processJson(p: ProcessRecord): Omit<ProcessRecord, 'id' | 'registeredAt'> {
  return {
    host: p.host,
    pid: p.pid,
    startedAt: p.startedAt,
    label: p.label,
    kind: p.kind,
    keyId: p.keyId,
    versions: [...p.versions],
    refreshedAt: p.refreshedAt,
    expiresAt: p.expiresAt,
  };
}

/** The readiness report as JSON fields (no key material: ids, hosts, pids, versions). */
export function readinessJson(r: ReadinessReport): Record<string, unknown> {
  return {
    ready: r.ready,
    target: r.target,
    probe: r.probe,
    processes: {
      live: r.processes.live,
      notReady: r.processes.notReady.map(processJson),
    },
  };
}

/** The readiness report as text: the fields, then the processes not ready. */
export function readinessText(ctx: CommandContext, r: ReadinessReport): string {
  const t = r.target;
  const rows: [string, string][] = [
    ['target', printable(`${t.kind}:${t.keyId} v${t.version}`)],
    ['probe here', `${r.probe.ok ? 'ok' : `FAILED${r.probe.code === undefined ? '' : ` (${r.probe.code})`}`}: ${PROBE_TEXT[r.probe.method]}`],
    [
      'processes',
      `${formatCount(r.processes.live)} live registered (this command not counted), ` +
        `${r.processes.notReady.length === 0 ? 'every one has loaded it' : `${formatCount(r.processes.notReady.length)} have not loaded it`}`,
    ],
  ];
  const lines = [formatFields(rows, ctx.out.out)];
  if (r.processes.notReady.length > 0) {
    lines.push(
      '',
      formatTable(
        [
          ['host', 'pid', 'started', 'process', 'versions loaded'],
          ...r.processes.notReady.map((p) => [
            printable(p.host),
            String(p.pid),
            p.startedAt,
            printable(p.label),
            p.kind === t.kind && p.keyId === t.keyId ? printable(p.versions.join(', ')) || '-' : printable(`another KEK: ${p.kind}:${p.keyId}`),
          ]),
        ],
        ctx.out.out,
        [1],
      ),
    );
  }
  return lines.join('\n');
}

/** The NOT_READY failure for a report, one line naming what is missing. */
export function notReadyError(r: ReadinessReport, hint: string): CliError {
  const parts: string[] = [];
  if (!r.probe.ok) parts.push(r.probe.method === 'not-loaded' ? "this host's provider has not loaded it" : `it does not work here (${r.probe.code ?? 'probe failed'})`);
  const n = r.processes.notReady.length;
  if (n > 0) {
    const list = r.processes.notReady
      .slice(0, 3)
      .map((p) => `${p.host} pid ${p.pid}`)
      .join(', ');
    parts.push(`${n} live process(es) have not loaded it (${list}${n > 3 ? ', ...' : ''})`);
  }
  return new CliError('NOT_READY', `KEK version ${r.target.version} is not ready: ${parts.join('; ')}; ${hint}`);
}

/**
 * Reports a target that is not ready: the report (text on stdout, or one JSON document with the error inside it)
 * and the coded line. @returns exit status 1.
 */
export function reportNotReady(ctx: CommandContext, r: ReadinessReport, hint: string): number {
  const err = notReadyError(r, hint);
  if (ctx.out.json) {
    ctx.out.result({ ok: false, error: { code: err.code, message: err.message }, ...readinessJson(r) }, () => '');
  } else {
    ctx.out.result(null, () => readinessText(ctx, r));
    ctx.out.error(err);
  }
  return ExitCode.FAILURE;
}
