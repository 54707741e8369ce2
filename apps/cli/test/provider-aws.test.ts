/**
 * `--provider aws-kms` against the AWS KMS emulator of @keyfold/emulators, running in this process; the built CLI
 * talks to it with the real @aws-sdk/client-kms and credentials from the SDK's default chain (environment).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startAwsKmsEmulator, type AwsKmsEmulator, type KeyMetadataJson } from '@keyfold/emulators';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyfoldAsync, makeTempDir, removeDir } from './helpers.js';

const SECRET_KEY = 'aws-secret-access-key-for-the-test';
const env = (accessKeyId = 'AKIDTEST'): Record<string, string> => ({
  AWS_ACCESS_KEY_ID: accessKeyId,
  AWS_SECRET_ACCESS_KEY: SECRET_KEY,
  AWS_REGION: 'us-east-1',
});

let emu: AwsKmsEmulator;
let key: KeyMetadataJson;
let work: string;
let dir: string;

beforeAll(async () => {
  emu = await startAwsKmsEmulator({ port: 0 });
  key = await emu.createKey({ alias: 'alias/keyfold' });
  work = makeTempDir();
  dir = join(work, 'kf');
});
afterAll(async () => {
  await emu.close();
  removeDir(work);
});

describe('keyfold with --provider aws-kms', () => {
  it('init resolves the alias and records ARN, region and endpoint, never a credential', async () => {
    const r = await keyfoldAsync(['init', '--dir', dir, '--provider', 'aws-kms', '--key-id', 'alias/keyfold', '--endpoint', emu.url, '--json'], {
      env: env(),
    });
    expect(r.status, r.stderr).toBe(0);
    const text = readFileSync(join(dir, 'config.json'), 'utf8');
    expect(JSON.parse(text).provider).toEqual({ kind: 'aws-kms', keyId: key.Arn, arn: key.Arn, region: 'us-east-1', endpoint: emu.url });
    expect(text).not.toContain('AKIDTEST');
    expect(text).not.toContain(SECRET_KEY);
    expect(JSON.parse(r.out)).toMatchObject({ ok: true, provider: { kind: 'aws-kms', keyId: key.Arn, protection: 'kms' } });
  });

  it('encrypt and decrypt round-trip through KMS; the envelope names the key ARN', async () => {
    const sealed = await keyfoldAsync(['encrypt', '--dir', dir, '--armor', '--context', 'tenant=acme'], { env: env(), input: 'kms secret' });
    expect(sealed.status, sealed.stderr).toBe(0);
    const info = await keyfoldAsync(['inspect', '--json'], { input: sealed.stdout });
    expect(JSON.parse(info.out).wrappedKeys[0]).toMatchObject({ kind: 'aws-kms', keyId: key.Arn });
    const opened = await keyfoldAsync(['decrypt', '--dir', dir, '--context', 'tenant=acme'], { env: env(), input: sealed.stdout });
    expect(opened.status, opened.stderr).toBe(0);
    expect(opened.out).toBe('kms secret');
  });

  it('status and provider probe report latency and capabilities', async () => {
    const status = await keyfoldAsync(['status', '--dir', dir, '--json'], { env: env() });
    expect(status.status, status.stderr).toBe(0);
    const s = JSON.parse(status.out);
    expect(s.provider).toMatchObject({ kind: 'aws-kms', keyId: key.Arn, capabilities: { generateDataKey: true, rewrapKey: true } });
    expect(typeof s.provider.latencyMs).toBe('number');
    const probe = await keyfoldAsync(['provider', 'probe', '--dir', dir], { env: env() });
    expect(probe.status, probe.stderr).toBe(0);
    expect(probe.out).toMatch(/status\s+ok/);
    expect(probe.out).toMatch(/latency\s+[\d.]+ ms/);
    expect(probe.out).toMatch(/capabilities\s+wrap, unwrap, generateDataKey, rewrapKey/);
  });

  it('an access key KMS refuses: exit 3 ACCESS_DENIED (status, and init writes nothing); probe reports it, exit 1', async () => {
    emu.denyAccessKey('AKIDDENIED');
    const status = await keyfoldAsync(['status', '--dir', dir], { env: env('AKIDDENIED') });
    expect(status.status).toBe(3);
    expect(status.stderr).toContain('[ACCESS_DENIED]');
    const init = await keyfoldAsync(['init', '--dir', join(work, 'denied'), '--provider', 'aws-kms', '--key-id', key.Arn, '--endpoint', emu.url], {
      env: env('AKIDDENIED'),
    });
    expect(init.status).toBe(3);
    expect(() => readFileSync(join(work, 'denied', 'config.json'))).toThrow();
    const probe = await keyfoldAsync(['provider', 'probe', '--dir', dir, '--json'], { env: env('AKIDDENIED') });
    expect(probe.status).toBe(1);
    expect(JSON.parse(probe.out)).toMatchObject({ ok: false, kind: 'aws-kms', keyId: key.Arn, error: { code: 'ACCESS_DENIED' } });
  });

  it('provider probe --json and text report throttles, retries and the client rate', async () => {
    // Every other KMS call throttled (seeded), no Retry-After wait: the probe still succeeds, and says so.
    emu.faults.set({ throttleRatio: 0.5, retryAfterSeconds: { min: 0, max: 0 }, seed: 7 });
    emu.resetCounters();
    try {
      const r = await keyfoldAsync(['provider', 'probe', '--dir', dir, '--json'], { env: env() });
      expect(r.status, r.stderr + r.out).toBe(0);
      const j = JSON.parse(r.out) as { ok: boolean; calls: Record<string, unknown> };
      expect(j.ok).toBe(true);
      const throttled = emu.counters.throttled;
      expect(throttled).toBeGreaterThan(0);
      expect(j.calls).toMatchObject({ failures: 0, circuit: 'closed', rejectedByBreaker: 0 });
      expect(j.calls.throttled).toBeGreaterThan(0);
      expect(j.calls.throttled).toBeLessThanOrEqual(throttled);
      expect(j.calls.retries).toBe(j.calls.throttled);
      expect(typeof j.calls.ratePerSecond).toBe('number'); // the rate limit switched on at the first throttle
      const text = await keyfoldAsync(['provider', 'probe', '--dir', dir], { env: env() });
      expect(text.status, text.stderr).toBe(0);
      expect(text.out).toMatch(/provider calls\s+\d+ calls?, \d+ attempts? \(\d+ retr(y|ies)\)/);
      expect(text.out).toMatch(/throttling\s+\d+ throttled, \d+ waited for the rate limit; client rate /);
    } finally {
      emu.faults.clear();
    }
    const calm = await keyfoldAsync(['provider', 'probe', '--dir', dir, '--json'], { env: env() });
    expect(JSON.parse(calm.out).calls).toMatchObject({ throttled: 0, retries: 0, ratePerSecond: null });
  });

  it('with the service down, probe reports ok:false UNAVAILABLE and exits 1', async () => {
    emu.faults.set({ outage: true });
    try {
      const r = await keyfoldAsync(['provider', 'probe', '--dir', dir, '--json'], { env: env() });
      expect(r.status).toBe(1);
      expect(JSON.parse(r.out)).toMatchObject({ ok: false, kind: 'aws-kms', error: { code: 'UNAVAILABLE' } });
    } finally {
      emu.faults.clear();
    }
  });

  it('kek add points at KMS rotation instead: exit 1 UNSUPPORTED', async () => {
    const r = await keyfoldAsync(['kek', 'add', '--dir', dir], { env: env() });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`aws kms rotate-key-on-demand --key-id ${key.Arn}`);
    expect(r.stderr).toContain('[UNSUPPORTED]');
  });

  it('plain http to another host is refused in production before any request', async () => {
    const r = await keyfoldAsync(['init', '--dir', join(work, 'http'), '--provider', 'aws-kms', '--key-id', 'alias/keyfold', '--endpoint', 'http://kms.example.test:4566'], {
      env: env(),
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('plain http to another host');
    expect(r.stderr).toContain('[CONFIG_INVALID]');
  });
});
