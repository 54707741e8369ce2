/**
 * `keyfold status` reports this run's provider call counters (issue 14, section 5, provider side of `key-stats`):
 * against the AWS KMS emulator with seeded 5xx faults, the reported calls / attempts / retries match what the
 * emulator served; a local provider, which keeps no counters, says so.
 */
import { join } from 'node:path';
import { startAwsKmsEmulator, type AwsKmsEmulator } from '@keyfold/emulators';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyfold, keyfoldAsync, makeTempDir, PASSPHRASE, removeDir } from './helpers.js';

const env = { AWS_ACCESS_KEY_ID: 'AKIDTEST', AWS_SECRET_ACCESS_KEY: 'emulator-secret', AWS_REGION: 'us-east-1' };
let emu: AwsKmsEmulator;
let work: string;
let dir: string;

beforeAll(async () => {
  emu = await startAwsKmsEmulator({ port: 0 });
  await emu.createKey({ alias: 'alias/keyfold' });
  work = makeTempDir();
  dir = join(work, 'kf');
  const r = await keyfoldAsync(['init', '--dir', dir, '--provider', 'aws-kms', '--key-id', 'alias/keyfold', '--endpoint', emu.url], { env });
  expect(r.status, r.stderr).toBe(0);
});
afterAll(async () => {
  await emu.close();
  removeDir(work);
});

/** Seed 7 at 50%: the first two ListKeyRotations answer 500, the third is served. */
function flakyListKeyRotations(): void {
  emu.faults.set({ serverErrorRatio: 0.5, seed: 7, operations: ['ListKeyRotations'] });
  emu.resetCounters();
}

describe('keyfold status: provider call counters', () => {
  it('--json: provider.calls counts the describe call, its attempts and retries, matching the emulator', async () => {
    flakyListKeyRotations();
    try {
      const r = await keyfoldAsync(['status', '--dir', dir, '--json'], { env });
      expect(r.status, r.stderr).toBe(0);
      const calls = (JSON.parse(r.out) as { provider: { calls: unknown } }).provider.calls;
      expect(calls).toMatchObject({ calls: 1, attempts: 3, retries: 2, failures: 0, timeouts: 0, rejectedByBreaker: 0, circuit: 'closed' });
      // 5xx only: nothing throttled, so the client-side rate limit stayed idle (no ratePerSecond).
      expect(calls).toMatchObject({ throttled: 0, rateLimited: 0 });
      expect(calls).not.toHaveProperty('ratePerSecond');
      // Server side: one DescribeKey when the provider opened, then one DescribeKey + ListKeyRotations per attempt.
      expect(emu.counters.byOperation.ListKeyRotations).toBe(3);
      expect(emu.counters.byOperation.DescribeKey).toBe(4);
    } finally {
      emu.faults.clear();
    }
  });

  it('text output has a provider calls line', async () => {
    flakyListKeyRotations();
    try {
      const r = await keyfoldAsync(['status', '--dir', dir], { env });
      expect(r.status, r.stderr).toBe(0);
      expect(r.out).toMatch(/provider calls\s+1 call, 3 attempts \(2 retries\), 0 failed, 0 timed out, 0 refused by the breaker; circuit closed\n/);
    } finally {
      emu.faults.clear();
    }
  });

  it('a local provider keeps no counters: null in --json, said so in text', () => {
    const local = join(work, 'local');
    const penv = { KEYFOLD_PASSPHRASE: PASSPHRASE };
    expect(keyfold(['init', '--dir', local, '--kdf', 'scrypt'], { env: penv }).status).toBe(0);
    const json = keyfold(['status', '--dir', local, '--json'], { env: penv });
    expect(json.status, json.stderr).toBe(0);
    expect((JSON.parse(json.out) as { provider: Record<string, unknown> }).provider).toHaveProperty('calls', null);
    const text = keyfold(['status', '--dir', local], { env: penv });
    expect(text.out).toMatch(/provider calls\s+not counted \(local provider: no retries, no circuit breaker\)/);
  });
});
