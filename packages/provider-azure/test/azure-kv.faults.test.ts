/**
 * The shared resilience around Key Vault, through the real SDK clients against the emulator's fault injection:
 * throttling (429) and 5xx under a 1,000-envelope workload, one retry loop only (the SDK's is off), the circuit
 * breaker in an outage (connections reset), and the per-call deadline passed to the SDK as its abort signal.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rejectionOf, sealAndOpenMany } from '@keyfold/conformance';
import { CircuitOpenError, createEnvelope, isKeyfoldError, type ResilienceOptions } from '@keyfold/envelope-core';
import { createAzureKeyVaultProvider, type AzureKeyVaultProvider } from '../src/index.js';
import {
  clientOptionsFor,
  createSelfSignedCertificate,
  freshName,
  startAzureKeyVaultEmulator,
  staticCredential,
  type AzureKeyVaultEmulator,
  type SelfSignedCertificate,
} from './helpers.js';

let tls: SelfSignedCertificate;
let emu: AzureKeyVaultEmulator;

beforeAll(async () => {
  tls = createSelfSignedCertificate();
  emu = await startAzureKeyVaultEmulator({ tls, managedHsm: true });
});

afterAll(async () => {
  await emu.close();
});

async function make(resilience: ResilienceOptions, kty = 'RSA'): Promise<AzureKeyVaultProvider> {
  const name = freshName('faults');
  emu.createKey(name, { kty });
  return createAzureKeyVaultProvider({
    keyId: `${emu.httpsUrl!}/keys/${name}`,
    credential: staticCredential(),
    algorithm: kty === 'RSA' ? 'RSA-OAEP-256' : 'A256KW',
    clientOptions: clientOptionsFor(emu.httpsUrl!, tls),
    resilience,
  });
}

const KEY = new Uint8Array(32).fill(0x24);

describe('Key Vault: faults', () => {
  it('seals and opens 1,000 envelopes with 30% throttling and 10% 5xx, every operation succeeding', async () => {
    // Failure chance per attempt is 0.4: 25 attempts leave 0.4^25 ~ 1e-10 per call; the breaker threshold sits far
    // above any plausible run of consecutive failures at that rate.
    const provider = await make({ retry: { maxAttempts: 25, baseDelayMs: 1, maxDelayMs: 4 }, circuitBreaker: { failureThreshold: 60 }, deadlineMs: 60_000 });
    // Warm the versioned client (its first use GETs the key) before the faults start.
    await provider.unwrapKey(await provider.wrapKey(KEY, {}), {});
    const envelope = createEnvelope({ providers: [provider] });
    emu.resetCounters();
    // Retry-After 0: the volume run checks the retry loop, not the waits (azure-kv.retry-after.test.ts does those).
    emu.faults.set({ throttleRatio: 0.3, serverErrorRatio: 0.1, retryAfterSeconds: { min: 0, max: 0 }, seed: 21, operations: ['wrapKey', 'unwrapKey'] });
    const before = provider.resilienceStats()!;
    try {
      const n = 1000;
      expect(await sealAndOpenMany(envelope, n, 16)).toBe(n);
      const c = emu.counters;
      const stats = provider.resilienceStats()!;
      expect(c.throttled).toBeGreaterThan(100);
      expect(c.serverErrors).toBeGreaterThan(30);
      expect(stats.failures - before.failures).toBe(0);
      expect(stats.calls - before.calls).toBe(2 * n);
      // One retry loop: each throttled or 5xx answer was retried once by the core, never by the SDK as well.
      expect(stats.retries - before.retries).toBe(c.throttled + c.serverErrors);
      expect(stats.attempts - before.attempts).toBe((c.byOperation.wrapKey ?? 0) + (c.byOperation.unwrapKey ?? 0));
    } finally {
      emu.faults.clear();
      await envelope.close();
      await provider.close();
    }
  }, 120_000);

  it('makes exactly as many requests as the shared policy allows (SDK retries are off)', async () => {
    // Outages and throttles have separate budgets (throttles are otherwise retried until the deadline): 3 each.
    const provider = await make({ retry: { maxAttempts: 3, maxThrottledAttempts: 3, baseDelayMs: 1, maxDelayMs: 2 }, circuitBreaker: false, rateLimit: false });
    emu.resetCounters();
    for (const fault of [{ serverErrorRatio: 1 }, { throttleRatio: 1 }, { resetRatio: 1 }]) {
      emu.faults.set({ ...fault, retryAfterSeconds: { min: 0, max: 0 }, operations: ['wrapKey'] });
      const before = emu.counters.byOperation.wrapKey ?? 0;
      const err = await rejectionOf(provider.wrapKey(KEY, {}));
      expect(isKeyfoldError(err, 'throttleRatio' in fault ? 'THROTTLED' : 'UNAVAILABLE')).toBe(true);
      expect((err as Error).cause).toBeDefined();
      expect((emu.counters.byOperation.wrapKey ?? 0) - before).toBe(3);
    }
    emu.faults.clear();
    await provider.close();
  }, 120_000); // thousands of calls with 40% of attempts failing can pass 30 s on a busy machine: a limit, not a timing check

  it('opens the circuit in an outage, fails fast without calling the service, and recovers', async () => {
    let clock = 0;
    const provider = await make({ retry: { maxAttempts: 1 }, circuitBreaker: { failureThreshold: 3, resetAfterMs: 1000 }, now: () => clock });
    const wrapped = await provider.wrapKey(KEY, { a: '1' });
    emu.resetCounters();
    emu.faults.set({ outage: true });
    try {
      for (let i = 0; i < 3; i++) {
        const err = await rejectionOf(provider.wrapKey(KEY, {}));
        expect(isKeyfoldError(err, 'UNAVAILABLE')).toBe(true);
        expect(err).not.toBeInstanceOf(CircuitOpenError);
      }
      const reached = emu.counters.requests;
      expect(emu.counters.outageRejected).toBe(reached);
      expect(provider.resilienceStats()?.circuit).toBe('open');
      for (const call of [() => provider.wrapKey(KEY, {}), () => provider.unwrapKey(wrapped, { a: '1' }), () => provider.describe()]) {
        const err = await rejectionOf(call());
        expect(err).toBeInstanceOf(CircuitOpenError);
        expect(isKeyfoldError(err, 'UNAVAILABLE')).toBe(true);
      }
      expect(emu.counters.requests).toBe(reached);
      expect(provider.resilienceStats()?.rejectedByBreaker).toBe(3);
      emu.faults.clear();
      clock += 1000;
      expect(provider.resilienceStats()?.circuit).toBe('half-open');
      expect(Buffer.from(await provider.unwrapKey(wrapped, { a: '1' }))).toEqual(Buffer.from(KEY));
      expect(provider.resilienceStats()?.circuit).toBe('closed');
    } finally {
      emu.faults.clear();
      await provider.close();
    }
  });

  it('reports TIMEOUT when the service answers later than the deadline, and aborts the request', async () => {
    const provider = await make({ deadlineMs: 1_000, circuitBreaker: false }, 'oct-HSM'); // 1 s: the calls around the fault must fit on a busy machine
    await provider.wrapKey(KEY, {});
    emu.resetCounters();
    emu.faults.set({ latency: { kind: 'fixed', ms: 30_000 }, operations: ['wrapKey'] });
    try {
      const err = await rejectionOf(provider.wrapKey(KEY, {}));
      expect(isKeyfoldError(err, 'TIMEOUT')).toBe(true);
      expect(provider.resilienceStats()?.timeouts).toBe(1);
      expect(emu.counters.byOperation.wrapKey).toBe(1);
      emu.faults.clear();
      const wrapped = await provider.wrapKey(KEY, {});
      expect(Buffer.from(await provider.unwrapKey(wrapped, {}))).toEqual(Buffer.from(KEY));
    } finally {
      emu.faults.clear();
      await provider.close();
    }
  });
});
