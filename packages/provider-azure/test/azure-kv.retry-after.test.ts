/**
 * Retry-After through the real SDK: Key Vault answers 429 with a `Retry-After` header in seconds ("Azure Key Vault
 * throttling guidance"); the emulator's fault mode sends varied values, and the shared resilience waits at least that
 * long before each retry, within the call's deadline. The sleep is injected and records the delays chosen: nothing
 * here measures elapsed time.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { keyfoldRejectionOf } from '@keyfold/conformance';
import type { ResilienceOptions } from '@keyfold/envelope-core';
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
  emu = await startAzureKeyVaultEmulator({ tls });
});
afterAll(() => emu.close());
afterEach(() => emu.faults.clear());

const KEY = new Uint8Array(32).fill(0x31);

function recordingSleep(): { sleeps: number[]; sleep: NonNullable<ResilienceOptions['sleep']> } {
  const sleeps: number[] = [];
  return { sleeps, sleep: (ms) => (sleeps.push(ms), Promise.resolve()) };
}

async function make(resilience: ResilienceOptions): Promise<AzureKeyVaultProvider> {
  const name = freshName('retry-after');
  emu.createKey(name, { kty: 'RSA' });
  const provider = await createAzureKeyVaultProvider({
    keyId: `${emu.httpsUrl!}/keys/${name}`,
    credential: staticCredential(),
    algorithm: 'RSA-OAEP-256',
    clientOptions: clientOptionsFor(emu.httpsUrl!, tls),
    resilience,
  });
  // Warm the versioned client (its first use GETs the key) before the faults start.
  await provider.unwrapKey(await provider.wrapKey(KEY, {}), {});
  return provider;
}

describe('Key Vault: Retry-After', () => {
  it('each retry waits the Retry-After of the 429 (varied values), not the shorter backoff', async () => {
    const { sleeps, sleep } = recordingSleep();
    const provider = await make({ sleep, retry: { maxThrottledAttempts: 4, baseDelayMs: 1, maxDelayMs: 2 }, deadlineMs: 60_000, circuitBreaker: false, rateLimit: false });
    emu.faults.set({ throttleRatio: 1, operations: ['wrapKey'], retryAfterSeconds: { min: 1, max: 9 }, seed: 3 });
    const err = await keyfoldRejectionOf(provider.wrapKey(KEY, { t: '1' }));
    expect(err.code).toBe('THROTTLED');
    const sent = emu.faults.retryAfterSent;
    expect(sent).toHaveLength(4);
    expect(new Set(sent).size).toBeGreaterThan(1);
    expect(sleeps).toEqual(sent.slice(0, 3).map((s) => s * 1000));
    expect(err.retryAfterMs).toBe(sent[3]! * 1000);
    await provider.close();
  });

  it('a Retry-After longer than what is left of the deadline: THROTTLED after one request, no wait', async () => {
    const { sleeps, sleep } = recordingSleep();
    const provider = await make({ sleep, retry: { maxThrottledAttempts: 4 }, deadlineMs: 2000, rateLimit: false });
    emu.faults.set({ throttleRatio: 1, operations: ['wrapKey'], retryAfterSeconds: { min: 3, max: 3 } });
    emu.resetCounters();
    const err = await keyfoldRejectionOf(provider.wrapKey(KEY, {}));
    expect(err.code).toBe('THROTTLED');
    expect(err.retryAfterMs).toBe(3000);
    expect(sleeps).toEqual([]);
    expect(emu.counters.byOperation.wrapKey).toBe(1);
    await provider.close();
  });

  it('retryAfterSeconds: false sends no header; the policy falls back to its backoff', async () => {
    const { sleeps, sleep } = recordingSleep();
    const provider = await make({ sleep, random: () => 0.5, retry: { maxThrottledAttempts: 3, baseDelayMs: 100, maxDelayMs: 1000 }, circuitBreaker: false, rateLimit: false });
    emu.faults.set({ throttleRatio: 1, operations: ['wrapKey'], retryAfterSeconds: false });
    const err = await keyfoldRejectionOf(provider.wrapKey(KEY, {}));
    expect(err.code).toBe('THROTTLED');
    expect(err.retryAfterMs).toBeUndefined();
    expect(sleeps).toEqual([50, 100]);
    expect(emu.faults.retryAfterSent).toEqual([]);
    await provider.close();
  });
});
