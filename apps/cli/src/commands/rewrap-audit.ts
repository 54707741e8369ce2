/**
 * The audit entries `keyfold rewrap` writes (one per run: `envelopes.rewrap`, or `envelopes.check` for `--check`)
 * and what `keyfold kek retire` reads back from them: how many envelopes outside the key store were last seen under a
 * KEK version. The key store's existing audit log holds them; no schema of its own.
 *
 * Security rule: an entry names the source (directories and files given, or the table and column, with any database
 * password removed) and counts per KEK version, never an envelope's content or context.
 * @module
 */
import type { KekRef, KeyStore } from '@keyfold/keystore';
import type { CommandContext } from '../command.js';
import { ExitCode, errorCodeFor, exitCodeForFailedKeys } from '../exit-codes.js';
import type { StoreSession } from '../store.js';

export const REWRAP_EVENT = 'envelopes.rewrap';
export const CHECK_EVENT = 'envelopes.check';

/** `kind:keyId@version`, as `@keyfold/keystore`'s `kekName` (kept here to avoid loading the store for a name). */
export function kekLabel(kek: { readonly kind: string; readonly keyId: string; readonly version: string }): string {
  return `${kek.kind}:${kek.keyId}@${kek.version}`;
}

/** One run of `keyfold rewrap`, as recorded. */
export interface EnvelopeRun {
  readonly check: boolean;
  /** Identity of the source (`files:/srv/blobs`, `table:sqlite:/app.db#documents.body`): the latest run per subject counts. */
  readonly subject: string;
  /** What was read: `{ kind: 'files', roots, files }` or `{ kind: 'table', database, table, column }` (no secrets). */
  readonly source: Readonly<Record<string, string | number | boolean | readonly string[]>>;
  readonly target: KekRef;
  /** Outcome counts (rewrapped, current, stale, tenant, skipped, failed, ...). */
  readonly counts: Readonly<Record<string, number>>;
  /** Envelopes per wrapped key (`kind:keyId@version`) as the run left them. */
  readonly versions: Readonly<Record<string, number>>;
  readonly aborted: boolean;
}

/**
 * Appends the audit entry of one run.
 * @throws the store's errors (the caller reports them: the run itself is done).
 */
export async function recordEnvelopeRun(store: KeyStore, actor: string, run: EnvelopeRun): Promise<void> {
  await store.appendAudit({
    actor,
    event: run.check ? CHECK_EVENT : REWRAP_EVENT,
    subject: run.subject,
    details: {
      source: { ...run.source, ...('roots' in run.source ? { roots: [...(run.source.roots as readonly string[])] } : {}) },
      target: kekLabel(run.target),
      counts: { ...run.counts },
      versions: { ...run.versions },
      aborted: run.aborted,
    },
  });
}

/** One source's latest recorded run and how many envelopes it saw under the version asked about. */
export interface KnownEnvelopeSource {
  readonly subject: string;
  readonly event: string;
  readonly seq: number;
  readonly time: string;
  readonly count: number;
}

/** What the audit log knows about envelopes under one KEK version. */
export interface KnownEnvelopes {
  /** False when no `rewrap` or `rewrap --check` run was ever recorded. */
  readonly recorded: boolean;
  /** The latest run of each source, with the count under the version (0 included). */
  readonly sources: readonly KnownEnvelopeSource[];
  readonly total: number;
}

const PAGE = 1000;

/**
 * Reads every `envelopes.check` / `envelopes.rewrap` entry, keeps the latest per subject, and counts the envelopes
 * each saw under `kek` (kind, key id and version). Interrupted runs are ignored (they saw part of their source).
 * @throws the store's errors.
 */
export async function knownEnvelopesUnder(store: KeyStore, kek: KekRef): Promise<KnownEnvelopes> {
  const name = kekLabel(kek);
  const latest = new Map<string, KnownEnvelopeSource>();
  for (const event of [CHECK_EVENT, REWRAP_EVENT]) {
    for (let after = 0; ; ) {
      const page = await store.listAudit({ event, after, limit: PAGE });
      for (const e of page) {
        // An interrupted run saw only part of its source: the last complete one stands.
        if (e.details.aborted === true) continue;
        const versions = e.details.versions;
        const raw = versions !== null && typeof versions === 'object' && !Array.isArray(versions) ? (versions as Readonly<Record<string, unknown>>)[name] : undefined;
        const count = typeof raw === 'number' && Number.isSafeInteger(raw) && raw >= 0 ? raw : 0;
        const seen = latest.get(e.subject);
        if (seen === undefined || seen.seq < e.seq) latest.set(e.subject, { subject: e.subject, event: e.event, seq: e.seq, time: e.time, count });
      }
      if (page.length < PAGE) break;
      after = (page[page.length - 1] as { seq: number }).seq;
    }
  }
  const sources = [...latest.values()].sort((a, b) => a.seq - b.seq);
  return { recorded: sources.length > 0, sources, total: sources.reduce((s, x) => s + x.count, 0) };
}

/** The outcome of writing the run's audit entry (reported, not thrown: the run itself is done). */
export interface AuditOutcome {
  readonly recorded: boolean;
  readonly event: string;
  readonly code?: string;
}

/** Appends the run's audit entry; a failure is reported on stderr and in the result, and makes the exit status 1. */
export async function recordRun(ctx: CommandContext, session: StoreSession, record: EnvelopeRun): Promise<AuditOutcome> {
  const event = record.check ? 'envelopes.check' : 'envelopes.rewrap';
  try {
    await recordEnvelopeRun(session.store, session.actor, record);
    return { recorded: true, event };
  } catch (err) {
    const code = errorCodeFor(err);
    ctx.out.note(`keyfold: the run could not be recorded in the audit log: ${err instanceof Error ? err.message : String(err)} [${code}]`);
    return { recorded: false, event, code };
  }
}

/**
 * Exit status of a run: 130 interrupted; failures by the exit-code tables (3 when any is an integrity code);
 * 1 when a check found envelopes not on the active version or the audit entry could not be written; else 0.
 */
export function exitStatus(r: { aborted: boolean; failedCodes: readonly string[]; stale: number; audit: AuditOutcome }): number | undefined {
  if (r.aborted) return ExitCode.INTERRUPTED;
  if (r.failedCodes.length > 0) return exitCodeForFailedKeys(r.failedCodes);
  if (r.stale > 0 || !r.audit.recorded) return ExitCode.FAILURE;
  return undefined;
}
