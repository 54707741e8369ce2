/**
 * Authentication and configuration: AppRole login, token renewal at two thirds of the lease, a new login when the
 * token can no longer be renewed or Vault no longer accepts it; 403 for a token without the policy; namespaces;
 * configuration errors; batch calls with per-item failures.
 */
import { describe, expect, it } from 'vitest';
import { keyfoldRejectionOf } from '@keyfold/conformance';
import { createVaultTransitProvider } from '../src/index.js';
import { freshProvider, keyName, randomKey, vaultEmulator } from './helpers.js';

// One clock for the emulator and the provider, moved by the tests: tokens expire without waiting.
let clock = 1_000_000;
const now = (): number => clock;
const emu = await vaultEmulator({ now });
emu.setPolicy('transit-user', ['transit/*']);
emu.setPolicy('encrypt-only', ['transit/encrypt/*', 'transit/keys/*']);

describe('vault-transit AppRole', () => {
  it('logs in, renews at two thirds of the lease, and logs in again at the max TTL', async () => {
    const role = emu.createAppRole({ name: 'app', policies: ['transit-user'], tokenTtlSeconds: 60, tokenMaxTtlSeconds: 150 });
    emu.resetCounters();
    const provider = await freshProvider(emu, { appRole: { roleId: role.roleId, secretId: () => role.secretId }, now });
    const context = { a: '1' };
    const wrapped = await provider.wrapKey(randomKey(), context);
    expect(emu.counters.byOperation.login).toBe(1);

    clock += 30_000; // half the lease: no renewal yet
    await provider.unwrapKey(wrapped, context);
    expect(emu.counters.byOperation['renew-self']).toBeUndefined();

    clock += 15_000; // 45 s of 60: renew-self
    await provider.unwrapKey(wrapped, context);
    expect(emu.counters.byOperation['renew-self']).toBe(1);
    expect(emu.counters.byOperation.login).toBe(1);

    clock += 45_000; // 90 s since login, 45 s since renewal: renew again (capped by the 150 s max TTL -> 60 s)
    await provider.unwrapKey(wrapped, context);
    expect(emu.counters.byOperation['renew-self']).toBe(2);

    clock += 45_000; // 135 s: renewal would give 15 s only; the provider logs in again
    await provider.unwrapKey(wrapped, context);
    expect(emu.counters.byOperation.login).toBe(2);
    expect((await provider.describe()).details).toMatchObject({ auth: 'approle' });
    await provider.close();
  });

  it('a token Vault no longer accepts (expired or revoked) is replaced by one new login, and the call succeeds', async () => {
    const role = emu.createAppRole({ name: 'app2', policies: ['transit-user'], tokenTtlSeconds: 600 });
    const provider = await freshProvider(emu, { appRole: { roleId: role.roleId, secretId: role.secretId } });
    const wrapped = await provider.wrapKey(randomKey(), {});
    emu.resetCounters();
    clock += 601_000; // the emulator's clock: the token expired there while the provider's clock did not move
    expect(await provider.unwrapKey(wrapped, {})).toHaveLength(32);
    expect(emu.counters.byOperation.login).toBe(1);
    expect(emu.counters.byOperation.decrypt).toBe(2); // the 403, then the retry with the new token
    await provider.close();
  });

  it('a wrong secret id: ACCESS_DENIED at creation', async () => {
    const role = emu.createAppRole({ name: 'app3', policies: ['transit-user'] });
    emu.createKey('approle-key');
    const err = await keyfoldRejectionOf(
      createVaultTransitProvider({ endpoint: emu.url, appRole: { roleId: role.roleId, secretId: 'wrong' }, keyName: 'approle-key', env: {} }),
    );
    expect(err.code).toBe('ACCESS_DENIED');
    expect(err.message).not.toContain('wrong');
  });
});

describe('vault-transit access and configuration', () => {
  it('a token whose policy lacks decrypt: wrap works, unwrap is ACCESS_DENIED (403), not retried', async () => {
    const token = emu.createToken({ policies: ['encrypt-only'] });
    const provider = await freshProvider(emu, { token });
    const wrapped = await provider.wrapKey(randomKey(), {});
    const err = await keyfoldRejectionOf(provider.unwrapKey(wrapped, {}));
    expect(err.code).toBe('ACCESS_DENIED');
    expect((err.cause as { status?: number }).status).toBe(403);
    expect(err.message).not.toContain(token);
    expect(provider.resilienceStats()).toMatchObject({ retries: 0 });
    await provider.close();
  });

  it('namespaces hold their own keys (X-Vault-Namespace)', async () => {
    const name = keyName('ns');
    const inNs = await freshProvider(emu, { namespace: 'team-a', keyName: name });
    expect(inNs.keyId).toBe(`team-a/transit/keys/${name}`);
    const w = await inNs.wrapKey(randomKey(), {});
    expect(await inNs.unwrapKey(w, {})).toHaveLength(32);
    const err = await keyfoldRejectionOf(createVaultTransitProvider({ endpoint: emu.url, token: emu.rootToken, keyName: name, env: {} }));
    expect(err.code).toBe('KEY_NOT_FOUND');
    await inNs.close();
  });

  it('configuration errors name what to set', async () => {
    const missingAddr = await keyfoldRejectionOf(createVaultTransitProvider({ keyName: 'k', env: {} }));
    expect(missingAddr).toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining('VAULT_ADDR') });
    const missingToken = await keyfoldRejectionOf(createVaultTransitProvider({ keyName: 'k', env: { VAULT_ADDR: emu.url } }));
    expect(missingToken).toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining('VAULT_TOKEN') });
    const plainRemote = await keyfoldRejectionOf(createVaultTransitProvider({ keyName: 'k', endpoint: 'http://vault.example.com:8200', token: 't', env: {} }));
    expect(plainRemote).toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining('https') });
    const derived = keyName('derived');
    emu.createKey(derived, { derived: true });
    const mismatch = await keyfoldRejectionOf(createVaultTransitProvider({ keyName: derived, endpoint: emu.url, token: emu.rootToken, derived: false, env: {} }));
    expect(mismatch).toMatchObject({ code: 'CONFIG_INVALID' });
    await expect(createVaultTransitProvider({ keyName: 'k', token: 't', appRole: { roleId: 'r', secretId: 's' } })).rejects.toBeInstanceOf(TypeError);
    await expect(createVaultTransitProvider({ keyName: 'bad name' })).rejects.toBeInstanceOf(TypeError);
    const fromEnv = await createVaultTransitProvider({ keyName: derived, env: { VAULT_ADDR: emu.url, VAULT_TOKEN: emu.rootToken } });
    expect(fromEnv.derived).toBe(true);
    await fromEnv.close();
  });

  it('an unknown key: KEY_NOT_FOUND at creation', async () => {
    const err = await keyfoldRejectionOf(createVaultTransitProvider({ keyName: 'no-such-key', endpoint: emu.url, token: emu.rootToken, env: {} }));
    expect(err.code).toBe('KEY_NOT_FOUND');
  });
});

describe('vault-transit batch calls', () => {
  it('wrapKeys / unwrapKeys: one request per batchSize items; a bad item fails alone with UNWRAP_FAILED', async () => {
    const provider = await freshProvider(emu, { batchSize: 4 });
    const items = Array.from({ length: 10 }, (_, i) => ({ dataKey: randomKey(), context: { i: String(i) } }));
    emu.resetCounters();
    const wrapped = await provider.wrapKeys(items);
    expect(emu.counters.byOperation.encrypt).toBe(3);
    const ws = wrapped.map((r) => {
      if (!r.ok) throw r.error;
      return r.value;
    });
    const tampered = new Uint8Array(ws[3]!.ciphertext);
    tampered[20] = tampered[20]! ^ 1;
    const requests = ws.map((w, i) => ({ wrapped: w, context: { i: String(i) } }));
    requests[3] = { wrapped: { ...ws[3]!, ciphertext: tampered }, context: { i: '3' } };
    requests[5] = { wrapped: ws[5]!, context: { i: 'other' } };
    requests[7] = { wrapped: { ...ws[7]!, keyVersion: '01' }, context: { i: '7' } };
    const out = await provider.unwrapKeys(requests);
    out.forEach((r, i) => {
      if (i === 3 || i === 5 || i === 7) {
        expect(r).toMatchObject({ ok: false, error: { code: 'UNWRAP_FAILED' } });
      } else {
        expect(r.ok && Buffer.from(r.value).equals(Buffer.from(items[i]!.dataKey))).toBe(true);
      }
    });
    await provider.close();
    await expect(provider.unwrapKeys(requests)).rejects.toMatchObject({ code: 'PROVIDER_CLOSED' });
  });
});

describe('vault-transit redirects', () => {
  it('a redirect is not followed (the token would go to another address): CONFIG_INVALID naming it', async () => {
    const { createServer } = await import('node:http');
    let tokensSeen = 0;
    const redirector = createServer((req, res) => {
      if (req.headers['x-vault-token']) tokensSeen++;
      res.writeHead(307, { location: 'http://127.0.0.1:1/v1/transit/keys/k' }).end();
    });
    await new Promise<void>((r) => redirector.listen(0, '127.0.0.1', r));
    const port = (redirector.address() as { port: number }).port;
    try {
      const err = await keyfoldRejectionOf(createVaultTransitProvider({ endpoint: `http://127.0.0.1:${port}`, token: 'test-token', keyName: 'k', env: {} }));
      expect(err.code).toBe('CONFIG_INVALID');
      expect(err.message).toContain('redirected to http://127.0.0.1:1/v1/transit/keys/k');
      expect(tokensSeen).toBe(1); // sent to the configured endpoint only
    } finally {
      redirector.close();
    }
  });
});
