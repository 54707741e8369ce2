/**
 * The Vault transit emulator on the wire: `vault:vN:` ciphertexts, batch_input with per-item errors and status
 * codes, derived keys, min_decryption_version, tokens (403), namespaces, sealing (503).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { startVaultTransitEmulator } from '../src/index.js';

const emu = await startVaultTransitEmulator({ port: 0 });
afterAll(() => emu.close());

async function vault(method: string, path: string, body?: unknown, headers: Record<string, string> = { 'x-vault-token': emu.rootToken }) {
  const res = await fetch(`${emu.url}/v1/${path}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  const text = await res.text();
  return { status: res.status, json: (text ? JSON.parse(text) : {}) as { data?: Record<string, unknown>; errors?: string[] } };
}

const b64 = (s: string): string => Buffer.from(s).toString('base64');

describe('vault-transit emulator', () => {
  it('encrypt / decrypt with associated data; rotate; min_decryption_version retires old versions', async () => {
    emu.createKey('k1');
    const enc = await vault('POST', 'transit/encrypt/k1', { plaintext: b64('hello'), associated_data: b64('ctx') });
    const ct = enc.json.data?.ciphertext as string;
    expect(ct).toMatch(/^vault:v1:[A-Za-z0-9+/]+=*$/);
    expect((await vault('POST', 'transit/decrypt/k1', { ciphertext: ct, associated_data: b64('ctx') })).json.data?.plaintext).toBe(b64('hello'));
    expect(await vault('POST', 'transit/decrypt/k1', { ciphertext: ct, associated_data: b64('other') })).toMatchObject({
      status: 400,
      json: { errors: ['cipher: message authentication failed'] },
    });
    await vault('POST', 'transit/keys/k1/rotate');
    const rewrapped = (await vault('POST', 'transit/rewrap/k1', { ciphertext: ct, associated_data: b64('ctx') })).json.data?.ciphertext as string;
    expect(rewrapped).toMatch(/^vault:v2:/);
    expect((await vault('POST', 'transit/keys/k1/config', { min_decryption_version: 2 })).status).toBe(204);
    expect(await vault('POST', 'transit/decrypt/k1', { ciphertext: ct, associated_data: b64('ctx') })).toMatchObject({
      status: 400,
      json: { errors: ['ciphertext or signature version is disallowed by policy (too old)'] },
    });
    const info = (await vault('GET', 'transit/keys/k1')).json.data;
    expect(info).toMatchObject({ latest_version: 2, min_decryption_version: 2, keys: { '1': expect.any(Number), '2': expect.any(Number) } });
  });

  it('batch_input: per-item errors; 400 unless partial_failure_response_code; all failed is 400', async () => {
    emu.createKey('k2');
    const ok = (await vault('POST', 'transit/encrypt/k2', { plaintext: b64('a') })).json.data?.ciphertext as string;
    const batch = [{ ciphertext: ok, reference: 'good' }, { ciphertext: 'vault:v1:AAAA', reference: 'bad' }];
    const plain = await vault('POST', 'transit/decrypt/k2', { batch_input: batch });
    expect(plain.status).toBe(400);
    const partial = await vault('POST', 'transit/decrypt/k2', { batch_input: batch, partial_failure_response_code: 207 });
    expect(partial.status).toBe(207);
    expect(partial.json.data?.batch_results).toEqual([
      { plaintext: b64('a'), reference: 'good' },
      { error: 'invalid ciphertext: unable to decrypt', reference: 'bad' },
    ]);
    expect((await vault('POST', 'transit/decrypt/k2', { batch_input: [batch[1]], partial_failure_response_code: 207 })).status).toBe(400);
  });

  it('derived keys need a context; datakey returns plaintext and ciphertext', async () => {
    emu.createKey('k3', { derived: true });
    expect((await vault('POST', 'transit/encrypt/k3', { plaintext: b64('x') })).status).toBe(400);
    const dk = (await vault('POST', 'transit/datakey/plaintext/k3', { context: b64('tenant-1') })).json.data!;
    expect(Buffer.from(dk.plaintext as string, 'base64')).toHaveLength(32);
    expect((await vault('POST', 'transit/decrypt/k3', { ciphertext: dk.ciphertext, context: b64('tenant-1') })).json.data?.plaintext).toBe(dk.plaintext);
    expect((await vault('POST', 'transit/decrypt/k3', { ciphertext: dk.ciphertext, context: b64('tenant-2') })).status).toBe(400);
    expect((await vault('POST', 'transit/datakey/wrapped/k3', { context: b64('t') })).json.data?.plaintext).toBeUndefined();
  });

  it('tokens: missing or unknown 403, policy paths enforced; namespaces are separate; sealed is 503', async () => {
    emu.createKey('k4');
    expect(await vault('POST', 'transit/encrypt/k4', { plaintext: b64('x') }, {})).toMatchObject({ status: 403, json: { errors: ['permission denied'] } });
    emu.setPolicy('enc', ['transit/encrypt/*']);
    const token = emu.createToken({ policies: ['enc'] });
    expect((await vault('POST', 'transit/encrypt/k4', { plaintext: b64('x') }, { 'x-vault-token': token })).status).toBe(200);
    expect((await vault('GET', 'transit/keys/k4', undefined, { 'x-vault-token': token })).status).toBe(403);
    expect((await vault('GET', 'transit/keys/k4', undefined, { 'x-vault-token': emu.rootToken, 'x-vault-namespace': 'team-b' })).status).toBe(404);
    emu.seal();
    expect(await vault('POST', 'transit/encrypt/k4', { plaintext: b64('x') })).toMatchObject({ status: 503, json: { errors: ['Vault is sealed'] } });
    expect((await vault('GET', 'sys/health', undefined, {})).status).toBe(503);
    emu.unseal();
    expect((await vault('GET', 'sys/health', undefined, {})).status).toBe(200);
  });

  it('faults: throttling is 429, 5xx is 500, with Vault error bodies', async () => {
    emu.faults.set({ throttleRatio: 1 });
    expect(await vault('GET', 'transit/keys/k4')).toMatchObject({ status: 429, json: { errors: [expect.stringContaining('rate limit')] } });
    emu.faults.set({ serverErrorRatio: 1 });
    expect((await vault('GET', 'transit/keys/k4')).status).toBe(500);
    emu.faults.clear();
  });
});
