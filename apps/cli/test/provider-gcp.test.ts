/**
 * `--provider gcp-kms` against the Cloud KMS emulator of @keyfold/emulators (gRPC and REST), running in this
 * process; the built CLI uses the real @google-cloud/kms client over a plaintext loopback connection.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startGcpKmsEmulator, type GcpKmsEmulator } from '@keyfold/emulators';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyfoldAsync, makeTempDir, removeDir } from './helpers.js';

let emu: GcpKmsEmulator;
let keyName: string;
let work: string;

beforeAll(async () => {
  emu = await startGcpKmsEmulator();
  keyName = emu.createKey('kek');
  work = makeTempDir();
});
afterAll(async () => {
  await emu.close();
  removeDir(work);
});

describe('keyfold with --provider gcp-kms', () => {
  for (const transport of ['grpc', 'rest'] as const) {
    it(`over ${transport}: init, encrypt/decrypt round-trip, status and probe`, async () => {
      const dir = join(work, transport);
      const port = transport === 'grpc' ? emu.grpcPort : emu.restPort;
      const endpoint = `127.0.0.1:${port}`;
      const init = await keyfoldAsync(['init', '--dir', dir, '--provider', 'gcp-kms', '--key-name', keyName, '--endpoint', endpoint, '--transport', transport]);
      expect(init.status, init.stderr).toBe(0);
      expect(init.out).toContain('without credentials');
      expect(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')).provider).toEqual({
        kind: 'gcp-kms',
        keyId: keyName,
        transport,
        endpoint,
        insecure: true,
      });

      const sealed = await keyfoldAsync(['encrypt', '--dir', dir, '--armor', '--context', 'tenant=acme'], { input: `via ${transport}` });
      expect(sealed.status, sealed.stderr).toBe(0);
      const opened = await keyfoldAsync(['decrypt', '--dir', dir, '--context', 'tenant=acme'], { input: sealed.stdout });
      expect(opened.status, opened.stderr).toBe(0);
      expect(opened.out).toBe(`via ${transport}`);

      const status = await keyfoldAsync(['status', '--dir', dir, '--json']);
      expect(status.status, status.stderr).toBe(0);
      const s = JSON.parse(status.out);
      expect(s.provider).toMatchObject({ kind: 'gcp-kms', keyId: keyName, activeVersion: '1', capabilities: { rotate: true } });
      expect(typeof s.provider.latencyMs).toBe('number');
      const probe = await keyfoldAsync(['provider', 'probe', '--dir', dir, '--json']);
      expect(probe.status, probe.stderr).toBe(0);
      expect(JSON.parse(probe.out)).toMatchObject({ ok: true, kind: 'gcp-kms', keyId: keyName, capabilities: { rotate: true } });
    });
  }

  it('with the service down, probe reports ok:false UNAVAILABLE and exits 1', async () => {
    emu.faults.set({ outage: true });
    try {
      const r = await keyfoldAsync(['provider', 'probe', '--dir', join(work, 'grpc'), '--json']);
      expect(r.status).toBe(1);
      expect(JSON.parse(r.out)).toMatchObject({ ok: false, kind: 'gcp-kms', error: { code: 'UNAVAILABLE' } });
    } finally {
      emu.faults.clear();
    }
  });

  it('kek add points at Cloud KMS rotation instead: exit 1 UNSUPPORTED', async () => {
    const r = await keyfoldAsync(['kek', 'add', '--dir', join(work, 'grpc')]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('gcloud kms keys versions create --project keyfold-test --location global --keyring keyfold --key kek --primary');
  });

  it('plaintext without credentials to another host is refused in production; a bad key name is a usage error', async () => {
    const insecure = await keyfoldAsync(
      ['init', '--dir', join(work, 'remote'), '--provider', 'gcp-kms', '--key-name', keyName, '--endpoint', 'kms.example.test:443', '--insecure'],
    );
    expect(insecure.status).toBe(1);
    expect(insecure.stderr).toContain('refused in production');
    const bad = await keyfoldAsync(['init', '--dir', join(work, 'bad'), '--provider', 'gcp-kms', '--key-name', 'kek', '--endpoint', `127.0.0.1:${emu.grpcPort}`]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('CryptoKey resource name');
  });
});
