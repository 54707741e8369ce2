/**
 * RetryInfo through the real SDK clients, over gRPC and REST: the emulator's throttling answers (fault mode) carry a
 * google.rpc.RetryInfo detail with varied `retry_delay` values (google/rpc/error_details.proto: "Clients should wait
 * at least this long between retrying the same request"), and the shared resilience waits at least that long before
 * each retry, within the call's deadline. The sleep is injected and records the delays chosen.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { keyfoldRejectionOf } from '@keyfold/conformance';
import type { ResilienceOptions } from '@keyfold/envelope-core';
import { createGcpKmsProvider } from '../src/index.js';
import { asProviderClient, freshKeyId, sdkClient, startGcpKmsEmulator, type GcpKmsEmulator, type Transport } from './helpers.js';

let emu: GcpKmsEmulator;
const clients: Partial<Record<Transport, ReturnType<typeof sdkClient>>> = {};

beforeAll(async () => {
  emu = await startGcpKmsEmulator();
  clients.grpc = sdkClient(emu, 'grpc');
  clients.rest = sdkClient(emu, 'rest');
});
afterAll(async () => {
  await Promise.all([clients.grpc?.close(), clients.rest?.close()]);
  await emu.close();
});
afterEach(() => emu.faults.clear());

const KEY = Uint8Array.from({ length: 32 }, (_, i) => i);

function recordingSleep(): { sleeps: number[]; sleep: NonNullable<ResilienceOptions['sleep']> } {
  const sleeps: number[] = [];
  return { sleeps, sleep: (ms) => (sleeps.push(ms), Promise.resolve()) };
}

for (const transport of ['grpc', 'rest'] as const) {
  describe(`Cloud KMS over ${transport}: RetryInfo`, () => {
    it('each retry waits the retry_delay of the RESOURCE_EXHAUSTED answer (varied values), not the shorter backoff', async () => {
      const { sleeps, sleep } = recordingSleep();
      const provider = await createGcpKmsProvider({
        keyName: emu.createKey(freshKeyId()),
        client: asProviderClient(clients[transport]!),
        resilience: { sleep, retry: { maxThrottledAttempts: 4, baseDelayMs: 1, maxDelayMs: 2 }, deadlineMs: 60_000, circuitBreaker: false, rateLimit: false },
      });
      emu.faults.set({ throttleRatio: 1, operations: ['Encrypt'], retryAfterSeconds: { min: 1, max: 9 }, seed: 5 });
      const err = await keyfoldRejectionOf(provider.wrapKey(KEY, { t: '1' }));
      expect(err.code).toBe('THROTTLED');
      const sent = emu.faults.retryAfterSent;
      expect(sent).toHaveLength(4);
      expect(new Set(sent).size).toBeGreaterThan(1);
      expect(sleeps).toEqual(sent.slice(0, 3).map((s) => s * 1000));
      expect(err.retryAfterMs).toBe(sent[3]! * 1000);
      await provider.close();
    });

    it('a retry_delay longer than what is left of the deadline: THROTTLED after one call, no wait', async () => {
      const { sleeps, sleep } = recordingSleep();
      const provider = await createGcpKmsProvider({
        keyName: emu.createKey(freshKeyId()),
        client: asProviderClient(clients[transport]!),
        resilience: { sleep, retry: { maxThrottledAttempts: 4 }, deadlineMs: 2000, rateLimit: false },
      });
      emu.faults.set({ throttleRatio: 1, operations: ['Encrypt'], retryAfterSeconds: { min: 4, max: 4 } });
      emu.resetCounters();
      const err = await keyfoldRejectionOf(provider.wrapKey(KEY, {}));
      expect(err.code).toBe('THROTTLED');
      expect(err.retryAfterMs).toBe(4000);
      expect(sleeps).toEqual([]);
      expect(emu.counters.byOperation.Encrypt).toBe(1);
      await provider.close();
    });
  });
}
