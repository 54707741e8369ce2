/**
 * nsmSource through the real native binding (@keyfold/nsm-ioctl: open(2) + ioctl(2) NSM_IOCTL_RAW) against the NSM
 * emulator, which stands in for the kernel driver by LD_PRELOAD in a child process. In that child: the full Recipient
 * flow with @keyfold/provider-aws against the AWS KMS emulator (which verifies every document against the test root),
 * the document verified by verifyAttestationDocument, refresh after the age limit, 100 concurrent first calls, and
 * every NSM failure mapped to its error code.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAwsKmsEmulator, startNsmEmulator, type AwsKmsEmulator, type NsmEmulator } from '@keyfold/emulators';
import { nsmSource } from '../src/index.js';
import { PCR0, makeTestCa, signerOf, workDir } from './fixtures.js';

const require = createRequire(import.meta.url);
const modules = {
  attestation: pathToFileURL(fileURLToPath(new URL('../dist/index.js', import.meta.url))).href,
  aws: pathToFileURL(require.resolve('@keyfold/provider-aws')).href,
  core: pathToFileURL(require.resolve('@keyfold/envelope-core')).href,
};

const ca = makeTestCa('nsm');
let nsm: NsmEmulator;
let kms: AwsKmsEmulator;
let keyArn: string;
beforeAll(async () => {
  nsm = await startNsmEmulator({ signer: signerOf(ca) });
  kms = await startAwsKmsEmulator({ port: 0, attestationRoots: [ca.rootPem] });
  keyArn = (await kms.createKey({ keySpec: 'SYMMETRIC_DEFAULT' })).Arn;
});
afterAll(async () => {
  await nsm.close();
  await kms.close();
});

let scripts = 0;
/** Runs `body` in an ESM child that sees the emulated /dev/nsm; `body` returns JSON-able data. */
async function inEnclave(body: string, env: Record<string, string> = nsm.env): Promise<Record<string, unknown>> {
  const script = join(workDir, `enclave-${++scripts}.mjs`);
  writeFileSync(
    script,
    `import * as attestation from ${JSON.stringify(modules.attestation)};
import * as aws from ${JSON.stringify(modules.aws)};
import * as core from ${JSON.stringify(modules.core)};
const device = ${JSON.stringify(nsm.devicePath)};
const kmsOptions = ${JSON.stringify({ keyId: keyArn, region: kms.region, endpoint: kms.url, credentials: { accessKeyId: 'AKIDKEYFOLDTEST', secretAccessKey: 'emulator-does-not-check' } })};
const rootPem = ${JSON.stringify(ca.rootPem)};
const failure = (e) => ({ name: e.name, code: e.code, message: e.message });
const out = await (async () => { ${body} })();
process.stdout.write(JSON.stringify(out));
`,
  );
  // Asynchronous: both emulators answer from this process's event loop.
  const { stdout } = await promisify(execFile)(process.execPath, [script], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 30_000 });
  return JSON.parse(stdout) as Record<string, unknown>;
}

describe('nsmSource through /dev/nsm (emulated driver)', () => {
  it('attested GenerateDataKey and Decrypt with a document from the NSM; the document verifies and names the key', async () => {
    const before = nsm.counters.attestations;
    kms.resetCounters();
    const out = await inEnclave(`
      const nonce = Buffer.from('a fresh nonce 16');
      const manager = attestation.createAttestationManager({ source: attestation.nsmSource({ devicePath: device }), nonce, userData: Buffer.from('app v1') });
      const provider = await aws.createAwsKmsProvider({ ...kmsOptions, recipient: manager.recipient({ required: true }) });
      const envelope = core.createEnvelope({ providers: [provider] });
      const sealed = await envelope.seal('for the enclave only', { tenant: 't1' });
      const opened = Buffer.from(await envelope.open(sealed, { context: { tenant: 't1' } })).toString();
      const refused = await envelope.open(sealed, { context: { tenant: 't2' } }).then(() => 'opened', failure);
      const doc = attestation.verifyAttestationDocument(await manager.getDocument(), { roots: [rootPem], nonce, maxAge: 60_000, expectedPcrs: { 0: ${JSON.stringify(PCR0.toString('hex'))} } });
      const status = manager.getStatus();
      await envelope.close(); await provider.close(); manager.destroy();
      return { opened, refused, status, publicKeyBytes: doc.publicKey?.length, userData: Buffer.from(doc.userData).toString(), moduleId: doc.moduleId };`);
    expect(out.opened).toBe('for the enclave only');
    expect(out.refused).toMatchObject({ code: 'CONTEXT_MISMATCH' }); // the envelope refuses before asking KMS
    expect(out.status).toMatchObject({ state: 'ready', source: 'nsm', keyPairsGenerated: 1, documentsFetched: 1, rejections: 0, fallbacks: 0 });
    expect(out.publicKeyBytes).toBe(294); // DER SPKI of the RSA-2048 key pair
    expect(out.userData).toBe('app v1');
    expect(out.moduleId).toMatch(/^i-[0-9a-f]+-enc[0-9a-f]+$/);
    expect(nsm.counters.attestations - before).toBe(1);
    expect(Buffer.from(nsm.counters.last!.nonce!).toString()).toBe('a fresh nonce 16');
    expect(kms.counters.byOperation.GenerateDataKey).toBe(1);
    expect(kms.counters.byOperation.Decrypt).toBe(1);
  });

  it('100 concurrent first calls: one key pair, one NSM request; refresh after the age limit asks the NSM again', async () => {
    const before = nsm.counters.attestations;
    const out = await inEnclave(`
      let t = 1_000_000;
      const manager = attestation.createAttestationManager({ source: attestation.nsmSource({ devicePath: device }), maxDocumentAge: 60_000, now: () => t });
      const docs = await Promise.all(Array.from({ length: 100 }, () => manager.getDocument()));
      const same = docs.every((d) => Buffer.from(d).equals(Buffer.from(docs[0])));
      const first = manager.getStatus();
      t += 60_000;
      const refreshed = !Buffer.from(await manager.getDocument()).equals(Buffer.from(docs[0]));
      const second = manager.getStatus();
      manager.destroy();
      return { same, first, refreshed, second };`);
    expect(out.same).toBe(true);
    expect(out.first).toMatchObject({ keyPairsGenerated: 1, documentsFetched: 1 });
    expect(out.refreshed).toBe(true);
    expect(out.second).toMatchObject({ keyPairsGenerated: 2, documentsFetched: 2 });
    expect(nsm.counters.attestations - before).toBe(2);
  });

  it('NSM failures: its error codes, a garbled answer, a dead driver and fields over the NSM limits each have their code', async () => {
    const attest = `(extra = {}) => attestation.nsmSource({ devicePath: device }).attest({ publicKey: new Uint8Array(294).fill(1), ...extra }).then(() => 'ok', failure)`;
    nsm.faults.errorCode = 'InternalError';
    const internal = await inEnclave(`return (${attest})();`);
    nsm.faults.errorCode = 'InvalidArgument';
    const invalid = await inEnclave(`return (${attest})();`);
    nsm.faults.errorCode = undefined;
    nsm.faults.garbage = true;
    const garbage = await inEnclave(`return (${attest})();`);
    nsm.faults.garbage = false;
    nsm.faults.oversize = true;
    const oversize = await inEnclave(`return (${attest})();`);
    nsm.faults.oversize = false;
    const before = nsm.counters.attestations + nsm.counters.errors;
    const limits = await inEnclave(`return [await (${attest})({ userData: new Uint8Array(513) }), await (${attest})({ nonce: new Uint8Array(513) }), await (${attest})({ publicKey: new Uint8Array(1025) })];`);
    expect(nsm.counters.attestations + nsm.counters.errors).toBe(before); // refused before the ioctl
    const dead = await inEnclave(`return (${attest})();`, { ...nsm.env, KEYFOLD_NSM_EMULATOR_SOCKET: join(workDir, 'nobody.sock') });
    const required = await inEnclave(`
      const manager = attestation.createAttestationManager({ source: attestation.nsmSource({ devicePath: device }) });
      const provider = await aws.createAwsKmsProvider({ ...kmsOptions, resilience: { retry: { maxAttempts: 1 } }, recipient: manager.recipient({ required: true }) });
      const r = await provider.generateDataKey({}).then(() => 'plain call made', failure);
      await provider.close(); manager.destroy();
      return r;`, { ...nsm.env, KEYFOLD_NSM_EMULATOR_SOCKET: join(workDir, 'nobody.sock') });

    expect(internal).toMatchObject({ code: 'UNAVAILABLE', message: expect.stringContaining('InternalError') as unknown });
    expect(invalid).toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining('InvalidArgument') as unknown });
    expect(garbage).toMatchObject({ code: 'INTERNAL' });
    expect(oversize).toMatchObject({ code: 'LIMIT_EXCEEDED', message: expect.stringContaining('EMSGSIZE') as unknown });
    expect(limits).toEqual([
      expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringContaining('userData is 513 bytes') as unknown }),
      expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringContaining('nonce is 513 bytes') as unknown }),
      expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringContaining('publicKey is 1025 bytes') as unknown }),
    ]);
    expect(dead).toMatchObject({ code: 'UNAVAILABLE', message: expect.stringContaining('ioctl: EIO') as unknown });
    expect(required).not.toBe('plain call made');
    expect(required).toMatchObject({ code: expect.stringMatching(/^(UNAVAILABLE|CONFIG_INVALID)$/) as unknown });
  });
});

describe('nsmSource against the real kernel (no emulated driver)', () => {
  it('a path that is not an NSM device is UNAVAILABLE, naming the ioctl error', async () => {
    const file = join(workDir, 'plain-file');
    writeFileSync(file, '');
    await expect(nsmSource({ devicePath: file }).attest({ publicKey: new Uint8Array(294) })).rejects.toMatchObject({
      code: 'UNAVAILABLE',
      message: expect.stringContaining('is not a Nitro Secure Module device (ioctl: ENOTTY)') as unknown,
    });
  });

  it('an aborted request fails before touching the device', async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(nsmSource({ devicePath: nsm.devicePath }).attest({ publicKey: new Uint8Array(294), signal: controller.signal })).rejects.toThrow();
  });
});
