/**
 * The Key Vault emulator at the wire level, with plain fetch over its HTTP listener: the bearer challenge, Key Vault
 * error bodies, versioned kids, and RSA-OAEP-256 cross-checked against node:crypto with the public key it publishes.
 * (The SDK itself is exercised over HTTPS by @keyfold/provider-azure's tests.)
 */
import { constants, createPublicKey, publicEncrypt, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAzureKeyVaultEmulator, type AzureKeyVaultEmulator } from './index.js';

let emu: AzureKeyVaultEmulator;
let vault: AzureKeyVaultEmulator;
const AUTH = { authorization: 'Bearer t', 'content-type': 'application/json' };

beforeAll(async () => {
  emu = await startAzureKeyVaultEmulator({ managedHsm: true });
  vault = await startAzureKeyVaultEmulator();
});

afterAll(async () => {
  await Promise.all([emu.close(), vault.close()]);
});

async function call(path: string, init: { method?: string; body?: unknown; headers?: Record<string, string> } = {}): Promise<{ status: number; headers: Headers; json: Record<string, unknown> }> {
  const res = await fetch(`${emu.httpUrl}${path}${path.includes('?') ? '&' : '?'}api-version=7.5`, {
    method: init.method ?? 'GET',
    headers: init.headers ?? AUTH,
    ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

describe('Key Vault emulator', () => {
  it('answers a request without a token with the bearer challenge', async () => {
    const r = await call('/keys/any', { headers: {} });
    expect(r.status).toBe(401);
    expect(r.headers.get('www-authenticate')).toBe('Bearer authorization="https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000", resource="https://managedhsm.azure.net"');
    expect(emu.counters.challenges).toBeGreaterThan(0);
  });

  it('creates versions with versioned kids, and wraps RSA-OAEP-256 as node:crypto does', async () => {
    const created = await call('/keys/wire/create', { method: 'POST', body: { kty: 'RSA', key_size: 2048 } });
    expect(created.status).toBe(200);
    const key = created.json.key as { kid: string; n: string; e: string; kty: string };
    expect(key.kid).toMatch(new RegExp(`^${emu.httpUrl}/keys/wire/[0-9a-f]{32}$`));
    const second = await call('/keys/wire/rotate', { method: 'POST' });
    const kid2 = (second.json.key as { kid: string }).kid;
    expect(kid2).not.toBe(key.kid);
    const versions = await call('/keys/wire/versions');
    expect((versions.json.value as { kid: string }[]).map((v) => v.kid)).toEqual([key.kid, kid2]);

    // Wrap locally with the published public key of version 1; the emulator unwraps it.
    const pub = createPublicKey({ key: { kty: 'RSA', n: key.n, e: key.e }, format: 'jwk' });
    const dataKey = randomBytes(32);
    const wrapped = publicEncrypt({ key: pub, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, dataKey);
    const v1 = key.kid.split('/').pop()!;
    const un = await call(`/keys/wire/${v1}/unwrapkey`, { method: 'POST', body: { alg: 'RSA-OAEP-256', value: wrapped.toString('base64url') } });
    expect(un.status).toBe(200);
    expect(un.json.kid).toBe(key.kid);
    expect(Buffer.from(un.json.value as string, 'base64url')).toEqual(dataKey);
    // The versionless path uses the current version (2), which cannot unwrap version 1's output.
    const wrong = await call('/keys/wire/unwrapkey', { method: 'POST', body: { alg: 'RSA-OAEP-256', value: wrapped.toString('base64url') } });
    expect(wrong.status).toBe(400);
    expect(wrong.json).toMatchObject({ error: { code: 'BadParameter' } });
  });

  it('wraps A256KW with an oct-HSM key, and refuses oct-HSM keys outside a Managed HSM', async () => {
    await call('/keys/kw/create', { method: 'POST', body: { kty: 'oct-HSM', key_size: 256 } });
    const dataKey = randomBytes(32);
    const w = await call('/keys/kw//wrapkey', { method: 'POST', body: { alg: 'A256KW', value: dataKey.toString('base64url') } });
    expect(Buffer.from(w.json.value as string, 'base64url').length).toBe(40);
    const u = await call('/keys/kw/unwrapkey', { method: 'POST', body: { alg: 'A256KW', value: w.json.value } });
    expect(Buffer.from(u.json.value as string, 'base64url')).toEqual(dataKey);
    const bad = await call('/keys/kw/wrapkey', { method: 'POST', body: { alg: 'RSA-OAEP-256', value: dataKey.toString('base64url') } });
    expect(bad).toMatchObject({ status: 400, json: { error: { code: 'BadParameter' } } });
    expect(() => vault.createKey('kw', { kty: 'oct-HSM' })).toThrow(/Managed HSM/);
  });

  it('answers Key Vault error bodies: 404 KeyNotFound, 403 KeyDisabled, 409 for a deleted name', async () => {
    expect(await call('/keys/nope')).toMatchObject({ status: 404, json: { error: { code: 'KeyNotFound' } } });
    const kid = emu.createKey('states', { kty: 'RSA' }, emu.httpUrl);
    const version = kid.split('/').pop()!;
    await call(`/keys/states/${version}`, { method: 'PATCH', body: { attributes: { enabled: false } } });
    const disabled = await call(`/keys/states/${version}/wrapkey`, { method: 'POST', body: { alg: 'RSA-OAEP-256', value: 'AAAA' } });
    expect(disabled).toMatchObject({ status: 403, json: { error: { code: 'Forbidden', innererror: { code: 'KeyDisabled' } } } });
    expect((await call('/keys/states', { method: 'DELETE' })).status).toBe(200);
    expect((await call('/deletedkeys/states')).status).toBe(200);
    expect(await call(`/keys/states/${version}`)).toMatchObject({ status: 404, json: { error: { code: 'KeyNotFound' } } });
    expect(await call('/keys/states/create', { method: 'POST', body: { kty: 'RSA' } })).toMatchObject({ status: 409, json: { error: { code: 'Conflict' } } });
  });

  it('injects throttling, 5xx and resets, and counts them', async () => {
    emu.createKey('faulty', { kty: 'oct-HSM' }, emu.httpUrl);
    emu.resetCounters();
    emu.faults.set({ throttleRatio: 1, operations: ['getKey'] });
    const throttled = await call('/keys/faulty');
    expect(throttled).toMatchObject({ status: 429, json: { error: { code: 'Throttled' } } });
    expect(throttled.headers.get('retry-after')).toBe('1');
    emu.faults.set({ serverErrorRatio: 1, operations: ['getKey'] });
    expect([500, 503]).toContain((await call('/keys/faulty')).status);
    emu.faults.set({ resetRatio: 1, operations: ['getKey'] });
    await expect(call('/keys/faulty')).rejects.toThrow();
    emu.faults.clear();
    expect((await call('/keys/faulty')).status).toBe(200);
    expect(emu.counters).toMatchObject({ throttled: 1, serverErrors: 1, resets: 1 });
  });
});
