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
import type { ProbeResult } from '@keyfold/envelope-core';
import type { Pkcs11TokenListing } from '@keyfold/provider-pkcs11';
import type { CommandContext } from '../command.js';
import { loadConfig, openProvider } from '../config.js';
import { CliError, ExitCode } from '../exit-codes.js';
import { formatFields, formatTable, printable } from '../output.js';
import { formatProviderCalls, providerCallCounters, type ProviderCallCounters } from '../provider-calls.js';
import { checkStoreLock } from '../store.js';
import type { Pkcs11ProviderConfig } from '../provider-config.js';

/** Failures of the backend (or of reaching it) that make a probe fail instead of the command. */
const UNHEALTHY = new Set(['KEY_NOT_FOUND', 'KEY_DISABLED', 'ACCESS_DENIED', 'THROTTLED', 'UNAVAILABLE', 'TIMEOUT', 'CONFIG_INVALID']);

function unhealthy(err: unknown): { code: string; message: string } | undefined {
  if (!(err instanceof Error)) return undefined;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && UNHEALTHY.has(code) ? { code, message: err.message } : undefined;
}

interface TokenReport {
  readonly slot: string;
  readonly label: string;
  readonly flags: readonly string[];
  readonly mechanisms: Pkcs11TokenListing['mechanisms'];
  /** Per wrapping mode: what is missing (empty: supported). */
  readonly modes: Pkcs11TokenListing['modes'];
  /** What is missing for `kek add` (empty: supported). */
  readonly keyGeneration: readonly string[];
}

async function tokenReport(cfg: Pkcs11ProviderConfig): Promise<TokenReport | { error: { code: string; message: string } }> {
  try {
    const t = await (await import('../providers/pkcs11.js')).findToken(cfg);
    return { slot: t.slot, label: t.label, flags: t.flags, mechanisms: t.mechanisms, modes: t.modes, keyGeneration: t.keyGeneration };
  } catch (err) {
    const e = unhealthy(err);
    if (e === undefined) throw err;
    return { error: e };
  }
}

function renderToken(ctx: CommandContext, token: TokenReport | { error: { code: string; message: string } }): string {
  if ('error' in token) return `token: ${printable(token.error.message)} [${printable(token.error.code)}]`;
  const s = ctx.out.out;
  const support = (missing: readonly string[]): string => (missing.length === 0 ? 'yes' : `no (lacks ${missing.map(printable).join(', ')})`);
  const fields = formatFields(
    [
      ['token', `${printable(token.label)} (slot ${printable(token.slot)})`],
      ['token flags', token.flags.map(printable).join(', ') || '(none)'],
      ['AES_GCM', support(token.modes.AES_GCM)],
      ['AES_KEY_WRAP_PAD', support(token.modes.AES_KEY_WRAP_PAD)],
      ['kek add', support(token.keyGeneration)],
    ],
    s,
  );
  const table = formatTable(
    [['mechanism', 'flags'], ...token.mechanisms.map((m) => [printable(m.name), m.flags.map(printable).join(', ')])],
    s,
  );
  return `${fields}\n\n${token.mechanisms.length} mechanisms found:\n${table}`;
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
  await checkStoreLock(ctx, loaded);
  const start = performance.now();
  let result: ProbeResult;
  let calls: ProviderCallCounters | null = null;
  try {
    const provider = await openProvider(ctx, loaded, { storeLockChecked: true });
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
  const token = cfg.kind === 'pkcs11' ? await tokenReport(cfg) : undefined;

  const s = ctx.out.out;
  // The probe's own calls under the shared resilience: how often the service throttled them, the retries, and the
  // client-side rate limit now (null while it is idle; `calls` is null for a provider without resilience).
  const json = { ...result, calls: calls === null ? null : { ...calls, ratePerSecond: calls.ratePerSecond ?? null } };
  ctx.out.result(token === undefined ? json : { ...json, token }, () => {
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
    return token === undefined ? text : `${text}\n\n${renderToken(ctx, token)}`;
  });
  if (result.ok) return ExitCode.OK;
  if (!ctx.out.json) {
    const reason = result.error === undefined ? 'no reason given' : `${result.error.code}: ${result.error.message}`;
    ctx.out.error(new CliError('PROBE_FAILED', `the ${result.kind} provider is not healthy (${printable(reason)})`));
  }
  return ExitCode.FAILURE;
}
