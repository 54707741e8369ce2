/**
 * `keyfold kek retire --kek-version V`: retires a KEK version of the installation's KEK once nothing in the key store
 * references it. Envelopes outside the store (files, database columns sealed directly under the KEK) are invisible
 * to the store: before retiring, it warns with the counts the latest recorded `keyfold rewrap` / `rewrap --check`
 * run of each source saw under V (rewrap-audit.ts), or says that none was ever recorded. The refusal while stored
 * keys or the audit key reference V is the store's.
 * @module
 */
import type { CommandContext } from '../command.js';
import { formatCount, formatFields, printable } from '../output.js';
import { requiredOption, withStoreAndProvider } from '../store.js';
import { knownEnvelopesUnder, type KnownEnvelopes } from './rewrap-audit.js';

/** The warning about envelopes outside the store, for stderr. */
function envelopeWarning(known: KnownEnvelopes, version: string): string {
  const v = printable(version);
  if (!known.recorded) {
    return (
      `warning: no 'keyfold rewrap' or 'keyfold rewrap --check' run was ever recorded in this store, so envelopes sealed ` +
      `directly under the KEK (files, database columns) may still need version ${v}: check them with 'keyfold rewrap ` +
      `--check' before you remove the version from the provider.`
    );
  }
  if (known.total === 0) {
    return `The latest recorded envelope checks (${formatCount(known.sources.length)} source(s)) found no envelope under version ${v}.`;
  }
  const lines = [`warning: ${formatCount(known.total)} envelope(s) outside the key store were last seen under KEK version ${v}:`];
  for (const s of known.sources.filter((x) => x.count > 0)) {
    lines.push(`  ${formatCount(s.count)} in ${printable(s.subject)} (${s.event === 'envelopes.check' ? 'check' : 'rewrap'} of ${s.time})`);
  }
  lines.push(`They cannot be opened without version ${v}: re-wrap them ('keyfold rewrap') before you remove it from the provider.`);
  return lines.join('\n');
}

export async function run(ctx: CommandContext): Promise<number | undefined> {
  const version = requiredOption(ctx, 'kek-version', 'V (the version to retire)');
  // With the provider: the kek.retire entry is MAC'd under the audit key (a keyed log refuses keyless writes).
  const { rec, known } = await withStoreAndProvider(ctx, async ({ store, loaded, actor }) => {
    const { retireKekVersion } = await import('@keyfold/rotation');
    const lock = await store.getInstallLock();
    const kek = { kind: lock?.kind ?? loaded.config.provider.kind, keyId: lock?.keyId ?? loaded.config.provider.keyId, version };
    // Printed before the store decides, so the operator sees it also when retiring is refused.
    const envelopes = await knownEnvelopesUnder(store, kek);
    ctx.out.note(envelopeWarning(envelopes, version));
    return { rec: await retireKekVersion({ store, kek, actor }), known: envelopes };
  });
  const envelopes = { recorded: known.recorded, total: known.total, sources: known.sources };
  const result = { ok: true, kind: rec.kind, keyId: rec.keyId, version: rec.version, state: rec.state, retiredAt: rec.retiredAt ?? null, envelopes };
  ctx.out.result(result, () =>
    [
      `Retired KEK version ${printable(rec.version)}`,
      '',
      formatFields([['kek', printable(`${rec.kind}:${rec.keyId}`)], ['retired at', rec.retiredAt ?? '-']], ctx.out.out),
      '',
      known.total > 0
        ? 'Nothing in the key store needs it any more, but the envelopes above do: re-wrap them before you remove it from the provider.'
        : 'Nothing in the key store needs it any more: remove it from the provider when you are ready.',
    ].join('\n'),
  );
  return undefined;
}
