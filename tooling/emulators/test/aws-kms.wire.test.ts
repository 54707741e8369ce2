/**
 * The AWS KMS emulator on the wire: JSON 1.1 requests as the SDK sends them (the signature is not verified, only its
 * presence and scope), the real service's status codes and `__type` names, exact encryption contexts, rotation.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { startAwsKmsEmulator } from '../src/index.js';

const emu = await startAwsKmsEmulator({ port: 0 });
afterAll(() => emu.close());

const AUTH = `AWS4-HMAC-SHA256 Credential=AKIDTEST/20250101/${emu.region}/kms/aws4_request, SignedHeaders=host, Signature=00`;

async function kms(op: string, body: unknown, auth = AUTH): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(emu.url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': `TrentService.${op}`, authorization: auth },
    body: JSON.stringify(body),
  });
  expect(res.headers.get('content-type')).toBe('application/x-amz-json-1.1');
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

const b64 = (b: Uint8Array | string): string => Buffer.from(b).toString('base64');

describe('aws-kms emulator', () => {
  it('Encrypt / Decrypt with an exact encryption context; any other context is InvalidCiphertextException (400)', async () => {
    const { KeyMetadata: key } = (await kms('CreateKey', {})).json as { KeyMetadata: { KeyId: string; Arn: string; CurrentKeyMaterialId: string } };
    expect(key.Arn).toBe(`arn:aws:kms:${emu.region}:${emu.accountId}:key/${key.KeyId}`);
    const enc = await kms('Encrypt', { KeyId: key.KeyId, Plaintext: b64('secret'), EncryptionContext: { a: 'b', c: 'd' } });
    expect(enc.status).toBe(200);
    const blob = enc.json.CiphertextBlob as string;
    const ok = await kms('Decrypt', { CiphertextBlob: blob, EncryptionContext: { c: 'd', a: 'b' } });
    expect(ok.json).toMatchObject({ KeyId: key.Arn, Plaintext: b64('secret'), KeyMaterialId: key.CurrentKeyMaterialId, EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' });
    for (const ctx of [{ a: 'b' }, { a: 'b', c: 'D' }, { a: 'b', c: 'd', e: 'f' }, undefined]) {
      const bad = await kms('Decrypt', { CiphertextBlob: blob, ...(ctx ? { EncryptionContext: ctx } : {}) });
      expect(bad).toMatchObject({ status: 400, json: { __type: 'InvalidCiphertextException' } });
    }
  });

  it('the real error behaviour: NotFound, Disabled, IncorrectKey, pending deletion, oversized plaintext, unknown operation', async () => {
    const a = ((await kms('CreateKey', {})).json.KeyMetadata as { KeyId: string }).KeyId;
    const b = ((await kms('CreateKey', {})).json.KeyMetadata as { KeyId: string }).KeyId;
    expect((await kms('DescribeKey', { KeyId: 'alias/missing' })).json.__type).toBe('NotFoundException');
    expect((await kms('Encrypt', { KeyId: a, Plaintext: b64(new Uint8Array(4097)) })).json.__type).toBe('ValidationException');
    expect((await kms('Encrypt', { KeyId: a, Plaintext: b64(new Uint8Array(4096)) })).status).toBe(200);
    const blob = (await kms('Encrypt', { KeyId: a, Plaintext: b64('x') })).json.CiphertextBlob;
    expect((await kms('Decrypt', { KeyId: b, CiphertextBlob: blob })).json.__type).toBe('IncorrectKeyException');
    await kms('DisableKey', { KeyId: a });
    expect(await kms('Decrypt', { CiphertextBlob: blob })).toMatchObject({ status: 400, json: { __type: 'DisabledException' } });
    await kms('EnableKey', { KeyId: a });
    expect((await kms('Decrypt', { CiphertextBlob: blob })).status).toBe(200);
    await kms('ScheduleKeyDeletion', { KeyId: a, PendingWindowInDays: 7 });
    expect((await kms('Decrypt', { CiphertextBlob: blob })).json.__type).toBe('KMSInvalidStateException');
    expect((await kms('Frobnicate', {})).json.__type).toBe('UnknownOperationException');
    expect((await kms('DescribeKey', { KeyId: b }, 'none')).json.__type).toBe('MissingAuthenticationTokenException');
  });

  it('RotateKeyOnDemand: new material current, older ciphertexts still decrypt, ListKeyRotations lists all', async () => {
    const key = (await kms('CreateKey', {})).json.KeyMetadata as { KeyId: string; CurrentKeyMaterialId: string };
    const blob = (await kms('Encrypt', { KeyId: key.KeyId, Plaintext: b64('old') })).json.CiphertextBlob;
    await kms('RotateKeyOnDemand', { KeyId: key.KeyId });
    const after = (await kms('DescribeKey', { KeyId: key.KeyId })).json.KeyMetadata as { CurrentKeyMaterialId: string };
    expect(after.CurrentKeyMaterialId).not.toBe(key.CurrentKeyMaterialId);
    expect((await kms('Decrypt', { CiphertextBlob: blob })).json).toMatchObject({ Plaintext: b64('old'), KeyMaterialId: key.CurrentKeyMaterialId });
    const re = await kms('ReEncrypt', { CiphertextBlob: blob, DestinationKeyId: key.KeyId });
    expect(re.json).toMatchObject({ SourceKeyMaterialId: key.CurrentKeyMaterialId, DestinationKeyMaterialId: after.CurrentKeyMaterialId });
    const list = (await kms('ListKeyRotations', { KeyId: key.KeyId, IncludeKeyMaterial: 'ALL_KEY_MATERIAL' })).json.Rotations as { KeyMaterialId: string; KeyMaterialState: string }[];
    expect(list.map((r) => [r.KeyMaterialId, r.KeyMaterialState])).toEqual([
      [key.CurrentKeyMaterialId, 'NON_CURRENT'],
      [after.CurrentKeyMaterialId, 'CURRENT'],
    ]);
    expect(((await kms('ListKeyRotations', { KeyId: key.KeyId })).json.Rotations as unknown[]).length).toBe(1);
  });

  it('RSA keys: GetPublicKey, RSAES_OAEP_SHA_256 limits, no rotation, no GenerateDataKey', async () => {
    const key = (await kms('CreateKey', { KeySpec: 'RSA_2048', KeyUsage: 'ENCRYPT_DECRYPT' })).json.KeyMetadata as { KeyId: string };
    const pub = await kms('GetPublicKey', { KeyId: key.KeyId });
    expect(pub.json).toMatchObject({ KeySpec: 'RSA_2048', EncryptionAlgorithms: ['RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256'] });
    const alg = { EncryptionAlgorithm: 'RSAES_OAEP_SHA_256' };
    expect((await kms('Encrypt', { KeyId: key.KeyId, Plaintext: b64(new Uint8Array(190)), ...alg })).status).toBe(200);
    expect((await kms('Encrypt', { KeyId: key.KeyId, Plaintext: b64(new Uint8Array(191)), ...alg })).json.__type).toBe('ValidationException');
    expect((await kms('RotateKeyOnDemand', { KeyId: key.KeyId })).json.__type).toBe('UnsupportedOperationException');
    expect((await kms('GenerateDataKey', { KeyId: key.KeyId, KeySpec: 'AES_256' })).json.__type).toBe('InvalidKeyUsageException');
  });

  it('faults: throttling is ThrottlingException 400, 5xx is KMSInternalException 500, counters and the admin endpoint agree', async () => {
    const key = ((await kms('CreateKey', {})).json.KeyMetadata as { KeyId: string }).KeyId;
    emu.resetCounters();
    emu.faults.set({ throttleRatio: 1 });
    expect(await kms('DescribeKey', { KeyId: key })).toMatchObject({ status: 400, json: { __type: 'ThrottlingException' } });
    const admin = await fetch(`${emu.url}/__keyfold/faults`, { method: 'POST', body: JSON.stringify({ serverErrorRatio: 1 }) });
    expect(admin.status).toBe(200);
    expect(await kms('DescribeKey', { KeyId: key })).toMatchObject({ status: 500, json: { __type: 'KMSInternalException' } });
    emu.faults.set({ outage: true });
    await expect(kms('DescribeKey', { KeyId: key })).rejects.toThrow();
    emu.faults.clear();
    const counters = (await (await fetch(`${emu.url}/__keyfold/counters`)).json()) as Record<string, unknown>;
    expect(counters).toMatchObject({ requests: 3, throttled: 1, serverErrors: 1, outageRejected: 1, served: 0, byOperation: { DescribeKey: 3 } });
    expect(() => emu.faults.set({ throttleRatio: 1.5 })).toThrow(RangeError);
  });
});
