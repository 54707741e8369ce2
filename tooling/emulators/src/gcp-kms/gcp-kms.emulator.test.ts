/**
 * The Cloud KMS emulator at the wire level: proto3 JSON over its REST listener with plain fetch (checksums, enum
 * encodings, error bodies, resets), and its gRPC listener through the SDK for an RPC it does not model.
 * (Both transports are exercised through the SDK by @keyfold/provider-gcp's tests.)
 */
import { KeyManagementServiceClient } from '@google-cloud/kms';
import * as gax from 'google-gax';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crc32c, startGcpKmsEmulator, type GcpKmsEmulator } from './index.js';

let emu: GcpKmsEmulator;
let keyName: string;

beforeAll(async () => {
  emu = await startGcpKmsEmulator();
  keyName = emu.createKey('wire');
});

afterAll(async () => {
  await emu.close();
});

async function post(path: string, body: unknown, query = ''): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${emu.restUrl}/v1/${path}${query}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

describe('Cloud KMS emulator', () => {
  it('encrypts and decrypts proto3 JSON with CRC32C checked and returned as the service does', async () => {
    const plaintext = Buffer.from('a data key of thirty-two bytes!!');
    const aad = Buffer.from('context');
    const enc = await post(`${keyName}:encrypt`, {
      plaintext: plaintext.toString('base64'),
      additionalAuthenticatedData: aad.toString('base64'),
      plaintextCrc32c: String(crc32c(plaintext)),
      additionalAuthenticatedDataCrc32c: String(crc32c(aad)),
    });
    expect(enc.status).toBe(200);
    expect(enc.json).toMatchObject({ name: `${keyName}/cryptoKeyVersions/1`, verifiedPlaintextCrc32c: true, verifiedAdditionalAuthenticatedDataCrc32c: true, protectionLevel: 'SOFTWARE' });
    const ciphertext = Buffer.from(enc.json.ciphertext as string, 'base64');
    expect(enc.json.ciphertextCrc32c).toBe(String(crc32c(ciphertext)));
    const dec = await post(`${keyName}:decrypt`, { ciphertext: enc.json.ciphertext, additionalAuthenticatedData: aad.toString('base64') }, '?$alt=json%3Benum-encoding=int');
    expect(Buffer.from(dec.json.plaintext as string, 'base64')).toEqual(plaintext);
    expect(dec.json).toMatchObject({ plaintextCrc32c: String(crc32c(plaintext)), usedPrimary: true, protectionLevel: 1 });
    // The AAD is bound.
    const wrongAad = await post(`${keyName}:decrypt`, { ciphertext: enc.json.ciphertext, additionalAuthenticatedData: Buffer.from('other').toString('base64') });
    expect(wrongAad).toMatchObject({ status: 400, json: { error: { code: 400, status: 'INVALID_ARGUMENT' } } });
  });

  it('refuses a request whose checksum does not match, with the service wording', async () => {
    const r = await post(`${keyName}:encrypt`, { plaintext: Buffer.from('x').toString('base64'), plaintextCrc32c: '1' });
    expect(r).toMatchObject({
      status: 400,
      json: { error: { status: 'INVALID_ARGUMENT', message: 'The checksum in field plaintext_crc32c did not match the data in field plaintext.' } },
    });
    const unverified = await post(`${keyName}:encrypt`, { plaintext: Buffer.from('x').toString('base64') });
    expect(unverified.json).toMatchObject({ verifiedPlaintextCrc32c: false, verifiedAdditionalAuthenticatedDataCrc32c: false });
  });

  it('checksums are proto3 JSON Int64Value (a decimal string or a number); the object form { value } is refused', async () => {
    const plaintext = Buffer.from('x');
    const sum = crc32c(plaintext);
    for (const ok of [String(sum), sum]) {
      expect((await post(`${keyName}:encrypt`, { plaintext: plaintext.toString('base64'), plaintextCrc32c: ok })).json).toMatchObject({ verifiedPlaintextCrc32c: true });
    }
    for (const bad of [{ value: String(sum) }, [String(sum)], '-1', '1.5', 'abc', true]) {
      const r = await post(`${keyName}:encrypt`, { plaintext: plaintext.toString('base64'), plaintextCrc32c: bad });
      expect(r).toMatchObject({ status: 400, json: { error: { status: 'INVALID_ARGUMENT' } } });
      expect((r.json.error as { message: string }).message).toContain("Invalid value at 'plaintext_crc32c'");
    }
  });

  it('answers NOT_FOUND and FAILED_PRECONDITION with their HTTP statuses', async () => {
    expect(await post('projects/p/locations/l/keyRings/r/cryptoKeys/none:encrypt', { plaintext: 'eA==' })).toMatchObject({ status: 404, json: { error: { status: 'NOT_FOUND' } } });
    const name = emu.createKey('pre');
    emu.state.updateCryptoKeyVersionState(`${name}/cryptoKeyVersions/1`, 'DISABLED');
    expect(await post(`${name}:encrypt`, { plaintext: 'eA==' })).toMatchObject({ status: 400, json: { error: { status: 'FAILED_PRECONDITION' } } });
  });

  it('resets the connection for an injected reset and counts it', async () => {
    emu.resetCounters();
    emu.faults.set({ resetRatio: 1, operations: ['Encrypt'] });
    await expect(post(`${keyName}:encrypt`, { plaintext: 'eA==' })).rejects.toThrow();
    emu.faults.clear();
    expect(emu.counters).toMatchObject({ resets: 1, byOperation: { Encrypt: 1 } });
  });

  it('serves gRPC through the SDK and answers UNIMPLEMENTED for an RPC it does not model', async () => {
    const client = new KeyManagementServiceClient({
      apiEndpoint: emu.host,
      port: emu.grpcPort,
      sslCreds: gax.grpc.credentials.createInsecure(),
      authClient: new gax.googleAuthLibrary.PassThroughClient(),
    });
    try {
      const [key] = await client.getCryptoKey({ name: keyName });
      expect(key).toMatchObject({ name: keyName, purpose: 'ENCRYPT_DECRYPT', primary: { name: `${keyName}/cryptoKeyVersions/1`, state: 'ENABLED' } });
      await expect(client.getKeyRing({ name: 'projects/keyfold-test/locations/global/keyRings/keyfold' }, { retry: null })).rejects.toMatchObject({ code: 12 });
    } finally {
      await client.close();
    }
  });
});
