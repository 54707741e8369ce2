/**
 * Section 4: provider calls per 100,000 seals (and the opens of those envelopes), data key cache on and off.
 * Counted twice: by `envelope.stats()` and by a counting wrapper at the provider boundary; they must agree.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { countingProvider, createKeyfoldEnvelope, type CallCounts } from '../contenders/keyfold.js';
import { CACHE_LIMITS } from '../contenders/esdk.js';
import { fmtNum, type SectionResult, type Table } from '../report.js';

export const PER = 100_000;

export interface ProviderCallsOptions {
  /** Seals actually performed; results are scaled to per-100,000. */
  readonly messages: number;
}

export interface ProviderCallsRun {
  readonly cache: boolean;
  readonly messages: number;
  /** envelope.stats().providerCalls after the seals */
  readonly sealStats: { generateDataKey: number; wrap: number; unwrap: number; total: number };
  /** envelope.stats().providerCalls after the opens, minus the seal figures */
  readonly openStats: { generateDataKey: number; wrap: number; unwrap: number; total: number };
  /** Counted at the provider boundary, seals and opens together. */
  readonly counted: CallCounts;
  readonly statsAgree: boolean;
  readonly sealPer100k: number;
  readonly openPer100k: number;
  readonly cacheStats: unknown;
  readonly sealMs: number;
  readonly openMs: number;
}

async function one(cache: boolean, messages: number): Promise<ProviderCallsRun> {
  const counted: CallCounts = { wrapKey: 0, unwrapKey: 0, generateDataKey: 0 };
  const { envelope, provider } = await createKeyfoldEnvelope({ cache, decorate: (p) => countingProvider(p, counted) });
  try {
    const pt = new Uint8Array(randomBytes(64));
    const sealed: Uint8Array[] = new Array<Uint8Array>(messages);
    const t0 = performance.now();
    for (let i = 0; i < messages; i++) sealed[i] = await envelope.seal(pt);
    const t1 = performance.now();
    const afterSeal = { ...envelope.stats().providerCalls };
    for (let i = 0; i < messages; i++) await envelope.open(sealed[i]!);
    const t2 = performance.now();
    const stats = envelope.stats();
    const pc = stats.providerCalls;
    const openStats = {
      generateDataKey: pc.generateDataKey - afterSeal.generateDataKey,
      wrap: pc.wrap - afterSeal.wrap,
      unwrap: pc.unwrap - afterSeal.unwrap,
      total: pc.total - afterSeal.total,
    };
    const countedTotal = counted.wrapKey + counted.unwrapKey + counted.generateDataKey;
    const scale = PER / messages;
    return {
      cache,
      messages,
      sealStats: afterSeal,
      openStats,
      counted: { ...counted },
      statsAgree:
        countedTotal === pc.total &&
        counted.wrapKey === pc.wrap &&
        counted.unwrapKey === pc.unwrap &&
        counted.generateDataKey === pc.generateDataKey,
      sealPer100k: afterSeal.total * scale,
      openPer100k: openStats.total * scale,
      cacheStats: stats.cache ?? null,
      sealMs: t1 - t0,
      openMs: t2 - t1,
    };
  } finally {
    await envelope.close();
    await provider.close();
  }
}

export async function runProviderCalls(opts: ProviderCallsOptions): Promise<SectionResult> {
  const runs: ProviderCallsRun[] = [];
  const errors: string[] = [];
  for (const cache of [false, true]) {
    try {
      runs.push(await one(cache, opts.messages));
    } catch (err) {
      errors.push(`cache ${cache ? 'on' : 'off'}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  const scaled = opts.messages !== PER;
  const fmtCalls = (s: { generateDataKey: number; wrap: number; unwrap: number }): string =>
    [
      s.generateDataKey ? `${s.generateDataKey.toLocaleString('en-US')} generate` : '',
      s.wrap ? `${s.wrap.toLocaleString('en-US')} wrap` : '',
      s.unwrap ? `${s.unwrap.toLocaleString('en-US')} unwrap` : '',
    ]
      .filter(Boolean)
      .join(', ') || '0';
  const table: Table = {
    title: `Provider calls per ${PER.toLocaleString('en-US')} seals (64 B, one context) and their opens`,
    columns: ['data key cache', 'per 100k seals', 'per 100k opens', `seal calls (${opts.messages.toLocaleString('en-US')})`, `open calls (${opts.messages.toLocaleString('en-US')})`, 'stats() = counted'],
    rows: runs.map((r) => [
      r.cache ? `on (maxAge ${CACHE_LIMITS.maxAgeMs / 1000} s, maxMessages ${CACHE_LIMITS.maxMessages.toLocaleString('en-US')})` : 'off',
      fmtNum(r.sealPer100k),
      fmtNum(r.openPer100k),
      fmtCalls(r.sealStats),
      fmtCalls(r.openStats),
      r.statsAgree ? 'yes' : 'NO',
    ]),
  };
  return {
    id: 'provider-calls',
    title: '4. Provider calls',
    notes: [
      scaled
        ? `--quick: ${opts.messages.toLocaleString('en-US')} seals, scaled x${PER / opts.messages} to per-100,000`
        : `${PER.toLocaleString('en-US')} seals, then ${PER.toLocaleString('en-US')} opens of them, in one envelope each`,
      'counted by envelope.stats().providerCalls and independently by a counting KeyProvider wrapper',
      ...errors.map((e) => `NOT MEASURED: ${e}`),
    ],
    tables: [table],
    targets: [],
    data: { messages: opts.messages, per: PER, runs },
  };
}
