/**
 * The binding's real open(2) and ioctl(2): errors straight from the kernel (no device, a file that is not an NSM
 * device), argument checks, and — in child processes that load the emulated NSM driver (tooling/emulators,
 * LD_PRELOAD) — full request/response round trips, concurrency and the driver's failures.
 */
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { createPrivateKey } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { arch, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Decoder, Encoder } from 'cbor-x';
import { startNsmEmulator, type NsmEmulator } from '@keyfold/emulators';
import { NSM_REQUEST_MAX_SIZE, NsmIoError, isNsmBindingAvailable, nsmIoctlRequestCode, nsmRequest } from '../src/index.js';

const encoder = new Encoder({ tagUint8Array: false, useRecords: false, useTag259ForMaps: false } as ConstructorParameters<typeof Encoder>[0]);
const decoder = new Decoder({ mapsAsObjects: false, useRecords: false });
const work = mkdtempSync(join(tmpdir(), 'keyfold-nsm-ioctl-'));
const builtModule = pathToFileURL(fileURLToPath(new URL('../dist/index.js', import.meta.url))).href;

let nsm: NsmEmulator;
beforeAll(async () => {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384', '-nodes', '-keyout', 'leaf.key', '-subj', '/CN=nsm-ioctl test', '-days', '1', '-outform', 'DER', '-out', 'leaf.der'], { cwd: work, stdio: 'ignore' });
  const certificate = readFileSync(join(work, 'leaf.der'));
  nsm = await startNsmEmulator({ signer: { key: createPrivateKey(readFileSync(join(work, 'leaf.key'))), certificate, cabundle: [certificate] } });
});
afterAll(async () => {
  await nsm.close();
  rmSync(work, { recursive: true, force: true });
});

function attestationRequest(fields: { public_key?: Uint8Array; user_data?: Uint8Array; nonce?: Uint8Array }): Uint8Array {
  return encoder.encode(new Map([['Attestation', new Map([['user_data', fields.user_data ?? null], ['nonce', fields.nonce ?? null], ['public_key', fields.public_key ?? null]])]]));
}

/** Runs `body` (an async function body that returns JSON-able data) in a node child that sees the emulated device. */
async function inEnclave(body: string, env: Record<string, string> = nsm.env): Promise<unknown> {
  const script = join(work, `child-${Math.random().toString(36).slice(2)}.mjs`);
  writeFileSync(script, `import * as nsm from ${JSON.stringify(builtModule)};\nconst device = ${JSON.stringify(nsm.devicePath)};\nconst out = await (async () => { ${body} })();\nprocess.stdout.write(JSON.stringify(out));\n`);
  // Asynchronous: the emulator answers from this process's event loop.
  const { stdout } = await promisify(execFile)(process.execPath, [script], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 20_000 });
  return JSON.parse(stdout);
}

describe('the binding, against the kernel', () => {
  it('is built and uses NSM_IOCTL_RAW', () => {
    expect(isNsmBindingAvailable()).toBe(true);
    if (arch() === 'x64' || arch() === 'arm64') expect(nsmIoctlRequestCode()).toBe(0xc0200a00);
  });

  it('no device: ENOENT from open', async () => {
    const err = await nsmRequest(join(work, 'absent'), new Uint8Array([0x60])).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NsmIoError);
    expect(err).toMatchObject({ code: 'ENOENT', syscall: 'open', errno: expect.any(Number) as unknown });
  });

  it('a regular file is not an NSM device: ENOTTY from ioctl', async () => {
    const file = join(work, 'not-a-device');
    writeFileSync(file, '');
    await expect(nsmRequest(file, new Uint8Array([0x60]))).rejects.toMatchObject({ code: 'ENOTTY', syscall: 'ioctl' });
  });

  it('a device that cannot be opened read-write: EACCES (unless root, which may open anything)', async () => {
    const file = join(work, 'read-only');
    writeFileSync(file, '', { mode: 0o400 });
    const expected = process.getuid?.() === 0 ? 'ENOTTY' : 'EACCES';
    await expect(nsmRequest(file, new Uint8Array([0x60]))).rejects.toMatchObject({ code: expected });
  });

  it('arguments are checked before any system call', async () => {
    await expect(nsmRequest(nsm.devicePath, new Uint8Array(0))).rejects.toThrow(RangeError);
    await expect(nsmRequest(nsm.devicePath, new Uint8Array(NSM_REQUEST_MAX_SIZE + 1))).rejects.toThrow(RangeError);
    await expect(nsmRequest('', new Uint8Array(1))).rejects.toThrow(TypeError);
    await expect(nsmRequest('/dev/nsm\0x', new Uint8Array(1))).rejects.toThrow(TypeError);
    await expect(nsmRequest(nsm.devicePath, 'text' as unknown as Uint8Array)).rejects.toThrow(TypeError);
    expect(nsm.counters.attestations + nsm.counters.errors).toBe(0);
  });
});

describe('the binding, with the emulated NSM driver', () => {
  it('sends the request bytes and returns the response the device wrote', async () => {
    const publicKey = Buffer.alloc(294, 7);
    const nonce = Buffer.from('0123456789abcdef');
    const request = Buffer.from(attestationRequest({ public_key: publicKey, nonce })).toString('base64');
    const out = await inEnclave(`const r = await nsm.nsmRequest(device, Buffer.from(${JSON.stringify(request)}, 'base64')); return Buffer.from(r).toString('base64');`) as string;
    const response = decoder.decode(Buffer.from(out, 'base64')) as Map<string, Map<string, Uint8Array>>;
    const document = response.get('Attestation')?.get('document');
    expect(document).toBeInstanceOf(Uint8Array);
    const [, , payload] = decoder.decode(document!) as [Uint8Array, unknown, Uint8Array, Uint8Array];
    const fields = decoder.decode(payload) as Map<string, unknown>;
    expect(Buffer.from(fields.get('public_key') as Uint8Array).equals(publicKey)).toBe(true);
    expect(Buffer.from(fields.get('nonce') as Uint8Array).equals(nonce)).toBe(true);
    expect(fields.get('user_data')).toBeNull();
    expect(nsm.counters.attestations).toBe(1);
  });

  it('32 requests in flight each get their own answer (thread pool, one descriptor each)', async () => {
    const before = nsm.counters.attestations;
    const requests = Array.from({ length: 32 }, (_, i) => Buffer.from(attestationRequest({ user_data: Buffer.from(`request ${i}`) })).toString('base64'));
    const out = await inEnclave(`const rs = ${JSON.stringify(requests)}; return Promise.all(rs.map(async (r) => Buffer.from(await nsm.nsmRequest(device, Buffer.from(r, 'base64'))).toString('base64')));`) as string[];
    out.forEach((b64, i) => {
      const document = (decoder.decode(Buffer.from(b64, 'base64')) as Map<string, Map<string, Uint8Array>>).get('Attestation')!.get('document')!;
      const payload = decoder.decode((decoder.decode(document) as Uint8Array[])[2]!) as Map<string, unknown>;
      expect(Buffer.from(payload.get('user_data') as Uint8Array).toString()).toBe(`request ${i}`);
    });
    expect(nsm.counters.attestations - before).toBe(32);
  });

  it('the device answering an NSM error is a response, not a system-call failure', async () => {
    nsm.faults.errorCode = 'InternalError';
    try {
      const out = await inEnclave(`return Buffer.from(await nsm.nsmRequest(device, new Uint8Array([0x60]))).toString('base64');`) as string;
      expect(decoder.decode(Buffer.from(out, 'base64'))).toEqual(new Map([['Error', 'InternalError']]));
    } finally {
      nsm.faults.errorCode = undefined;
    }
  });

  it('an answer larger than the 12 KiB response buffer is EMSGSIZE from ioctl, as the driver refuses it', async () => {
    nsm.faults.oversize = true;
    try {
      const out = await inEnclave(`try { await nsm.nsmRequest(device, new Uint8Array([0x60])); return 'none'; } catch (e) { return e.code + ' ' + e.syscall; }`);
      expect(out).toBe('EMSGSIZE ioctl');
    } finally {
      nsm.faults.oversize = false;
    }
  });

  it('a driver failure (the NSM does not answer) is EIO from ioctl; other files keep their real ioctl', async () => {
    const out = await inEnclave(
      `const errs = [];
       for (const path of [device, ${JSON.stringify(join(work, 'not-a-device'))}]) {
         try { await nsm.nsmRequest(path, new Uint8Array([0x60])); errs.push('none'); } catch (e) { errs.push(e.code + ' ' + e.syscall); }
       }
       return errs;`,
      { ...nsm.env, KEYFOLD_NSM_EMULATOR_SOCKET: join(work, 'nobody-listens.sock') },
    );
    expect(out).toEqual(['EIO ioctl', 'ENOTTY ioctl']);
  });
});
