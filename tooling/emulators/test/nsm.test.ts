/**
 * The NSM emulator's socket protocol (what the LD_PRELOAD driver stand-in speaks): attestation requests are answered
 * with signed documents carrying the requested fields; malformed, unsupported and oversized requests get the NSM's
 * error codes; faults switch the answers.
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate, createPrivateKey, verify } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Decoder, Encoder } from 'cbor-x';
import { startNsmEmulator, type NsmEmulator } from '../src/index.js';

const encoder = new Encoder({ tagUint8Array: false, useRecords: false, useTag259ForMaps: false } as ConstructorParameters<typeof Encoder>[0]);
const decoder = new Decoder({ mapsAsObjects: false, useRecords: false });
const work = mkdtempSync(join(tmpdir(), 'keyfold-nsm-emu-'));
let nsm: NsmEmulator;
let certificate: Buffer;

beforeAll(async () => {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384', '-nodes', '-keyout', 'k.pem', '-subj', '/CN=nsm emulator test', '-days', '1', '-outform', 'DER', '-out', 'c.der'], { cwd: work, stdio: 'ignore' });
  certificate = readFileSync(join(work, 'c.der'));
  nsm = await startNsmEmulator({ signer: { key: createPrivateKey(readFileSync(join(work, 'k.pem'))), certificate, cabundle: [certificate] }, now: () => 1_700_000_000_000 });
});
afterAll(async () => {
  await nsm.close();
  rmSync(work, { recursive: true, force: true });
});

/** One framed request over the emulator's socket, as the preload library sends it. */
function roundTrip(request: Uint8Array): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const socket = connect(nsm.socketPath);
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('end', () => {
      const all = Buffer.concat(chunks);
      const length = all.readUInt32BE(0);
      if (all.length !== 4 + length) reject(new Error(`framing: ${all.length} bytes for length ${length}`));
      else resolve(nsm.faults.garbage ? all.subarray(4) : decoder.decode(all.subarray(4)));
    });
    const header = Buffer.alloc(4);
    header.writeUInt32BE(request.length);
    socket.end(Buffer.concat([header, request]));
  });
}

const attestation = (fields: Record<string, unknown>): Uint8Array => encoder.encode(new Map([['Attestation', new Map(Object.entries(fields))]]));

describe('NSM emulator', () => {
  it('answers an attestation request with a document signed by the signer, carrying the requested fields', async () => {
    const publicKey = Buffer.alloc(294, 3);
    const response = (await roundTrip(attestation({ public_key: publicKey, user_data: null, nonce: Buffer.from('n') }))) as Map<string, Map<string, Uint8Array>>;
    const cose = decoder.decode(response.get('Attestation')!.get('document')!) as [Uint8Array, Map<never, never>, Uint8Array, Uint8Array];
    const payload = decoder.decode(cose[2]) as Map<string, unknown>;
    expect(payload.get('timestamp')).toBe(1_700_000_000_000);
    expect(Buffer.from(payload.get('public_key') as Uint8Array).equals(publicKey)).toBe(true);
    expect(payload.get('user_data')).toBeNull();
    expect(Buffer.from(payload.get('certificate') as Uint8Array).equals(certificate)).toBe(true);
    const toBeSigned = encoder.encode(['Signature1', cose[0], new Uint8Array(0), cose[2]]);
    expect(verify('sha384', toBeSigned, { key: new X509Certificate(certificate).publicKey, dsaEncoding: 'ieee-p1363' }, cose[3])).toBe(true);
    expect(nsm.counters.attestations).toBe(1);
  });

  it('error codes: not CBOR, unknown fields, wrong types, oversized fields, other operations', async () => {
    expect(await roundTrip(new Uint8Array([0xff, 0x00]))).toEqual(new Map([['Error', 'InvalidArgument']]));
    expect(await roundTrip(attestation({ public_key: null, colour: null }))).toEqual(new Map([['Error', 'InvalidArgument']]));
    expect(await roundTrip(attestation({ nonce: 'text' }))).toEqual(new Map([['Error', 'InvalidArgument']]));
    expect(await roundTrip(attestation({ user_data: Buffer.alloc(513) }))).toEqual(new Map([['Error', 'InputTooLarge']]));
    expect(await roundTrip(attestation({ public_key: Buffer.alloc(1025) }))).toEqual(new Map([['Error', 'InputTooLarge']]));
    expect(await roundTrip(encoder.encode('DescribeNSM'))).toEqual(new Map([['Error', 'InvalidOperation']]));
    expect(nsm.counters.errors).toBe(6);
  });

  it('faults: a chosen error code, then garbage, then normal again', async () => {
    nsm.faults.errorCode = 'InternalError';
    expect(await roundTrip(attestation({}))).toEqual(new Map([['Error', 'InternalError']]));
    nsm.faults.errorCode = undefined;
    nsm.faults.garbage = true;
    expect(await roundTrip(attestation({}))).toHaveLength(64);
    nsm.faults.garbage = false;
    expect(await roundTrip(attestation({}))).toBeInstanceOf(Map);
  });

  it('builds the preload library and exposes the environment a child needs', () => {
    expect(existsSync(nsm.preloadLibrary)).toBe(true);
    expect(nsm.env).toEqual({ LD_PRELOAD: nsm.preloadLibrary, KEYFOLD_NSM_EMULATOR_DEVICE: nsm.devicePath, KEYFOLD_NSM_EMULATOR_SOCKET: nsm.socketPath });
  });
});
