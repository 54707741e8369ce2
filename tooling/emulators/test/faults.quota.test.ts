/**
 * Quota mode: at most R requests per second per operation group, the excess answered with the service's throttling
 * error (AWS KMS "Request quotas": the cryptographic operations share one quota; Cloud KMS "Quotas"). Counted with an
 * injected clock in the controller, and over the wire through the AWS KMS emulator.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { FaultController, startAwsKmsEmulator } from '../src/index.js';

describe('FaultController quota', () => {
  it('R per second per group: a burst of R passes, the rest is throttled, and time refills the bucket', () => {
    let t = 0;
    const f = new FaultController(() => t);
    f.set({ quota: { requestsPerSecond: 10, groups: { crypto: ['Encrypt', 'Decrypt'] } } });
    const burst = Array.from({ length: 15 }, (_, i) => f.decide(i % 2 ? 'Encrypt' : 'Decrypt'));
    expect(burst.filter((d) => d === 'serve')).toHaveLength(10);
    expect(burst.slice(10).every((d) => d === 'throttle')).toBe(true);
    // Another group has its own bucket: DescribeKey (in no group) shares '*'.
    expect(Array.from({ length: 10 }, () => f.decide('DescribeKey')).every((d) => d === 'serve')).toBe(true);
    expect(f.decide('DescribeKey')).toBe('throttle');
    t += 500; // half a second: 5 more crypto requests
    const later = Array.from({ length: 8 }, () => f.decide('Encrypt'));
    expect(later.filter((d) => d === 'serve')).toHaveLength(5);
    expect(f.quotaThrottled).toBe(5 + 1 + 3);
    expect(f.quotaAccepted).toEqual({ crypto: 15, '*': 10 });
    // Over a long steady run the accepted rate is R.
    f.set({ quota: { requestsPerSecond: 200 } });
    let served = 0;
    for (let i = 0; i < 10_000; i++) {
      t += 1; // 1,000 requests per second offered for 10 s
      if (f.decide('Encrypt') === 'serve') served++;
    }
    expect(served).toBeGreaterThanOrEqual(2000);
    expect(served).toBeLessThanOrEqual(2000 + 200);
  });

  it('bad quotas are refused', () => {
    const f = new FaultController();
    expect(() => f.set({ quota: { requestsPerSecond: 0 } })).toThrow(RangeError);
    expect(() => f.set({ quota: { requestsPerSecond: Number.NaN } })).toThrow(RangeError);
    expect(() => f.set({ quota: { requestsPerSecond: 1, groups: { a: 'Encrypt' as unknown as string[] } } })).toThrow(TypeError);
  });
});

describe('quota over the wire (AWS KMS emulator)', () => {
  const emuP = startAwsKmsEmulator({ port: 0 });
  afterAll(async () => (await emuP).close());

  it('requests over the quota get ThrottlingException (400) and count as throttled', async () => {
    const emu = await emuP;
    const key = await emu.createKey({ keySpec: 'SYMMETRIC_DEFAULT' });
    emu.faults.set({ quota: { requestsPerSecond: 5 }, retryAfterSeconds: false });
    emu.resetCounters();
    const statuses: number[] = [];
    const types: unknown[] = [];
    for (let i = 0; i < 12; i++) {
      const res = await fetch(emu.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-amz-json-1.1',
          'x-amz-target': 'TrentService.DescribeKey',
          authorization: `AWS4-HMAC-SHA256 Credential=AKIDTEST/20250101/${emu.region}/kms/aws4_request, SignedHeaders=host, Signature=00`,
        },
        body: JSON.stringify({ KeyId: key.KeyId }),
      });
      statuses.push(res.status);
      types.push(((await res.json()) as { __type?: unknown }).__type);
    }
    // Twelve requests in well under a second: the first five (plus at most one refilled) pass.
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(5);
    expect(statuses.filter((s) => s === 200).length).toBeLessThanOrEqual(7);
    expect(types.filter((x) => x === 'ThrottlingException').length).toBe(statuses.filter((s) => s === 400).length);
    expect(emu.counters.throttled).toBe(emu.faults.quotaThrottled);
    expect(emu.counters.throttled).toBeGreaterThanOrEqual(5);
  });
});
