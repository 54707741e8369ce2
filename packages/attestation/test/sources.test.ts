/**
 * Document sources: the HTTP endpoint shape (GET /api/v1/attestation/report with base64url parameters, body = the
 * document), its failures, and the NSM source outside an enclave.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { createAttestationManager, httpSource, nsmSource } from '../src/index.js';

const seen: URL[] = [];
let status = 200;
const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://localhost');
  seen.push(url);
  res.writeHead(status, { 'content-type': 'application/cbor' });
  res.end(status === 200 ? Buffer.from([0x84, 0x40, 0xa0, 0x40, 0x40]) : undefined);
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

describe('sources', () => {
  it('httpSource sends the public key, user data and nonce as base64url and returns the body', async () => {
    const nonce = new Uint8Array([0xfb, 0xff]);
    const userData = new Uint8Array([0xfe, 0x01]);
    const manager = createAttestationManager({ source: httpSource({ baseUrl }), userData, nonce });
    expect(await manager.getDocument()).toEqual(new Uint8Array([0x84, 0x40, 0xa0, 0x40, 0x40]));
    const url = seen.at(-1)!;
    expect(url.pathname).toBe('/api/v1/attestation/report');
    expect(url.searchParams.get('nonce')).toBe('-_8');
    expect(url.searchParams.get('userData')).toBe('_gE');
    const spki = Buffer.from(url.searchParams.get('publicKey')!, 'base64url');
    expect(spki.length).toBeGreaterThan(256); // DER SPKI of an RSA-2048 key
    expect(manager.getStatus().source).toBe('http');
    manager.destroy();
  });

  it('httpSource: an HTTP error or an unreachable endpoint is UNAVAILABLE', async () => {
    status = 503;
    await expect(httpSource({ baseUrl }).attest({ publicKey: new Uint8Array(1) })).rejects.toMatchObject({ code: 'UNAVAILABLE', message: expect.stringContaining('HTTP 503') as unknown });
    status = 200;
    await expect(httpSource({ baseUrl: 'http://127.0.0.1:1' }).attest({ publicKey: new Uint8Array(1) })).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    expect(() => httpSource({ baseUrl: 'not a url' })).toThrow(TypeError);
  });

  it('nsmSource outside an enclave fails with a clear UNAVAILABLE error', async () => {
    await expect(nsmSource({ devicePath: '/nonexistent/nsm' }).attest({ publicKey: new Uint8Array(1) })).rejects.toMatchObject({
      code: 'UNAVAILABLE',
      message: expect.stringMatching(/not running inside a Nitro Enclave/) as unknown,
    });
  });

  it('options are checked', () => {
    expect(() => createAttestationManager({ source: () => new Uint8Array(1), keyBits: 1024 as 2048 })).toThrow(RangeError);
    expect(() => createAttestationManager({ source: () => new Uint8Array(1), maxDocumentAge: 10 })).toThrow(RangeError);
  });
});
