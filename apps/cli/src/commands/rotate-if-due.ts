/**
 * `keyfold rotate --if-due`: the rotation policy, for cron. Adds a KEK version when the active one is older than
 * --max-age (file and pkcs11 providers; others rotate in their service), re-wraps the stored keys once a new
 * version has been active for --grace-period, and otherwise does nothing.
 * @module
 */
import type { KeyProvider } from '@keyfold/envelope-core';
import type { CommandContext } from '../command.js';
import { ExitCode, UsageError } from '../exit-codes.js';
import { formatCount, formatFields, printable } from '../output.js';
import { ProgressBar, withInterrupt } from '../progress.js';
import { concurrencyFor, withStoreAndProvider } from '../store.js';

function numberOption(ctx: CommandContext, name: string, unitMs: number, min: number): number | undefined {
  const raw = ctx.args.string(name);
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n) || n < min) throw new UsageError(`--${name} must be a number >= ${min}; got ${JSON.stringify(raw)}`, ctx.name);
  return n * unitMs;
}

/**
 * `addVersion` for the env provider, which cannot add a version itself: refuses with the variable to set, named
 * with the installation's configured prefix (config.json `provider.prefix`, e.g. `MYAPP_KEK_V3`), never a default.
 * @throws ConfigError (CONFIG_INVALID, exit 1) always, naming `<prefix><highest version + 1>`.
 */
async function envVersionToAdd(prefix: string, provider: KeyProvider): Promise<never> {
  const { ConfigError } = await import('@keyfold/envelope-core');
  const d = await provider.describe();
  const versions = d.versions.map(Number).filter((v) => Number.isSafeInteger(v));
  const newer = versions.filter((v) => v > Number(d.activeVersion));
  if (newer.length > 0) {
    // Loaded here but not active: the key store decides, once every host has it.
    const v = Math.max(...newer);
    throw new ConfigError(
      `a new version of env:${provider.keyId} is due and ${prefix}${v} is set here: once it is set wherever this installation ` +
        `runs, make it the key store's active version with 'keyfold kek activate --kek-version ${v}', then run again`,
    );
  }
  const next = versions.length === 0 ? 1 : Math.max(...versions) + 1;
  throw new ConfigError(
    `a new version of env:${provider.keyId} is due, and the env provider cannot add one itself: set ${prefix}${next} to 64 hex ` +
      'characters (generate one with: openssl rand -hex 32) wherever this installation runs, then run again',
  );
}

export async function run(ctx: CommandContext): Promise<number | undefined> {
  if (!ctx.args.flag('if-due')) throw new UsageError("use 'keyfold rotate --if-due' (or 'keyfold kek rotate' to rotate now)", ctx.name);
  const maxAgeMs = numberOption(ctx, 'max-age', 86_400_000, 0.000001);
  const gracePeriodMs = numberOption(ctx, 'grace-period', 3_600_000, 0);
  const result = await withStoreAndProvider(ctx, async ({ store, provider, actor, loaded }) => {
    const { runIfDue } = await import('@keyfold/rotation');
    const cfg = loaded.config.provider;
    const bar = new ProgressBar(ctx, 'rotating');
    try {
      return await withInterrupt(ctx, (signal) =>
        runIfDue({
          store,
          provider,
          actor,
          signal,
          concurrency: concurrencyFor(ctx, provider),
          policy: { ...(maxAgeMs === undefined ? {} : { maxAgeMs }), ...(gracePeriodMs === undefined ? {} : { gracePeriodMs }) },
          onProgress: (p) => bar.update(p),
          ...(cfg.kind === 'env' ? { addVersion: (p: KeyProvider) => envVersionToAdd(cfg.prefix, p) } : {}),
          ...(cfg.kind === 'pkcs11'
            ? {
                addVersion: async () => {
                  const added = await (await import('../providers/pkcs11.js')).addKekVersion(loaded.securityMode, cfg);
                  return added.version;
                },
              }
            : {}),
        }),
      );
    } finally {
      bar.finish();
    }
  });
  const s = result.status;
  const doc = {
    ok: result.action !== 'rewrapped' || (result.report.failed.length === 0 && !result.report.aborted),
    action: result.action,
    reason: s.reason,
    active: s.active,
    activeSince: s.activeSince ?? null,
    pendingKeys: s.pendingKeys,
    nextDueAt: s.nextDueAt ?? null,
    ...(result.action === 'added-version' ? { version: result.version } : {}),
    ...(result.action === 'rewrapped' ? { report: { ...result.report, failed: [...result.report.failed] } } : {}),
  };
  ctx.out.result(doc, () => {
    const rows: [string, string][] = [
      ['action', result.action],
      ['reason', printable(s.reason)],
      ['active', printable(`${s.active.kind}:${s.active.keyId} v${s.active.version}`)],
    ];
    if (result.action === 'added-version') rows.push(['new version', `${printable(result.version)} (keys are re-wrapped to it after the grace period)`]);
    if (result.action === 'rewrapped') rows.push(['re-wrapped', `${formatCount(result.report.rewrapped)}, ${result.report.failed.length} failed`]);
    if (s.nextDueAt !== undefined) rows.push(['next due', s.nextDueAt]);
    return formatFields(rows, ctx.out.out);
  });
  if (result.action === 'rewrapped' && result.report.aborted) return ExitCode.INTERRUPTED;
  return doc.ok ? undefined : ExitCode.INTEGRITY;
}
