/**
 * `keyfold audit list` and `keyfold audit verify`: the key store's hash-chained audit log. Read-only.
 * @module
 */
import type { CommandContext } from '../command.js';
import { ExitCode } from '../exit-codes.js';
import { formatFields, formatTable, printable } from '../output.js';
import { intOption, withStore } from '../store.js';

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
  const v = await withStore(ctx, ({ store }) => store.verifyAudit(), 'read');
  if (!v.ok) {
    const p = v.problem;
    if (ctx.out.json) {
      // Scripts get the report (which entry, what kind) with the error code; exit 3 all the same.
      ctx.out.result({ ok: false, entries: v.entries, head: v.head, problem: p ?? null, error: { code: 'INTEGRITY_FAILED' } }, () => '');
      return ExitCode.INTEGRITY;
    }
    const { IntegrityError } = await import('@keyfold/keystore');
    throw new IntegrityError(
      `the audit log does not verify: ${p?.kind ?? 'problem'} at entry #${p?.seq ?? '?'}: ${p?.message ?? ''} ` +
        `(${v.entries} entries checked)`,
    );
  }
  ctx.out.result({ ok: true, entries: v.entries, head: v.head }, () =>
    [
      formatFields(
        [
          ['entries', String(v.entries)],
          ['head', `#${v.head.seq} ${v.head.hash}`],
        ],
        ctx.out.out,
      ),
      '',
      'The hash chain is intact. Keep the head elsewhere to detect a rewritten tail later.',
    ].join('\n'),
  );
  return undefined;
}

export async function run(ctx: CommandContext): Promise<number | undefined> {
  if (ctx.name === 'audit verify') return verify(ctx);
  await list(ctx);
  return undefined;
}
