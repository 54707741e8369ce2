// Runs the KMS providers section with tiny budgets. Asserts shapes and call counts only, never timings.
import { describe, expect, it } from 'vitest';
import { runKmsProviders, type ProviderRun } from '../src/sections/kms-providers.js';
import type { QuotaRun } from '../src/sections/kms-quota.js';

describe('bench: kms-providers section', () => {
  it('measures every provider and counts one provider call per seal without the cache, one in all with it', async () => {
    const section = await runKmsProviders({ quick: true, latencyPairs: 5, throughputMs: 20, concurrency: 4, seals: 50, quotaMs: 1500, quotas: [40] });
    expect(section.id).toBe('kms-providers');
    const runs = (section.data as { runs: ProviderRun[] }).runs;
    expect(runs.map((r) => r.id)).toEqual(['aws-kms-symmetric', 'aws-kms-rsa', 'vault-transit', 'vault-transit-derived']);
    const backendPerSeal: Record<string, number> = { 'aws-kms-symmetric': 1, 'aws-kms-rsa': 0, 'vault-transit': 1, 'vault-transit-derived': 1 };
    for (const r of runs) {
      expect(r.error).toBeUndefined();
      expect(r.latency!.pairs).toBe(5);
      const [off, on] = r.calls;
      expect(off).toMatchObject({ cache: false, seals: 50, backendRequests: 50 * backendPerSeal[r.id]! });
      expect(off!.providerCalls.total).toBe(50);
      expect(on).toMatchObject({ cache: true, seals: 50, backendRequests: backendPerSeal[r.id]! });
      expect(on!.providerCalls.total).toBe(1);
      expect(off!.providerCallsPer100k).toBe(100_000);
    }
    // AWS symmetric wrapKey = Encrypt + Decrypt, unwrapKey = Decrypt; RSA wraps locally.
    expect(runs[0]!.latency!.requestsPerPair).toBe(3);
    expect(runs[1]!.latency!.requestsPerPair).toBe(1);
    expect(runs[2]!.latency!.requestsPerPair).toBe(2);
    expect(section.tables).toHaveLength(3);
    // The quota rows: a 40 calls/s quota (under any machine's capacity), 32 callers; counts only (the rate is the bench's to report, not to assert).
    const quota = (section.data as { quota: QuotaRun[] }).quota;
    expect(quota.map((q) => q.quotaPerSecond)).toEqual([40, 40]);
    expect(quota.map((q) => q.label)).toEqual(['default settings (adaptive rate limit on)', 'rate limit off (rateLimit: false)']);
    for (const q of quota) {
      expect(q.succeeded).toBeGreaterThan(0);
      expect(q.throttledAttempts).toBeGreaterThan(0); // 32 callers do go over the quota
      expect(Object.keys(q.failed).every((code) => code === 'THROTTLED' || code === 'TIMEOUT')).toBe(true);
    }
    expect(quota[0]!.clientRatePerSecond).not.toBeNull(); // the adaptive limit switched on
    expect(section.targets.map((t) => t.id)).toEqual(['kms-quota-rate']);
    expect(section.notes.some((n) => n.includes('scaled x2000'))).toBe(true);
    expect(runs[0]!.calls[1]!.providerCallsPer100k).toBeGreaterThanOrEqual(1);
  });
});
