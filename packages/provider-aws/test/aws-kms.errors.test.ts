/**
 * Backend errors mapped to codes with the SDK error as cause; key resolution; the retry arrangement with an
 * injected client; credentials and region problems reported as configuration errors.
 */
import { KMSClient } from '@aws-sdk/client-kms';
import { describe, expect, it } from 'vitest';
import { keyfoldRejectionOf } from '@keyfold/conformance';
import { createAwsKmsProvider, RsaKmsProvider, SymmetricKmsProvider } from '../src/index.js';
import { CREDENTIALS, freshProvider, kmsEmulator, randomKey } from './helpers.js';

const emu = await kmsEmulator();
const base = { region: emu.region, endpoint: emu.url, credentials: CREDENTIALS };

function client(): KMSClient {
  return new KMSClient({ region: emu.region, endpoint: emu.url, credentials: CREDENTIALS });
}

describe('aws-kms key resolution', () => {
  it('an alias resolves once to the key ARN, which wrapped keys record', async () => {
    const meta = await emu.createKey({ alias: 'alias/keyfold-resolve' });
    const provider = await createAwsKmsProvider({ keyId: 'alias/keyfold-resolve', ...base });
    expect(provider).toBeInstanceOf(SymmetricKmsProvider);
    expect(provider.keyId).toBe(meta.Arn);
    const wrapped = await provider.wrapKey(randomKey(), {});
    expect(wrapped.keyId).toBe(meta.Arn);
    const byId = await createAwsKmsProvider({ keyId: meta.KeyId, ...base });
    expect(byId.keyId).toBe(meta.Arn);
    expect(await byId.unwrapKey(wrapped, {})).toHaveLength(32);
    await provider.close();
    await byId.close();
  });

  it('a multi-Region key records its ARN without the region, so replicas share wrapped keys', async () => {
    const meta = await emu.createKey({ multiRegion: true });
    const provider = await createAwsKmsProvider({ keyId: meta.Arn, ...base });
    expect(provider.keyId).toBe(meta.Arn.replace(`:${emu.region}:`, '::'));
    expect(provider.arn).toBe(meta.Arn);
    const w = await provider.wrapKey(randomKey(), { a: 'b' });
    expect(await provider.unwrapKey(w, { a: 'b' })).toHaveLength(32);
    await provider.close();
  });

  it('an RSA key gives the RSA provider', async () => {
    const provider = await freshProvider(emu, 'RSA_3072');
    expect(provider).toBeInstanceOf(RsaKmsProvider);
    expect(provider.keySpec).toBe('RSA_3072');
    await provider.close();
  });
});

describe('aws-kms error mapping', () => {
  it('unknown key or alias: KEY_NOT_FOUND at creation, with the SDK error as cause', async () => {
    const err = await keyfoldRejectionOf(createAwsKmsProvider({ keyId: 'alias/does-not-exist', ...base }));
    expect(err.code).toBe('KEY_NOT_FOUND');
    expect((err.cause as Error).name).toBe('NotFoundException');
  });

  it('disabled key: KEY_DISABLED on every operation; enabled again it works', async () => {
    const provider = await freshProvider(emu);
    const kms = client();
    const wrapped = await provider.wrapKey(randomKey(), {});
    const { DisableKeyCommand, EnableKeyCommand, ScheduleKeyDeletionCommand } = await import('@aws-sdk/client-kms');
    await kms.send(new DisableKeyCommand({ KeyId: provider.arn }));
    const calls = [() => provider.wrapKey(randomKey(), {}), () => provider.unwrapKey(wrapped, {}), () => provider.generateDataKey({}), () => provider.rewrapKey(wrapped, {})];
    for (const call of calls) {
      const err = await keyfoldRejectionOf(call());
      expect(err.code).toBe('KEY_DISABLED');
      expect((err.cause as Error).name).toBe('DisabledException');
    }
    const probe = await provider.probe();
    expect(probe).toMatchObject({ ok: false, error: { code: 'KEY_DISABLED' } });
    await kms.send(new EnableKeyCommand({ KeyId: provider.arn }));
    expect(await provider.unwrapKey(wrapped, {})).toHaveLength(32);
    await kms.send(new ScheduleKeyDeletionCommand({ KeyId: provider.arn, PendingWindowInDays: 7 }));
    const pending = await keyfoldRejectionOf(provider.unwrapKey(wrapped, {}));
    expect(pending.code).toBe('KEY_DISABLED');
    expect((pending.cause as Error).name).toBe('KMSInvalidStateException');
    kms.destroy();
    await provider.close();
  });

  it('access denied: ACCESS_DENIED, not retried', async () => {
    const provider = await freshProvider(emu, 'SYMMETRIC_DEFAULT', { credentials: { ...CREDENTIALS, accessKeyId: 'AKIDREVOKEDLATER' } });
    emu.denyAccessKey('AKIDREVOKEDLATER');
    const err = await keyfoldRejectionOf(provider.generateDataKey({}));
    expect(err.code).toBe('ACCESS_DENIED');
    expect(err.message).toContain(provider.arn);
    expect(provider.resilienceStats()).toMatchObject({ attempts: 1, retries: 0 });
    await provider.close();
  });

  it('a ciphertext of another KMS key: UNWRAP_FAILED (IncorrectKeyException is not leaked)', async () => {
    const a = await freshProvider(emu);
    const b = await freshProvider(emu);
    const w = await a.wrapKey(randomKey(), {});
    const err = await keyfoldRejectionOf(b.unwrapKey({ ...w, keyId: b.keyId }, {}));
    expect(err.code).toBe('UNWRAP_FAILED');
    expect((err.cause as Error).name).toBe('IncorrectKeyException');
    await a.close();
    await b.close();
  });

  it('requests signed for another region: ACCESS_DENIED (InvalidSignatureException)', async () => {
    const meta = await emu.createKey();
    const err = await keyfoldRejectionOf(createAwsKmsProvider({ ...base, keyId: meta.Arn, region: 'eu-west-1' }));
    expect(err.code).toBe('ACCESS_DENIED');
    expect((err.cause as Error).name).toBe('InvalidSignatureException');
  });

  it('no region anywhere: CONFIG_INVALID naming AWS_REGION', async () => {
    const saved = { AWS_REGION: process.env.AWS_REGION, AWS_DEFAULT_REGION: process.env.AWS_DEFAULT_REGION, AWS_PROFILE: process.env.AWS_PROFILE, AWS_CONFIG_FILE: process.env.AWS_CONFIG_FILE };
    delete process.env.AWS_REGION;
    delete process.env.AWS_DEFAULT_REGION;
    process.env.AWS_CONFIG_FILE = '/nonexistent/keyfold-test-config';
    try {
      const err = await keyfoldRejectionOf(createAwsKmsProvider({ keyId: 'alias/x', endpoint: emu.url, credentials: CREDENTIALS }));
      expect(err.code).toBe('CONFIG_INVALID');
      expect(err.message).toContain('AWS_REGION');
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });

  it('malformed options are caller mistakes (TypeError / RangeError)', async () => {
    await expect(createAwsKmsProvider({ keyId: '' })).rejects.toBeInstanceOf(TypeError);
    await expect(createAwsKmsProvider({ keyId: 'alias/x', grantTokens: Array.from({ length: 11 }, () => 't') })).rejects.toBeInstanceOf(RangeError);
    await expect(createAwsKmsProvider({ keyId: 'alias/x', client: {} as never })).rejects.toBeInstanceOf(TypeError);
    await expect(createAwsKmsProvider({ keyId: 'alias/x', recipient: { decrypt: () => new Uint8Array() } as never })).rejects.toBeInstanceOf(TypeError);
  });

  it('grant tokens are sent with every call, DescribeKey at creation included', async () => {
    const meta = await emu.createKey();
    const err = await keyfoldRejectionOf(createAwsKmsProvider({ ...base, keyId: meta.Arn, grantTokens: ['invalid-grant-token'] }));
    expect(err.code).toBe('ACCESS_DENIED');
    expect((err.cause as Error).name).toBe('InvalidGrantTokenException');
    const ok = await createAwsKmsProvider({ ...base, keyId: meta.Arn, grantTokens: ['grant-token-1'] });
    expect(await ok.unwrapKey(await ok.wrapKey(randomKey(), {}), {})).toHaveLength(32);
    await ok.close();
  });
});

describe('aws-kms with an injected client', () => {
  it('uses the client as given (its own retries) and makes one attempt per call itself; close() leaves it open', async () => {
    const kms = new KMSClient({ region: emu.region, endpoint: emu.url, credentials: CREDENTIALS, maxAttempts: 3 });
    const meta = await emu.createKey();
    const provider = await createAwsKmsProvider({ keyId: meta.Arn, client: kms });
    emu.faults.set({ serverErrorRatio: 1, operations: ['GenerateDataKey'] });
    emu.resetCounters();
    const err = await keyfoldRejectionOf(provider.generateDataKey({}));
    expect(err.code).toBe('UNAVAILABLE');
    expect(emu.counters.byOperation.GenerateDataKey).toBe(3); // the SDK's three attempts, no second loop on top
    expect(provider.resilienceStats()).toMatchObject({ attempts: 1, retries: 0 });
    emu.faults.clear();
    await provider.close();
    const { DescribeKeyCommand } = await import('@aws-sdk/client-kms');
    expect((await kms.send(new DescribeKeyCommand({ KeyId: meta.Arn }))).KeyMetadata?.Arn).toBe(meta.Arn);
    kms.destroy();
  });
});
