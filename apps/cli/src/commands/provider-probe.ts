/**
 * `keyfold provider probe`: asks the configured provider to prove it works (a wrap and unwrap of a throwaway key,
 * or the backend's cheapest call) and reports health, latency and capabilities. Exit 1 when it is not healthy,
 * including when the provider cannot even be opened because the service is down or refuses the credentials: those
 * are what a probe is for, so they are reported as a failed probe rather than as an error.
 *
 * For PKCS#11 it also lists the mechanisms the token offers, read without logging in (so they show even when the
 * PIN is wrong).
 * @module
 */
import { isOperationalCode, type KeyfoldErrorCode, type ProbeResult } from '@keyfold/envelope-core';
import type { CommandContext } from '../command.js';
import { loadConfig, openProvider } from '../config.js';
import { CliError, ExitCode } from '../exit-codes.js';
import { formatFields, printable } from '../output.js';
import { formatProviderCalls, providerCallCounters, type ProviderCallCounters } from '../provider-calls.js';
import { checkStoreLock, underPointer } from '../store.js';
import type { ProviderConfig } from '../provider-config.js';

/**
 * A failure that makes the probe fail instead of the command: an operational error (the core's one rule,
 * `isOperationalCode`: the backend is down, throttled, refuses the credentials, the key is disabled or missing, the
 * provider's setup is wrong or too open). Anything else (a bug, a damaged store) is an error of the command.
 */
function unhealthy(err: unknown): { code: string; message: string } | undefined {
  if (!(err instanceof Error)) return undefined;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && isOperationalCode(code as KeyfoldErrorCode) ? { code, message: err.message } : undefined;
}

/**
 * The kind's extra section (PKCS#11: the token and its mechanisms, see `ProviderAdapter.probeExtra`), or the
 * unhealthy error that kept it from being read.
 */
async function extraSection(cfg: ProviderConfig): Promise<{ field: string; json: unknown; render: (ctx: CommandContext) => string } | undefined> {
  const { withAdapter } = await import('../providers/registry.js');
  const extra = await withAdapter(cfg, (adapter) => adapter.probeExtra);
  if (extra === undefined) return undefined;
  try {
    return { field: extra.field, ...(await extra.read(cfg)) };
  } catch (err) {
    const error = unhealthy(err);
    if (error === undefined) throw err;
    return { field: extra.field, json: { error }, render: () => `${extra.field}: ${printable(error.message)} [${printable(error.code)}]` };
  }
}

/** `2 throttled, 1 waited for the rate limit; client rate 12.5 calls/s` (or unlimited while the limit is idle). */
function formatThrottling(c: ProviderCallCounters): string {
  const rate = c.ratePerSecond === undefined ? 'unlimited (no throttle seen)' : `${c.ratePerSecond.toFixed(1)} calls/s`;
  return `${c.throttled} throttled, ${c.rateLimited} waited for the rate limit; client rate ${rate}`;
}

export async function run(ctx: CommandContext): Promise<number | undefined> {
  const loaded = await loadConfig(ctx);
  const cfg = loaded.config.provider;
  // The store's install lock is checked first, outside the probe: a config.json naming another provider than the
  // installation's (PROVIDER_MISMATCH) or a damaged store is an error of the command, not an unhealthy provider.
  // The probe round-trips under the store's active version: a host that lacks it is reported unhealthy (KEY_NOT_FOUND).
  const pointer = await checkStoreLock(ctx, loaded);
  const start = performance.now();
  let result: ProbeResult;
  let calls: ProviderCallCounters | null = null;
  try {
    const provider = underPointer(await openProvider(ctx, loaded, { storeLockChecked: true }), pointer);
    try {
      result = await provider.probe();
      calls = providerCallCounters(provider);
    } finally {
      await provider.close();
    }
  } catch (err) {
    const error = unhealthy(err);
    if (error === undefined) throw err;
    result = { ok: false, kind: cfg.kind, keyId: cfg.keyId, latencyMs: performance.now() - start, error };
  }
  const extra = await extraSection(cfg);

  const s = ctx.out.out;
  // The probe's own calls under the shared resilience: how often the service throttled them, the retries, and the
  // client-side rate limit now (null while it is idle; `calls` is null for a provider without resilience).
  const json = { ...result, calls: calls === null ? null : { ...calls, ratePerSecond: calls.ratePerSecond ?? null } };
  ctx.out.result(extra === undefined ? json : { ...json, [extra.field]: extra.json }, () => {
    const rows: [string, string][] = [
      ['status', result.ok ? s.green('ok') : s.red('FAILED')],
      ['provider', printable(result.kind)],
      ['key id', printable(result.keyId)],
      ['latency', `${result.latencyMs.toFixed(1)} ms`],
    ];
    if (result.activeVersion !== undefined) rows.push(['active version', printable(result.activeVersion)]);
    if (result.capabilities !== undefined) {
      const c = result.capabilities;
      const names = (['generateDataKey', 'rewrapKey', 'rotate'] as const).filter((k) => c[k]);
      rows.push(['capabilities', names.length === 0 ? 'wrap, unwrap' : `wrap, unwrap, ${names.join(', ')}`]);
    }
    if (result.error !== undefined) rows.push(['error', `${printable(result.error.message)} [${printable(result.error.code)}]`]);
    for (const [k, v] of Object.entries(result.details ?? {})) rows.push([printable(k), printable(String(v))]);
    rows.push(['provider calls', formatProviderCalls(calls)]);
    if (calls !== null) rows.push(['throttling', formatThrottling(calls)]);
    const text = formatFields(rows, s);
    return extra === undefined ? text : `${text}\n\n${extra.render(ctx)}`;
  });
  if (result.ok) return ExitCode.OK;
  if (!ctx.out.json) {
    const reason = result.error === undefined ? 'no reason given' : `${result.error.code}: ${result.error.message}`;
    ctx.out.error(new CliError('PROBE_FAILED', `the ${result.kind} provider is not healthy (${printable(reason)})`));
  }
  return ExitCode.FAILURE;
}
