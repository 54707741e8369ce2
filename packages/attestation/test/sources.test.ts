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

  it('httpSource: path and parameter names are configurable; the default path is unchanged', async () => {
    const source = httpSource({ baseUrl: `${baseUrl}/sidecar/`, path: '/v2/attest;x=1', parameters: { publicKey: 'public_key', userData: 'ud', nonce: 'n' } });
    await source.attest({ publicKey: new Uint8Array([0xfb]), userData: new Uint8Array([1]), nonce: new Uint8Array([2]) });
    const url = seen.at(-1)!;
    expect(url.pathname).toBe('/sidecar/v2/attest;x=1');
    expect([...url.searchParams]).toEqual([['public_key', '-w'], ['ud', 'AQ'], ['n', 'Ag']]);
    await httpSource({ baseUrl: `${baseUrl}/sidecar` }).attest({ publicKey: new Uint8Array([1]) });
    expect(seen.at(-1)!.pathname).toBe('/sidecar/api/v1/attestation/report');
  });

  it('httpSource refuses bad options with an error naming the option', () => {
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ baseUrl, pathname: '/x' }, /no option "pathname"/],
      [{ baseUrl: 'file:///etc/passwd' }, /http: or https:/],
      [{ baseUrl: `${baseUrl}/?a=1` }, /query or a fragment/],
      [{ baseUrl, path: 'attest' }, /path must be a string starting with "\/"/],
      [{ baseUrl, path: '/a/../admin' }, /not a plain URL path/],
      [{ baseUrl, path: '/a/%2E%2e/admin' }, /not a plain URL path/],
      [{ baseUrl, path: '/a//b' }, /not a plain URL path/],
      [{ baseUrl, path: '/a?x=1' }, /not a plain URL path/],
      [{ baseUrl, path: '/a#f' }, /not a plain URL path/],
      [{ baseUrl, path: '/a b' }, /not a plain URL path/],
      [{ baseUrl, path: '/a%zz' }, /not a plain URL path/],
      [{ baseUrl, path: 42 }, /path must be a string/],
      [{ baseUrl, parameters: { publicKey: 'a&b' } }, /parameters\.publicKey must be 1-64 characters/],
      [{ baseUrl, parameters: { nonce: '' } }, /parameters\.nonce must be 1-64 characters/],
      [{ baseUrl, parameters: { key: 'k' } }, /unknown field "key"/],
      [{ baseUrl, parameters: { nonce: 'publicKey' } }, /three different names/],
      [{ baseUrl, parameters: 'pk' }, /parameters must be an object/],
      [{ baseUrl, timeoutMs: 0 }, /timeoutMs must be a whole number/],
      [{ baseUrl, fetch: 'fetch' }, /fetch must be a function/],
    ];
    for (const [options, message] of bad) {
      expect(() => httpSource(options as never), JSON.stringify(options)).toThrow(message);
    }
    expect(() => httpSource({ baseUrl, timeoutMs: 1.5 })).toThrow(RangeError);
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
    // A misspelt option never falls back to its default silently.
    expect(() => createAttestationManager({ source: () => new Uint8Array(1), maxDocumentAg: 60_000 } as never)).toThrow(
      /^createAttestationManager has no option "maxDocumentAg"; known options: source, maxDocumentAge, keyBits, userData, nonce, now, logger$/,
    );
    const manager = createAttestationManager({ source: () => new Uint8Array(1) });
    expect(() => manager.recipient({ requird: false } as never)).toThrow(/^recipient has no option "requird"; known options: required$/);
    manager.destroy();
    expect(() => nsmSource({ devicepath: '/dev/nsm' } as never)).toThrow(/^nsmSource has no option "devicepath"/);
  });
});
