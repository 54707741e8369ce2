/**
 * The shared resilience around Cloud KMS, through the real SDK clients against the emulator's fault injection:
 * throttling and 5xx under a 1,000-envelope workload, one retry loop only (gax's own is off), the circuit breaker
 * in an outage, and the per-call deadline.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rejectionOf, sealAndOpenMany } from '@keyfold/conformance';
import { CircuitOpenError, createEnvelope, isKeyfoldError } from '@keyfold/envelope-core';
import { createGcpKmsProvider } from '../src/index.js';
import { asProviderClient, freshKeyId, sdkClient, startGcpKmsEmulator, type GcpKmsEmulator, type Transport } from './helpers.js';

let emu: GcpKmsEmulator;
const clients: Record<Transport, ReturnType<typeof sdkClient> | undefined> = { grpc: undefined, rest: undefined };

beforeAll(async () => {
  emu = await startGcpKmsEmulator();
  clients.grpc = sdkClient(emu, 'grpc');
  clients.rest = sdkClient(emu, 'rest');
});

afterAll(async () => {
  await Promise.all([clients.grpc?.close(), clients.rest?.close()]);
  await emu.close();
});

/** Runs `fn(i)` for i in [0, n) with at most `width` in flight. */

const KEY = new Uint8Array(32).fill(0x42);

for (const transport of ['grpc', 'rest'] as const) {
  describe(`Cloud KMS over ${transport}: faults`, () => {
    it('seals and opens 1,000 envelopes with 30% throttling and 10% 5xx, every operation succeeding', async () => {
      const provider = await createGcpKmsProvider({
        keyName: emu.createKey(freshKeyId('load')),
        client: asProviderClient(clients[transport]!),
        // Failure chance per attempt is 0.4: 25 attempts leave 0.4^25 ~ 1e-10 per call. The breaker threshold sits
        // far above any plausible run of consecutive failures at that rate.
        resilience: { retry: { maxAttempts: 25, baseDelayMs: 1, maxDelayMs: 4 }, circuitBreaker: { failureThreshold: 60 }, deadlineMs: 60_000 },
      });
      const envelope = createEnvelope({ providers: [provider] });
      emu.resetCounters();
      // Retry-After 0: the volume run checks the retry loop, not the waits (gcp-kms.retry-after.test.ts does those).
      emu.faults.set({ throttleRatio: 0.3, serverErrorRatio: 0.1, retryAfterSeconds: { min: 0, max: 0 }, seed: transport === 'grpc' ? 11 : 12, operations: ['Encrypt', 'Decrypt'] });
      try {
        const n = 1000;
        expect(await sealAndOpenMany(envelope, n, 16)).toBe(n);
        const c = emu.counters;
        const stats = provider.resilienceStats()!;
        expect(c.throttled).toBeGreaterThan(100);
        expect(c.serverErrors).toBeGreaterThan(30);
        expect(stats.failures).toBe(0);
        expect(stats.calls).toBe(2 * n);
        // One retry loop: every throttled or 5xx answer was retried once by the core, never by gax as well.
        expect(stats.retries).toBe(c.throttled + c.serverErrors);
        expect(stats.attempts).toBe((c.byOperation.Encrypt ?? 0) + (c.byOperation.Decrypt ?? 0));
      } finally {
        emu.faults.clear();
        await envelope.close();
        await provider.close();
      }
    }, 120_000);

    it('makes exactly as many requests as the shared policy allows (gax retries are off)', async () => {
      const provider = await createGcpKmsProvider({
        keyName: emu.createKey(freshKeyId('once')),
        client: asProviderClient(clients[transport]!),
        resilience: { retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 2 }, circuitBreaker: false },
      });
      emu.resetCounters();
      emu.faults.set({ serverErrorRatio: 1, operations: ['Encrypt'] });
      try {
        const err = await rejectionOf(provider.wrapKey(KEY, {}));
        expect(isKeyfoldError(err, 'UNAVAILABLE')).toBe(true);
        expect((err as Error).cause).toBeDefined();
        expect(emu.counters.byOperation.Encrypt).toBe(3);
      } finally {
        emu.faults.clear();
        await provider.close();
      }
    }, 120_000); // thousands of calls with 40% of attempts failing can pass 30 s on a busy machine: a limit, not a timing check

    it('opens the circuit in an outage, fails fast without calling the service, and recovers', async () => {
      let clock = 0;
      const provider = await createGcpKmsProvider({
        keyName: emu.createKey(freshKeyId('outage')),
        client: asProviderClient(clients[transport]!),
        resilience: { retry: { maxAttempts: 1 }, circuitBreaker: { failureThreshold: 3, resetAfterMs: 1000 }, now: () => clock },
      });
      const wrapped = await provider.wrapKey(KEY, { a: '1' });
      emu.resetCounters();
      emu.faults.set({ outage: true });
      try {
        for (let i = 0; i < 3; i++) {
          const err = await rejectionOf(provider.wrapKey(KEY, {}));
          expect(isKeyfoldError(err, 'UNAVAILABLE')).toBe(true);
          expect(err).not.toBeInstanceOf(CircuitOpenError);
        }
        expect(emu.counters.outageRejected).toBe(3);
        expect(provider.resilienceStats()?.circuit).toBe('open');
        for (const call of [() => provider.wrapKey(KEY, {}), () => provider.unwrapKey(wrapped, { a: '1' }), () => provider.describe()]) {
          const err = await rejectionOf(call());
          expect(err).toBeInstanceOf(CircuitOpenError);
          expect(isKeyfoldError(err, 'UNAVAILABLE')).toBe(true);
        }
        expect(emu.counters.requests).toBe(3);
        expect(provider.resilienceStats()?.rejectedByBreaker).toBe(3);
        const probe = await provider.probe();
        expect(probe.ok).toBe(false);
        expect(probe.error?.code).toBe('UNAVAILABLE');

        emu.faults.clear();
        clock += 1000;
        expect(provider.resilienceStats()?.circuit).toBe('half-open');
        const back = await provider.unwrapKey(wrapped, { a: '1' });
        expect(Buffer.from(back)).toEqual(Buffer.from(KEY));
        expect(provider.resilienceStats()?.circuit).toBe('closed');
        expect((await provider.probe()).ok).toBe(true);
      } finally {
        emu.faults.clear();
        await provider.close();
      }
    });

    it('reports TIMEOUT when the service answers later than the deadline, and cancels the call', async () => {
      const provider = await createGcpKmsProvider({
        keyName: emu.createKey(freshKeyId('slow')),
        client: asProviderClient(clients[transport]!),
        resilience: { deadlineMs: 1_000, circuitBreaker: false }, // 1 s: the calls around the fault must fit on a busy machine
      });
      emu.resetCounters();
      emu.faults.set({ latency: { kind: 'fixed', ms: 30_000 }, operations: ['Encrypt'] });
      try {
        const err = await rejectionOf(provider.wrapKey(KEY, {}));
        expect(isKeyfoldError(err, 'TIMEOUT')).toBe(true);
        expect(provider.resilienceStats()?.timeouts).toBe(1);
        expect(emu.counters.byOperation.Encrypt).toBe(1);
        emu.faults.clear();
        const wrapped = await provider.wrapKey(KEY, {});
        expect(Buffer.from(await provider.unwrapKey(wrapped, {}))).toEqual(Buffer.from(KEY));
      } finally {
        emu.faults.clear();
        await provider.close();
      }
    });
  });
}
