/**
 * KMS providers on loopback: wrap + unwrap latency and throughput of the AWS KMS provider (symmetric and RSA keys,
 * real @aws-sdk/client-kms) and the Vault transit provider (plain and derived keys, fetch) against the wire-protocol
 * emulators of @keyfold/emulators, and provider calls per 100,000 seals with and without the data key cache.
 *
 * The emulators run in this process: every figure includes the emulator's own CPU (HTTP parsing, AES-GCM, RSA
 * decryption) on the same cores, and no network. They compare the providers' client-side cost and call patterns;
 * they are not the latency of AWS or of a Vault cluster.
 *
 * Export to wire into run.ts: `runKmsProviders({ quick })` (section id `kms-providers`).
 * @module
 */
import { performance } from 'node:perf_hooks';
import { createEnvelope, type EnvelopeStats, type KeyProvider } from '@keyfold/envelope-core';
import { startAwsKmsEmulator, startVaultTransitEmulator, type EmulatorServer } from '@keyfold/emulators';
import { createAwsKmsProvider } from '@keyfold/provider-aws';
import { createVaultTransitProvider } from '@keyfold/provider-vault';
import { CACHE_LIMITS } from '../contenders/esdk.js';
import { evaluateTarget, fmtMs, fmtNum, fmtRate, type SectionResult, type Table, type TargetResult } from '../report.js';
import { QUOTA_TARGET, runKmsQuota, type QuotaRun } from './kms-quota.js';

export const PER = 100_000;

export interface KmsProvidersOptions {
  /** `--quick`: short budgets and 10,000 seals scaled to per-100,000. */
  readonly quick: boolean;
  /** Sequential wrap + unwrap pairs timed per provider for the latency columns. Default 400 (quick 100). */
  readonly latencyPairs?: number;
  /** Time per provider for the throughput column, ms. Default 3000 (quick 750). */
  readonly throughputMs?: number;
  /** Calls in flight for the throughput column. Default 32. */
  readonly concurrency?: number;
  /** Seals per provider and cache setting for the call counts. Default 100,000 (quick 10,000). */
  readonly seals?: number;
  /** Length of each quota run, ms. Default 10,000 (quick 3,000). */
  readonly quotaMs?: number;
  /** Quotas to run, calls/s. Default 200 (the target) and 50. */
  readonly quotas?: readonly number[];
}

/** The section's result; `id` joins `SectionId` once run.ts and report.ts list it. */
export type KmsProvidersSection = Omit<SectionResult, 'id'> & { readonly id: 'kms-providers' };

export interface LatencyResult {
  readonly pairs: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  /** Backend requests (counted by the emulator) per wrap + unwrap pair. */
  readonly requestsPerPair: number;
}

export interface CallsResult {
  readonly cache: boolean;
  readonly seals: number;
  readonly providerCalls: EnvelopeStats['providerCalls'];
  /** HTTP requests the emulator served during the seals. */
  readonly backendRequests: number;
  readonly providerCallsPer100k: number;
  readonly backendRequestsPer100k: number;
  readonly sealsPerSec: number;
}

export interface ProviderRun {
  readonly id: string;
  readonly label: string;
  readonly latency?: LatencyResult;
  readonly throughputPairsPerSec?: number;
  readonly generateDataKeyP50Ms?: number;
  readonly calls: CallsResult[];
  readonly error?: string;
}

interface Contender {
  readonly id: string;
  readonly label: string;
  readonly emulator: EmulatorServer;
  readonly make: () => Promise<KeyProvider>;
}

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

function randomKey(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(32));
}

async function latency(provider: KeyProvider, emulator: EmulatorServer, pairs: number): Promise<LatencyResult & { gdkP50: number }> {
  const context = { tenant: 'bench' };
  for (let i = 0; i < Math.min(20, pairs); i++) await provider.unwrapKey(await provider.wrapKey(randomKey(), context), context);
  const before = emulator.counters.requests;
  const samples: number[] = [];
  for (let i = 0; i < pairs; i++) {
    const t0 = performance.now();
    const back = await provider.unwrapKey(await provider.wrapKey(randomKey(), context), context);
    samples.push(performance.now() - t0);
    back.fill(0);
  }
  const requests = emulator.counters.requests - before;
  const gdk: number[] = [];
  if (provider.generateDataKey) {
    for (let i = 0; i < Math.min(pairs, 100); i++) {
      const t0 = performance.now();
      const { dataKey } = await provider.generateDataKey(context);
      gdk.push(performance.now() - t0);
      dataKey.fill(0);
    }
  }
  samples.sort((a, b) => a - b);
  gdk.sort((a, b) => a - b);
  return {
    pairs,
    p50Ms: quantile(samples, 0.5),
    p90Ms: quantile(samples, 0.9),
    p99Ms: quantile(samples, 0.99),
    requestsPerPair: requests / pairs,
    gdkP50: quantile(gdk, 0.5),
  };
}

async function throughput(provider: KeyProvider, ms: number, width: number): Promise<number> {
  const context = { tenant: 'bench' };
  let done = 0;
  const end = performance.now() + ms;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (performance.now() < end) {
        const back = await provider.unwrapKey(await provider.wrapKey(randomKey(), context), context);
        back.fill(0);
        done++;
      }
    }),
  );
  return (done * 1000) / (performance.now() - t0);
}

async function calls(provider: KeyProvider, emulator: EmulatorServer, cache: boolean, seals: number, width: number): Promise<CallsResult> {
  const envelope = createEnvelope({
    providers: [provider],
    cache: cache ? { capacity: CACHE_LIMITS.capacity, maxAge: CACHE_LIMITS.maxAgeMs, maxMessages: CACHE_LIMITS.maxMessages } : false,
  });
  try {
    const pt = crypto.getRandomValues(new Uint8Array(64));
    const context = { table: 'bench' };
    const before = emulator.counters.requests;
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: width }, async () => {
        while (next < seals) {
          next++;
          await envelope.seal(pt, context);
        }
      }),
    );
    const elapsed = performance.now() - t0;
    const providerCalls = envelope.stats().providerCalls;
    const backendRequests = emulator.counters.requests - before;
    const sealsPerSec = (seals * 1000) / elapsed;
    // Without the cache, calls grow with the seals: scale linearly. With it, a data key serves up to maxMessages
    // seals for up to maxAge: 100,000 seals need one key per maxAge window they span at the measured rate.
    const scale = cache
      ? Math.max(1, Math.ceil(PER / sealsPerSec / (CACHE_LIMITS.maxAgeMs / 1000)), Math.ceil(PER / CACHE_LIMITS.maxMessages))
      : PER / seals;
    return {
      cache,
      seals,
      providerCalls,
      backendRequests,
      providerCallsPer100k: providerCalls.total * scale,
      backendRequestsPer100k: backendRequests * scale,
      sealsPerSec,
    };
  } finally {
    await envelope.close();
  }
}

/**
 * Runs the section.
 * @throws only if an emulator cannot start; a provider that fails is reported in its row and the notes.
 * @example
 * ```ts
 * const section = await runKmsProviders({ quick: true });
 * console.log(section.tables[0]?.rows);
 * ```
 */
export async function runKmsProviders(opts: KmsProvidersOptions): Promise<KmsProvidersSection> {
  const pairs = opts.latencyPairs ?? (opts.quick ? 100 : 400);
  const tputMs = opts.throughputMs ?? (opts.quick ? 750 : 3000);
  const width = opts.concurrency ?? 32;
  const seals = opts.seals ?? (opts.quick ? 10_000 : PER);
  const aws = await startAwsKmsEmulator({ port: 0 });
  const vault = await startVaultTransitEmulator({ port: 0 });
  // The bench measures the providers, not the breaker: a saturated in-process emulator must not trip it.
  const resilience = { circuitBreaker: false as const, deadlineMs: 60_000 };
  const credentials = { accessKeyId: 'AKIDKEYFOLDBENCH', secretAccessKey: 'emulator-does-not-check' };
  const awsProvider = async (keySpec: 'SYMMETRIC_DEFAULT' | 'RSA_2048'): Promise<KeyProvider> => {
    const meta = await aws.createKey({ keySpec });
    return createAwsKmsProvider({ keyId: meta.Arn, region: aws.region, endpoint: aws.url, credentials, resilience });
  };
  let n = 0;
  const vaultProvider = async (derived: boolean): Promise<KeyProvider> => {
    const keyName = `bench-${derived ? 'derived' : 'plain'}-${n++}`;
    vault.createKey(keyName, { derived });
    return createVaultTransitProvider({ endpoint: vault.url, token: vault.rootToken, keyName, env: {}, resilience });
  };
  const contenders: Contender[] = [
    { id: 'aws-kms-symmetric', label: 'AWS KMS, symmetric key (SDK v3)', emulator: aws, make: () => awsProvider('SYMMETRIC_DEFAULT') },
    { id: 'aws-kms-rsa', label: 'AWS KMS, RSA_2048 key (local OAEP wrap)', emulator: aws, make: () => awsProvider('RSA_2048') },
    { id: 'vault-transit', label: 'Vault transit, aes256-gcm96 key', emulator: vault, make: () => vaultProvider(false) },
    { id: 'vault-transit-derived', label: 'Vault transit, derived key', emulator: vault, make: () => vaultProvider(true) },
  ];
  const runs: ProviderRun[] = [];
  let quota: { table: Table; target: TargetResult; runs: QuotaRun[]; notes: string[] } | undefined;
  let quotaError: string | undefined;
  try {
    for (const c of contenders) {
      let provider: KeyProvider | undefined;
      try {
        provider = await c.make();
        const lat = await latency(provider, c.emulator, pairs);
        const tput = await throughput(provider, tputMs, width);
        const callRuns: CallsResult[] = [];
        // Without the cache every seal waits for the backend: seal with `width` in flight. With it, seals are local
        // work after the first, so one at a time (in flight together, every seal that starts before the first data
        // key is cached would call the provider too).
        for (const cache of [false, true]) callRuns.push(await calls(provider, c.emulator, cache, seals, cache ? 1 : width));
        const { gdkP50, ...latencyResult } = lat;
        runs.push({
          id: c.id,
          label: c.label,
          latency: latencyResult,
          throughputPairsPerSec: tput,
          ...(Number.isFinite(gdkP50) ? { generateDataKeyP50Ms: gdkP50 } : {}),
          calls: callRuns,
        });
      } catch (err) {
        runs.push({ id: c.id, label: c.label, calls: [], error: err instanceof Error ? err.message : String(err) });
      } finally {
        await provider?.close();
      }
    }
    try {
      quota = await runKmsQuota(aws, {
        quick: opts.quick,
        ...(opts.quotaMs === undefined ? {} : { durationMs: opts.quotaMs }),
        ...(opts.quotas === undefined ? {} : { quotas: opts.quotas }),
      });
    } catch (err) {
      quotaError = err instanceof Error ? err.message : String(err);
    }
  } finally {
    await aws.close();
    await vault.close();
  }

  const latencyTable: Table = {
    title: 'Wrap + unwrap on loopback (emulator in process)',
    columns: ['provider', 'p50', 'p90', 'p99', `pairs/s (${width} in flight)`, 'requests per pair', 'generateDataKey p50'],
    rows: runs.map((r) =>
      r.latency
        ? [
            r.label,
            fmtMs(r.latency.p50Ms),
            fmtMs(r.latency.p90Ms),
            fmtMs(r.latency.p99Ms),
            fmtRate(r.throughputPairsPerSec ?? Number.NaN),
            fmtNum(r.latency.requestsPerPair),
            r.generateDataKeyP50Ms === undefined ? 'n/a' : fmtMs(r.generateDataKeyP50Ms),
          ]
        : [r.label, 'failed', '', '', '', '', ''],
    ),
  };
  const callsTable: Table = {
    title: `Provider calls per ${PER.toLocaleString('en-US')} seals (64 B, one context)`,
    columns: ['provider', 'data key cache', 'provider calls / 100k', 'backend requests / 100k', `measured (${seals.toLocaleString('en-US')} seals)`, 'seals/s'],
    rows: runs.flatMap((r) =>
      r.calls.map((c) => [
        r.label,
        c.cache ? `on (maxAge ${CACHE_LIMITS.maxAgeMs / 1000} s, maxMessages ${CACHE_LIMITS.maxMessages.toLocaleString('en-US')})` : 'off',
        fmtNum(c.providerCallsPer100k),
        fmtNum(c.backendRequestsPer100k),
        `${c.providerCalls.total.toLocaleString('en-US')} calls, ${c.backendRequests.toLocaleString('en-US')} requests`,
        fmtRate(c.sealsPerSec),
      ]),
    ),
  };
  const scaled = seals !== PER;
  return {
    id: 'kms-providers',
    title: 'KMS providers (AWS KMS, Vault transit) on loopback',
    notes: [
      'emulators from @keyfold/emulators in this process: figures include their CPU and no network; they are not AWS or Vault latencies',
      `latency: ${pairs} sequential wrapKey + unwrapKey pairs after 20 warm-up pairs; throughput: ${tputMs} ms with ${width} pairs in flight`,
      scaled
        ? `--quick: ${seals.toLocaleString('en-US')} seals per provider and cache setting; without the cache scaled x${PER / seals} to per-100,000, with it one data key per maxAge window that 100,000 seals span at the measured rate`
        : `${PER.toLocaleString('en-US')} seals per provider and cache setting`,
      `seals without the cache: ${width} in flight; with the cache: one at a time (concurrent cold-start seals would each miss the cache)`,
      'provider calls = envelope.stats().providerCalls (KeyProvider method calls); backend requests = HTTP requests the emulator served',
      'AWS symmetric wrapKey is two requests (Encrypt, then Decrypt to learn the KeyMaterialId); seals use GenerateDataKey (one); RSA wraps locally (none)',
      'Vault plain keys seal through encrypt (datakey takes no associated data); derived keys through datakey/plaintext',
      'circuit breaker off and a 60 s deadline for the measurement; retries never happened (no faults injected)',
      ...runs.filter((r) => r.error).map((r) => `NOT MEASURED: ${r.label}: ${r.error ?? ''}`),
      ...(quota?.notes ?? []),
      ...(quotaError === undefined ? [] : [`NOT MEASURED: quota runs: ${quotaError}`]),
    ],
    tables: quota ? [latencyTable, callsTable, quota.table] : [latencyTable, callsTable],
    targets: [quota?.target ?? evaluateTarget(QUOTA_TARGET, null, quotaError)],
    data: { quick: opts.quick, pairs, throughputMs: tputMs, concurrency: width, seals, per: PER, runs, quota: quota?.runs ?? null },
  };
}
