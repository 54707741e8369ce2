/**
 * Key states, identities and configuration through the real `@azure/keyvault-keys` clients: disabled versions and
 * deleted keys map to clear codes, denied tokens to ACCESS_DENIED, versionless kids resolve to (and record) the
 * version used, pinned kids stay on their version, and keys that do not fit the algorithm are refused.
 */
import { inspect } from 'node:util';
import { KeyClient } from '@azure/keyvault-keys';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rejectionOf } from '@keyfold/conformance';
import { isKeyfoldError } from '@keyfold/envelope-core';
import { AZURE_KV_KIND, createAzureKeyVaultProvider, type AzureKeyVaultProviderOptions } from '../src/index.js';
import {
  clientOptionsFor,
  createSelfSignedCertificate,
  freshName,
  startAzureKeyVaultEmulator,
  staticCredential,
  type AzureKeyVaultEmulator,
  type SelfSignedCertificate,
} from './helpers.js';

let tls: SelfSignedCertificate;
let emu: AzureKeyVaultEmulator;
let admin: KeyClient;
let url: string;

beforeAll(async () => {
  tls = createSelfSignedCertificate();
  emu = await startAzureKeyVaultEmulator({ tls, managedHsm: true });
  url = emu.httpsUrl!;
  admin = new KeyClient(url, staticCredential('admin-token'), { disableChallengeResourceVerification: true, tlsOptions: { ca: tls.cert } });
});

afterAll(async () => {
  await emu.close();
});

function options(keyId: string, extra: Partial<AzureKeyVaultProviderOptions> = {}): AzureKeyVaultProviderOptions {
  return {
    keyId,
    credential: staticCredential(),
    clientOptions: clientOptionsFor(url, tls),
    resilience: { retry: false, circuitBreaker: false },
    ...extra,
  };
}

const KEY = new Uint8Array(32).fill(0x5a);
const VERSION_OF = (kid: string): string => kid.split('/').pop()!;

describe('Key Vault: key states', () => {
  it('maps a disabled key version to KEY_DISABLED on wrap and on unwrap', async () => {
    const name = freshName('disabled');
    const v1 = VERSION_OF(emu.createKey(name, { kty: 'RSA' }));
    const provider = await createAzureKeyVaultProvider(options(`${url}/keys/${name}`));
    const wrapped = await provider.wrapKey(KEY, { a: '1' });
    await admin.updateKeyProperties(name, v1, { enabled: false });
    const wrapErr = await rejectionOf(provider.wrapKey(KEY, {}));
    expect(isKeyfoldError(wrapErr, 'KEY_DISABLED')).toBe(true);
    expect((wrapErr as Error).message).toMatch(/disabled/);
    expect((wrapErr as Error).cause).toMatchObject({ statusCode: 403 });
    const unwrapErr = await rejectionOf(provider.unwrapKey(wrapped, { a: '1' }));
    expect(isKeyfoldError(unwrapErr, 'KEY_DISABLED')).toBe(true);
    // Starting a provider on the disabled version says so too.
    expect(isKeyfoldError(await rejectionOf(createAzureKeyVaultProvider(options(`${url}/keys/${name}/${v1}`))), 'KEY_DISABLED')).toBe(true);
    await admin.updateKeyProperties(name, v1, { enabled: true });
    expect(Buffer.from(await provider.unwrapKey(wrapped, { a: '1' }))).toEqual(Buffer.from(KEY));
    await provider.close();
  });

  it('moves new wraps to the new current version when the cached one is disabled, old keys still unwrap', async () => {
    const name = freshName('moved');
    const v1 = VERSION_OF(emu.createKey(name, { kty: 'RSA' }));
    const provider = await createAzureKeyVaultProvider(options(`${url}/keys/${name}`));
    const old = await provider.wrapKey(KEY, {});
    const v2 = (await admin.createKey(name, 'RSA')).properties.version!;
    await admin.updateKeyProperties(name, v1, { enabled: false });
    const fresh = await provider.wrapKey(KEY, {});
    expect(fresh.keyVersion).toBe(v2);
    expect(isKeyfoldError(await rejectionOf(provider.unwrapKey(old, {})), 'KEY_DISABLED')).toBe(true);
    const d = await provider.describe();
    expect(d.activeVersion).toBe(v2);
    expect(d.versions).toEqual([v2]);
    await provider.close();
  });

  it('maps a deleted key to KEY_NOT_FOUND everywhere, with a message that says so', async () => {
    const name = freshName('deleted');
    emu.createKey(name, { kty: 'RSA' });
    const provider = await createAzureKeyVaultProvider(options(`${url}/keys/${name}`));
    const wrapped = await provider.wrapKey(KEY, {});
    const poller = await admin.beginDeleteKey(name, { intervalInMs: 1 });
    await poller.pollUntilDone();
    for (const call of [() => provider.wrapKey(KEY, {}), () => provider.unwrapKey(wrapped, {}), () => provider.describe()]) {
      const err = await rejectionOf(call());
      expect(isKeyfoldError(err, 'KEY_NOT_FOUND')).toBe(true);
      expect((err as Error).message).toMatch(/deleted/);
      expect((err as Error).cause).toMatchObject({ statusCode: 404, code: 'KeyNotFound' });
    }
    const created = await rejectionOf(createAzureKeyVaultProvider(options(`${url}/keys/${name}`)));
    expect(isKeyfoldError(created, 'KEY_NOT_FOUND')).toBe(true);
    expect((await provider.probe()).error?.code).toBe('KEY_NOT_FOUND');
    await provider.close();
  });

  it('maps a token the vault refuses (403) or does not accept (401) to ACCESS_DENIED, never echoing the token', async () => {
    const name = freshName('denied');
    emu.createKey(name, { kty: 'RSA' });
    const token = 'secret-token-value-123';
    const provider = await createAzureKeyVaultProvider({ ...options(`${url}/keys/${name}`), credential: staticCredential(token) });
    const wrapped = await provider.wrapKey(KEY, {});
    for (const decision of ['forbidden', 'unauthorized'] as const) {
      emu.setAccessPolicy((t, op) => (t === token && (op === 'wrapKey' || op === 'unwrapKey') ? decision : 'allow'));
      for (const call of [() => provider.wrapKey(KEY, {}), () => provider.unwrapKey(wrapped, {})]) {
        const err = await rejectionOf(call());
        expect(isKeyfoldError(err, 'ACCESS_DENIED')).toBe(true);
        // Neither the message nor the SDK error kept as cause carries the bearer token.
        expect(inspect(err, { depth: 12 })).not.toContain(token);
        expect((err as { cause: { request: { headers: { get(n: string): unknown } } } }).cause.request.headers.get('authorization')).toBeUndefined();
      }
    }
    emu.setAccessPolicy(undefined);
    await provider.close();
  });
});

describe('Key Vault: versions and identity', () => {
  it('records the version used for a versionless kid, and follows a rotation made elsewhere after a refresh', async () => {
    const name = freshName('follow');
    const v1 = VERSION_OF(emu.createKey(name, { kty: 'RSA' }));
    const provider = await createAzureKeyVaultProvider(options(`${url}/keys/${name}`, { versionRefreshMs: 0 }));
    expect(provider.keyId).toBe(`${url}/keys/${name}`);
    expect(provider.kind).toBe(AZURE_KV_KIND);
    expect(provider.pinnedVersion).toBeUndefined();
    const w1 = await provider.wrapKey(KEY, {});
    expect(w1.keyVersion).toBe(v1);
    const v2 = (await admin.createKey(name, 'RSA')).properties.version!;
    const w2 = await provider.wrapKey(KEY, {});
    // The version Key Vault really used (a versionless SDK client would still report v1 here).
    expect(w2.keyVersion).toBe(v2);
    expect(Buffer.from(await provider.unwrapKey(w2, {}))).toEqual(Buffer.from(KEY));
    expect(Buffer.from(await provider.unwrapKey(w1, {}))).toEqual(Buffer.from(KEY));
    expect((await provider.describe()).versions).toEqual([v1, v2]);
    await provider.close();
  });

  it('keeps a versioned kid on its version and refuses to rotate it', async () => {
    const name = freshName('pinned');
    const v1 = VERSION_OF(emu.createKey(name, { kty: 'RSA-HSM' }));
    const provider = await createAzureKeyVaultProvider(options(`${url}/keys/${name}/${v1}`));
    expect(provider.keyId).toBe(`${url}/keys/${name}`);
    expect(provider.pinnedVersion).toBe(v1);
    expect(provider.protection).toBe('hsm');
    await admin.createKey(name, 'RSA-HSM');
    expect((await provider.wrapKey(KEY, {})).keyVersion).toBe(v1);
    const d = await provider.describe();
    expect(d.activeVersion).toBe(v1);
    expect(d.capabilities.rotate).toBe(false);
    expect(isKeyfoldError(await rejectionOf(provider.rotate()), 'CONFIG_INVALID')).toBe(true);
    await provider.close();
  });

  it('refuses keys that do not fit the algorithm or do not allow wrapping', async () => {
    const rsa = freshName('rsa');
    emu.createKey(rsa, { kty: 'RSA' });
    const oct = freshName('oct');
    emu.createKey(oct, { kty: 'oct-HSM' });
    const noWrap = freshName('nowrap');
    emu.createKey(noWrap, { kty: 'RSA', key_ops: ['sign', 'verify'] });
    for (const [name, algorithm] of [[rsa, 'A256KW'], [oct, 'RSA-OAEP-256'], [noWrap, 'RSA-OAEP-256']] as const) {
      const err = await rejectionOf(createAzureKeyVaultProvider(options(`${url}/keys/${name}`, { algorithm })));
      expect(isKeyfoldError(err, 'CONFIG_INVALID')).toBe(true);
    }
  });

  it('refuses malformed options with TypeError / RangeError', async () => {
    const credential = staticCredential();
    for (const keyId of ['', 'kek', 'https://v.vault.azure.net/secrets/s', 'https://v.vault.azure.net/keys/k/NOTAVERSION', 'ftp://v/keys/k', 'https://v.vault.azure.net/keys/k?x=1']) {
      await expect(createAzureKeyVaultProvider({ keyId, credential })).rejects.toBeInstanceOf(TypeError);
    }
    const keyId = 'https://v.vault.azure.net/keys/k';
    await expect(createAzureKeyVaultProvider({ keyId })).rejects.toBeInstanceOf(TypeError);
    await expect(createAzureKeyVaultProvider({ keyId, credential, algorithm: 'RSA1_5' as never })).rejects.toBeInstanceOf(TypeError);
    await expect(createAzureKeyVaultProvider({ keyId, credential, versionRefreshMs: Number.NaN })).rejects.toBeInstanceOf(RangeError);
  });
});
