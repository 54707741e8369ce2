/**
 * `keyfold audit list` and `keyfold audit verify`: the key store's audit log, hash-chained and MAC'd under the
 * installation's audit key. `audit list` and `audit verify --unkeyed` need no key access; `audit verify` opens the
 * KEK provider to check the MACs. Read-only (apart from keying a log written before keying existed).
 * @module
 */
import type { CommandContext } from '../command.js';
import { ExitCode } from '../exit-codes.js';
import { formatFields, formatTable, printable } from '../output.js';
import { intOption, withStore, withStoreAndProvider } from '../store.js';

async function list(ctx: CommandContext): Promise<void> {
  const after = intOption(ctx, 'after', 0, Number.MAX_SAFE_INTEGER);
  const limit = intOption(ctx, 'limit', 1, 100_000) ?? 100;
  const event = ctx.args.string('event');
  const subject = ctx.args.string('subject');
  const { entries, head } = await withStore(ctx, async ({ store }) => ({
    entries: await store.listAudit({
      limit,
      ...(after === undefined ? {} : { after }),
      ...(event === undefined ? {} : { event }),
      ...(subject === undefined ? {} : { subject }),
    }),
    head: await store.auditHead(),
  }), 'read');
  ctx.out.result({ entries, head }, () => {
    if (entries.length === 0) return 'No audit entries match.';
    const details = (d: Readonly<Record<string, unknown>>): string => {
      const text = Object.entries(d)
        .map(([k, v]) => `${k}=${Array.isArray(v) ? `[${v.length}]` : v !== null && typeof v === 'object' ? JSON.stringify(v) : String(v as string | number | boolean | null)}`)
        .join(' ');
      return printable(text.length > 80 ? `${text.slice(0, 79)}…` : text);
    };
    return formatTable(
      [
        ['seq', 'time', 'actor', 'event', 'subject', 'details'],
        ...entries.map((e) => [String(e.seq), e.time, printable(e.actor), printable(e.event), printable(e.subject), details(e.details)]),
      ],
      ctx.out.out,
      [0],
    );
  });
}

async function verify(ctx: CommandContext): Promise<number | undefined> {
  const unkeyed = ctx.args.flag('unkeyed');
  // Keyed (default): the provider opens the audit key (withStoreAndProvider -> ensureInstallLock), so the MACs are
  // checked. Unkeyed: no key access, the hash chain only.
  const v = unkeyed ? await withStore(ctx, ({ store }) => store.verifyAudit(), 'read') : await withStoreAndProvider(ctx, ({ store }) => store.verifyAudit(), 'read');
  const scope = v.keyed ? { keyed: true, installation: v.installation ?? null, keyedFrom: v.keyedFrom ?? null } : { keyed: false };
  if (!v.ok) {
    const p = v.problem;
    if (ctx.out.json) {
      // Scripts get the report (which entry, what kind) with the error code; exit 3 all the same.
      ctx.out.result({ ok: false, ...scope, entries: v.entries, head: v.head, problem: p ?? null, error: { code: 'INTEGRITY_FAILED' } }, () => '');
      return ExitCode.INTEGRITY;
    }
    const { IntegrityError } = await import('@keyfold/keystore');
    throw new IntegrityError(
      `the audit log does not verify: ${p?.kind ?? 'problem'} at entry #${p?.seq ?? '?'}: ${p?.message ?? ''} ` +
        `(${v.entries} entries checked${v.keyed ? ' with the audit key' : ', hash chain only'})`,
    );
  }
  ctx.out.result({ ok: true, ...scope, entries: v.entries, head: v.head }, () => {
    const rows: [string, string][] = [
      ['entries', String(v.entries)],
      ['head', `#${v.head.seq} ${v.head.hash}`],
    ];
    if (v.keyed) {
      rows.push(['head mac', v.head.mac ?? '-'], ['installation', printable(v.installation ?? '-')], ['keyed from', `#${v.keyedFrom ?? '?'}`]);
    }
    const lines = [formatFields(rows, ctx.out.out), ''];
    if (v.keyed) {
      lines.push("Every entry's MAC, the hash chain and the head's MAC verify under this installation's audit key.");
      if ((v.keyedFrom ?? 1) > 1) {
        lines.push(`Entries #1-#${(v.keyedFrom ?? 1) - 1} were written before the log was keyed: they are covered by the hash chain that entry #${v.keyedFrom ?? '?'} anchors.`);
      }
      lines.push('A whole store put back to an older copy is not detectable from inside it: keep the head MAC elsewhere to compare.');
    } else {
      lines.push('UNKEYED: the hash chain is intact, but a writer who rewrites the log and its head together passes this check.');
      lines.push("Run 'keyfold audit verify' (with key access) to check the MACs.");
    }
    return lines.join('\n');
  });
  return undefined;
}

export async function run(ctx: CommandContext): Promise<number | undefined> {
  if (ctx.name === 'audit verify') return verify(ctx);
  await list(ctx);
  return undefined;
}
