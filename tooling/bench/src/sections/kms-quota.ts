/**
 * The quota row of the KMS providers section (issue "Resilience under throttling"): the AWS KMS emulator enforces a
 * request quota (R calls per second for the cryptographic operations, `faults.quota`), `callers` concurrent callers
 * seal without a data key cache for `durationMs` through the real SDK with the provider's DEFAULT resilience, and the
 * row reports what succeeded, what failed (and with which code), the rate achieved against the quota, how many
 * attempts the service throttled, and the client-side rate the adaptive limit settled on. The same run with the
 * rate limit switched off is reported beside it, so the table shows what the shared token bucket buys.
 * @module
 */
import { performance } from 'node:perf_hooks';
import { createEnvelope, type ResilienceOptions } from '@keyfold/envelope-core';
import type { AwsKmsEmulator } from '@keyfold/emulators';
import { createAwsKmsProvider } from '@keyfold/provider-aws';
import { evaluateTarget, fmtNum, type Table, type TargetResult, type TargetSpec } from '../report.js';

export interface QuotaRun {
  readonly label: string;
  readonly quotaPerSecond: number;
  readonly callers: number;
  readonly durationMs: number;
  readonly succeeded: number;
  /** Failed calls by error code. */
  readonly failed: Readonly<Record<string, number>>;
  /** Successful calls per second over the run. */
  readonly achievedPerSecond: number;
  /** Attempts the emulator throttled (over the quota). */
  readonly throttledAttempts: number;
  /** Requests the emulator received. */
  readonly requests: number;
  readonly retries: number;
  /** The client-side rate limit at the end, calls/s (`null` when off or idle). */
  readonly clientRatePerSecond: number | null;
}

const QUOTA_TARGET_RATE = 200;

export const QUOTA_TARGET: TargetSpec = {
  id: 'kms-quota-rate',
  description: 'AWS KMS emulator quota 200 calls/s, 32 callers for 10 s, default settings: achieved rate / quota',
  comparator: '>=',
  threshold: 0.8,
  unit: 'x',
};

async function oneRun(
  emu: AwsKmsEmulator,
  label: string,
  resilience: ResilienceOptions | undefined,
  quota: number,
  callers: number,
  durationMs: number,
): Promise<QuotaRun> {
  const credentials = { accessKeyId: 'AKIDKEYFOLDBENCH', secretAccessKey: 'emulator-does-not-check' };
  const meta = await emu.createKey({ keySpec: 'SYMMETRIC_DEFAULT' });
  const provider = await createAwsKmsProvider({
    keyId: meta.Arn,
    region: emu.region,
    endpoint: emu.url,
    credentials,
    ...(resilience ? { resilience } : {}),
  });
  const envelope = createEnvelope({ providers: [provider], cache: false });
  const crypto = ['Encrypt', 'Decrypt', 'GenerateDataKey', 'ReEncrypt'];
  // Real KMS names no delay in its quota answer (retryAfterSeconds: false).
  emu.faults.set({ quota: { requestsPerSecond: quota, groups: { crypto } }, retryAfterSeconds: false });
  emu.resetCounters();
  const pt = new Uint8Array(64);
  let succeeded = 0;
  const failed: Record<string, number> = {};
  const t0 = performance.now();
  const end = t0 + durationMs;
  try {
    await Promise.all(
      Array.from({ length: callers }, async () => {
        while (performance.now() < end) {
          try {
            await envelope.seal(pt, { table: 'bench' });
            succeeded++;
          } catch (err) {
            const code = (err as { code?: unknown }).code;
            const key = typeof code === 'string' ? code : 'NOT_CODED';
            failed[key] = (failed[key] ?? 0) + 1;
          }
        }
      }),
    );
    const elapsed = performance.now() - t0;
    const stats = provider.resilienceStats();
    const c = emu.counters;
    return {
      label,
      quotaPerSecond: quota,
      callers,
      durationMs: elapsed,
      succeeded,
      failed,
      achievedPerSecond: (succeeded * 1000) / elapsed,
      throttledAttempts: c.throttled,
      requests: c.requests,
      retries: stats?.retries ?? 0,
      clientRatePerSecond: stats?.ratePerSecond ?? null,
    };
  } finally {
    emu.faults.clear();
    await envelope.close();
    await provider.close();
  }
}

/**
 * Runs the quota measurement twice (default settings; rate limit off) against `emu`.
 * @throws whatever creating the provider throws (the caller reports it).
 * @example
 * ```ts
 * const { table, target } = await runKmsQuota(aws, { quick: true });
 * ```
 */
export async function runKmsQuota(
  emu: AwsKmsEmulator,
  opts: { quick: boolean; quotas?: readonly number[]; callers?: number; durationMs?: number },
): Promise<{ table: Table; target: TargetResult; runs: QuotaRun[]; notes: string[] }> {
  // 200/s is the target; a loopback emulator sharing two cores with the SDK may not reach 200 seals/s at
  // all, so a quota well below the machine's capacity (50/s) shows the throttled regime as well.
  const quotas = opts.quotas ?? [200, 50];
  const callers = opts.callers ?? 32;
  const durationMs = opts.durationMs ?? (opts.quick ? 3000 : 10_000);
  const runs: QuotaRun[] = [];
  for (const quota of quotas) {
    runs.push(await oneRun(emu, 'default settings (adaptive rate limit on)', undefined, quota, callers, durationMs));
    runs.push(await oneRun(emu, 'rate limit off (rateLimit: false)', { rateLimit: false }, quota, callers, durationMs));
  }
  const fmtFailed = (f: Readonly<Record<string, number>>): string =>
    Object.keys(f).length === 0 ? '0' : Object.entries(f).map(([k, v]) => `${v} ${k}`).join(', ');
  const table: Table = {
    title: `AWS KMS emulator with a request quota (crypto operations), ${callers} callers sealing without a cache`,
    columns: ['quota', 'client', 'succeeded', 'failed', 'achieved calls/s', 'of quota', 'throttled attempts', 'requests', 'client rate at end'],
    rows: runs.map((r) => [
      `${r.quotaPerSecond}/s`,
      r.label,
      r.succeeded.toLocaleString('en-US'),
      fmtFailed(r.failed),
      fmtNum(r.achievedPerSecond),
      `${fmtNum((100 * r.achievedPerSecond) / r.quotaPerSecond)}%`,
      r.throttledAttempts.toLocaleString('en-US'),
      r.requests.toLocaleString('en-US'),
      r.clientRatePerSecond === null ? 'n/a' : `${fmtNum(r.clientRatePerSecond)}/s`,
    ]),
  };
  const main = runs.find((r) => r.quotaPerSecond === QUOTA_TARGET_RATE) ?? runs[0]!;
  const nonDeadline = Object.entries(main.failed).filter(([code]) => code !== 'THROTTLED' && code !== 'TIMEOUT');
  const target = evaluateTarget(
    QUOTA_TARGET,
    nonDeadline.length > 0 ? null : main.achievedPerSecond / main.quotaPerSecond,
    nonDeadline.length > 0 ? `calls failed for reasons other than their deadline: ${fmtFailed(Object.fromEntries(nonDeadline))}` : undefined,
  );
  const notes = [
    `quota: ${(durationMs / 1000).toFixed(1)} s per run; failures THROTTLED / TIMEOUT are calls that ran out of their 10 s deadline`,
    'quota: "of quota" is bounded by what this machine can seal through the SDK and an in-process emulator: where the quota is above that, no attempt is throttled and the row measures the machine',
  ];
  return { table, target, runs, notes };
}
