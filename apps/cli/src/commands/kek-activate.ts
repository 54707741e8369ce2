/**
 * `keyfold kek activate --kek-version V`: moves the key store's pointer, the version every process that opens the
 * store seals and wraps under, to V: a newer version once every host has it, or an older one that is not retired
 * (rollback). Audited `kek.activate` with from and to.
 *
 * A version the store does not know yet is registered first when this host's provider has loaded it (the env
 * provider's versions are variables, so the first host that has `KEYFOLD_KEK_V3` can activate it), after a round trip
 * under it proves it works here. A version neither registered nor loaded here is refused (KEY_NOT_FOUND), as is a
 * retired one (KEY_VERSION_RETIRED); nothing changes then.
 * @module
 */
import { ProviderError } from '@keyfold/envelope-core';
import type { CommandContext } from '../command.js';
import { UsageError } from '../exit-codes.js';
import { formatFields, printable } from '../output.js';
import { requiredOption, withStoreAndProvider } from '../store.js';

/** Versions as providers name them: numbers, Azure's hex ids, Cloud KMS numbers, labels; never control characters. */
const VERSION = /^[A-Za-z0-9._:-]{1,256}$/;

export async function run(ctx: CommandContext): Promise<number | undefined> {
  const version = requiredOption(ctx, 'kek-version', 'V (the version to activate)');
  if (!VERSION.test(version)) {
    throw new UsageError(`--kek-version must be 1-256 characters of A-Z a-z 0-9 . _ : -; got ${JSON.stringify(printable(version))}`, ctx.name);
  }
  const outcome = await withStoreAndProvider(ctx, async ({ store, provider, actor, loaded }) => {
    const cfg = loaded.config.provider;
    const kek = { kind: cfg.kind, keyId: cfg.keyId, version };
    const description = await provider.describe();
    const loadedHere = description.versions.includes(version);
    const registered = (await store.listKekVersions({ kind: cfg.kind, keyId: cfg.keyId })).find((v) => v.version === version);
    if (registered === undefined) {
      if (!loadedHere) {
        throw new ProviderError(
          'KEY_NOT_FOUND',
          `KEK version ${printable(version)} of ${printable(`${cfg.kind}:${cfg.keyId}`)} is neither registered in the key store nor ` +
            `loaded by this host's provider (versions here: ${description.versions.map(printable).join(', ')}): add it first ` +
            "('keyfold kek add', or the provider's own way), then activate it. Nothing was changed.",
        );
      }
      // Prove the version works here before any host is told to write under it.
      const probe = await (provider.withWriteVersion?.(version) ?? provider).probe();
      if (!probe.ok) {
        throw new ProviderError(
          (probe.error?.code as 'KEY_NOT_FOUND' | undefined) ?? 'KEY_NOT_FOUND',
          `KEK version ${printable(version)} does not round-trip here: ${printable(probe.error?.message ?? 'unknown error')}. Nothing was changed.`,
        );
      }
      await store.recordKekVersion(kek, { activate: false, actor });
    }
    const activation = await store.activateKekVersion(kek, actor);
    return { activation, loadedHere };
  });
  const { activation, loadedHere } = outcome;
  const rec = activation.record;
  const from = activation.from ?? null;
  const result = { ok: true, kind: rec.kind, keyId: rec.keyId, from, to: rec.version, changed: activation.changed, loadedHere };
  ctx.out.result(result, () => {
    const headline = activation.changed
      ? `Activated KEK version ${printable(rec.version)}: ${printable(from ?? 'none')} → ${printable(rec.version)}`
      : `KEK version ${printable(rec.version)} is already the active version: nothing changed`;
    const rows: [string, string][] = [
      ['kek', printable(`${rec.kind}:${rec.keyId}`)],
      ['from', printable(from ?? '-')],
      ['to', printable(rec.version)],
    ];
    const lines = [headline, '', formatFields(rows, ctx.out.out), ''];
    lines.push(
      'Every process that opens this key store now seals and wraps under it (running library processes within their ' +
        'pointer refresh interval); hosts that have not loaded it refuse to seal (KEY_NOT_FOUND) and still open older envelopes.',
    );
    if (!loadedHere) lines.push(`This host has not loaded version ${printable(rec.version)}: it refuses to seal until it does.`);
    if (activation.changed) lines.push("Next: 'keyfold kek rotate' re-wraps the key store's keys under it.");
    return lines.join('\n');
  });
  return undefined;
}
