/**
 * Request-level errors of the Vault transit emulator, as Vault answers them. Sources: hashicorp/vault
 * builtin/logical/transit/path_encrypt.go, path_decrypt.go, path_rewrap.go (batch_input decoded and checked for a
 * consistent context, the key looked up once per request: a top-level 400 `{"errors": [...]}` with no
 * batch_results) and sdk/helper/keysutil/policy.go (older versions returned an InternalError, so a 500, for a
 * ciphertext that fails authentication).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { startVaultTransitEmulator } from '../src/index.js';

const emu = await startVaultTransitEmulator({ port: 0 });
const legacy = await startVaultTransitEmulator({ port: 0, legacyDecryptErrors: true });
afterAll(async () => {
  await emu.close();
  await legacy.close();
});

async function post(url: string, token: string, path: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${url}/v1/${path}`, { method: 'POST', headers: { 'x-vault-token': token }, body: JSON.stringify(body) });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}
const b64 = (s: string | Buffer): string => Buffer.from(s).toString('base64');

describe('vault-transit emulator: a batch call refused as a whole', () => {
  it('a missing key: top-level 400 "encryption key not found", no batch_results, whatever partial_failure_response_code says', async () => {
    for (const op of ['decrypt', 'rewrap']) {
      const r = await post(emu.url, emu.rootToken, `transit/${op}/missing-${op}`, {
        batch_input: [{ ciphertext: `vault:v1:${b64(Buffer.alloc(40))}` }, { ciphertext: 'vault:v1:xx' }],
        partial_failure_response_code: 200,
      });
      expect(r).toEqual({ status: 400, json: { errors: ['encryption key not found'] } });
    }
    const datakey = await post(emu.url, emu.rootToken, 'transit/datakey/wrapped/missing-dk', { batch_input: [{ bits: 256 }] });
    expect(datakey).toEqual({ status: 400, json: { errors: ['encryption key not found'] } });
  });

  it('mixed derived / non-derived contexts: 400 for the whole batch (and no key is upserted)', async () => {
    const pt = b64(Buffer.alloc(32, 1));
    for (const name of ['mixed-existing', 'mixed-new']) {
      if (name === 'mixed-existing') emu.createKey(name, { derived: true });
      const r = await post(emu.url, emu.rootToken, `transit/encrypt/${name}`, {
        batch_input: [{ plaintext: pt, context: b64('t1') }, { plaintext: pt }],
        partial_failure_response_code: 200,
      });
      expect(r).toEqual({ status: 400, json: { errors: ['context should be set either in all the request blocks or in none'] } });
    }
    const read = await fetch(`${emu.url}/v1/transit/keys/mixed-new`, { headers: { 'x-vault-token': emu.rootToken } });
    expect(read.status).toBe(404);
  });

  it('a malformed or empty batch_input: 400 for the whole request', async () => {
    emu.createKey('shape');
    for (const batch of ['x', [1, 2], [null], [[]], {}]) {
      const r = await post(emu.url, emu.rootToken, 'transit/encrypt/shape', { batch_input: batch });
      expect(r.status).toBe(400);
      expect(r.json.errors).toEqual([expect.stringMatching(/^failed to parse batch input/)]);
    }
    expect(await post(emu.url, emu.rootToken, 'transit/decrypt/shape', { batch_input: [] })).toEqual({
      status: 400,
      json: { errors: ['missing batch input to process'] },
    });
  });

  it('per-item errors stay per item when the request itself is fine', async () => {
    emu.createKey('items');
    const r = await post(emu.url, emu.rootToken, 'transit/decrypt/items', {
      batch_input: [{ ciphertext: 'vault:v1:xx' }, { ciphertext: 'nope' }],
      partial_failure_response_code: 207,
    });
    expect(r.status).toBe(400); // every item failed
    expect((r.json.data as { batch_results: { error: string }[] }).batch_results.map((x) => x.error)).toHaveLength(2);
  });
});

describe('vault-transit emulator: legacyDecryptErrors', () => {
  it('a ciphertext that fails authentication: 500 naming it (older Vault); a current emulator answers 400', async () => {
    for (const e of [emu, legacy]) e.createKey('tamper');
    for (const [e, status] of [[emu, 400], [legacy, 500]] as const) {
      const enc = await post(e.url, e.rootToken, 'transit/encrypt/tamper', { plaintext: b64('secret') });
      const ct = (enc.json.data as { ciphertext: string }).ciphertext;
      const body = Buffer.from(ct.slice('vault:v1:'.length), 'base64');
      body[body.length - 1]! ^= 1;
      const tampered = `vault:v1:${body.toString('base64')}`;
      for (const op of ['decrypt', 'rewrap']) {
        const r = await post(e.url, e.rootToken, `transit/${op}/tamper`, { ciphertext: tampered });
        expect(r).toEqual({ status, json: { errors: ['cipher: message authentication failed'] } });
      }
      // In a batch the failure stays a per-item error on both.
      const batch = await post(e.url, e.rootToken, 'transit/decrypt/tamper', { batch_input: [{ ciphertext: tampered }, { ciphertext: ct }], partial_failure_response_code: 207 });
      expect(batch.status).toBe(207);
    }
  });
});
