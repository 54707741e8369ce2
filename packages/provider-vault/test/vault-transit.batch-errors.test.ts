/**
 * What Vault answers when it refuses a whole request, and how the provider reports it: a batch call for a deleted
 * key is one top-level 400 `{"errors": ["encryption key not found"]}` with no batch_results (hashicorp/vault
 * builtin/logical/transit/path_decrypt.go, path_rewrap.go: the key is looked up once per request), and older Vault
 * versions answer a ciphertext that does not decrypt with a 500 (keysutil's InternalError), which is bad data, not
 * an outage.
 */
import { describe, expect, it } from 'vitest';
import { keyfoldRejectionOf } from '@keyfold/conformance';
import type { WrappedKey } from '@keyfold/envelope-core';
import { createVaultTransitProvider } from '../src/index.js';
import { freshProvider, randomKey, vaultEmulator } from './helpers.js';

const emu = await vaultEmulator();

/** Deletes a transit key the way an operator does: allow deletion, then DELETE transit/keys/:name. */
async function deleteKey(name: string): Promise<void> {
  const headers = { 'x-vault-token': emu.rootToken, 'content-type': 'application/json' };
  const config = await fetch(`${emu.url}/v1/transit/keys/${name}/config`, { method: 'POST', headers, body: JSON.stringify({ deletion_allowed: true }) });
  expect(config.status).toBe(204);
  const del = await fetch(`${emu.url}/v1/transit/keys/${name}`, { method: 'DELETE', headers });
  expect(del.status).toBe(204);
}

describe('vault-transit provider: a batch call refused as a whole', () => {
  it('unwrapKeys / rewrapKeys on a deleted key: every item KEY_NOT_FOUND (not UNWRAP_FAILED), one request each', async () => {
    const provider = await freshProvider(emu);
    const items = await Promise.all(
      [0, 1, 2].map(async (i) => ({ wrapped: await provider.wrapKey(randomKey(), { row: String(i) }), context: { row: String(i) } })),
    );
    await deleteKey(provider.keyName);
    emu.resetCounters();
    for (const results of [await provider.unwrapKeys(items), await provider.rewrapKeys(items)]) {
      expect(results).toHaveLength(3);
      for (const r of results) {
        expect(r.ok).toBe(false);
        if (!r.ok) {
          expect(r.error.code).toBe('KEY_NOT_FOUND');
          expect(r.error.message).toContain(provider.keyId);
        }
      }
    }
    expect(emu.counters.byOperation).toEqual({ decrypt: 1, rewrap: 1 });
    await provider.close();
  });

  it("wrapKeys: Vault's top-level 400 is reported with its reason for every item, not as a mismatched answer", async () => {
    // The body real Vault sends when it refuses an encrypt batch as a whole (path_encrypt.go); the provider sends
    // consistent contexts, so this is replayed through the provider's fetch option rather than provoked.
    const seen: string[] = [];
    const provider = await createVaultTransitProvider({
      endpoint: emu.url,
      token: emu.rootToken,
      keyName: (await freshProvider(emu)).keyName,
      env: {},
      resilience: { retry: false },
      fetch: async (url, init) => {
        seen.push(url);
        if (url.includes('/transit/encrypt/')) {
          return new Response(JSON.stringify({ errors: ['context should be set either in all the request blocks or in none'] }), {
            status: 400,
            headers: { 'content-type': 'application/json' },
          });
        }
        return fetch(url, init);
      },
    });
    const results = await provider.wrapKeys([
      { dataKey: randomKey(), context: { a: '1' } },
      { dataKey: randomKey(), context: { a: '2' } },
    ]);
    expect(seen.filter((u) => u.includes('/transit/encrypt/'))).toHaveLength(1);
    for (const r of results) {
      expect(r.ok).toBe(false);
      if (!r.ok) {
        expect(r.error.code).toBe('INTERNAL');
        expect(r.error.message).toContain('context should be set either in all the request blocks or in none');
        expect(r.error.message).not.toContain('does not match the request');
      }
    }
    await provider.close();
  });
});

describe('vault-transit provider: older Vault answers a tampered ciphertext with 500', () => {
  it('unwrapKey: UNWRAP_FAILED at once (one request), not UNAVAILABLE after retries, and the breaker stays closed', async () => {
    const legacy = await vaultEmulator({ legacyDecryptErrors: true });
    const provider = await freshProvider(legacy, {
      resilience: { retry: { maxAttempts: 4, baseDelayMs: 1, maxDelayMs: 2 }, circuitBreaker: { failureThreshold: 1 } },
    });
    const wrapped = await provider.wrapKey(randomKey(), { a: '1' });
    const bytes = wrapped.ciphertext.slice();
    bytes[bytes.length - 1]! ^= 1;
    const tampered: WrappedKey = { ...wrapped, ciphertext: bytes };
    // The emulator really answers 500 for it (what older Vault did).
    const raw = await fetch(`${legacy.url}/v1/transit/decrypt/${provider.keyName}`, {
      method: 'POST',
      headers: { 'x-vault-token': legacy.rootToken },
      body: JSON.stringify({ ciphertext: `vault:v${wrapped.keyVersion}:${Buffer.from(bytes).toString('base64')}`, associated_data: 'AAA=' }),
    });
    expect(raw.status).toBe(500);
    legacy.resetCounters();
    const err = await keyfoldRejectionOf(provider.unwrapKey(tampered, { a: '1' }));
    expect(err.code).toBe('UNWRAP_FAILED');
    expect(legacy.counters.byOperation.decrypt).toBe(1);
    const stats = provider.resilienceStats()!;
    expect(stats.retries).toBe(0);
    expect(stats.circuit).toBe('closed');
    // A real outage 500 (no ciphertext named) is still UNAVAILABLE and retried.
    legacy.faults.set({ serverErrorRatio: 1, operations: ['decrypt'] });
    const outage = await keyfoldRejectionOf(provider.unwrapKey(wrapped, { a: '1' }));
    expect(outage.code).toBe('UNAVAILABLE');
    legacy.faults.clear();
    await provider.close();
  });
});
