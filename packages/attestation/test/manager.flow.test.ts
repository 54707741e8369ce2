/**
 * The attestation manager with @keyfold/provider-aws against the AWS KMS emulator, which verifies every document
 * against a test root: attested GenerateDataKey and Decrypt, refresh after the age limit, one regeneration and retry
 * after a rejected document, `required` never falling back, and one shared initialisation for concurrent callers.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { startAwsKmsEmulator } from '@keyfold/emulators';
import { createAwsKmsProvider } from '@keyfold/provider-aws';
import { createAttestationManager, nsmSource, type AttestationRequest } from '../src/index.js';
import { makeDocument, makeTestCa } from './fixtures.js';

const ca = makeTestCa('flow');
const rogue = makeTestCa('rogue');
const emu = await startAwsKmsEmulator({ port: 0, attestationRoots: [ca.rootPem] });
afterAll(() => emu.close());
const key = await emu.createKey({ keySpec: 'SYMMETRIC_DEFAULT' });

type Recipient = Parameters<typeof createAwsKmsProvider>[0]['recipient'];
const provider = (recipient: Recipient) =>
  createAwsKmsProvider({
    keyId: key.Arn,
    region: emu.region,
    endpoint: emu.url,
    credentials: { accessKeyId: 'AKIDKEYFOLDTEST', secretAccessKey: 'emulator-does-not-check' },
    resilience: { retry: { maxAttempts: 1 } },
    ...(recipient ? { recipient } : {}),
  });

/** A source that signs documents with the test chain (or, while `bad` > 0, with an untrusted one). */
function testSource(opts: { bad?: number } = {}) {
  let bad = opts.bad ?? 0;
  const calls: AttestationRequest[] = [];
  return {
    calls,
    source: (req: AttestationRequest) => {
      calls.push(req);
      const useRogue = bad > 0;
      if (useRogue) bad--;
      return makeDocument(useRogue ? rogue : ca, { publicKey: req.publicKey, ...(req.nonce ? { nonce: req.nonce } : {}) });
    },
  };
}

describe('attestation manager + provider-aws + emulator', () => {
  it('attested GenerateDataKey and Decrypt: KMS sends CMS only the enclave key opens; one document serves both', async () => {
    const { source, calls } = testSource();
    const manager = createAttestationManager({ source });
    const kms = await provider(manager.recipient({ required: true }));
    emu.resetCounters();
    const { dataKey, wrapped } = await kms.generateDataKey({ tenant: 't1' });
    expect(Buffer.from(await kms.unwrapKey(wrapped, { tenant: 't1' })).equals(Buffer.from(dataKey))).toBe(true);
    await expect(kms.unwrapKey(wrapped, { tenant: 't2' })).rejects.toMatchObject({ code: 'UNWRAP_FAILED' });
    expect(calls).toHaveLength(1);
    expect(manager.getStatus()).toMatchObject({ state: 'ready', source: 'function', keyPairsGenerated: 1, documentsFetched: 1, rejections: 0, fallbacks: 0 });
    manager.destroy();
    expect(manager.getStatus().state).toBe('destroyed');
    await expect(kms.generateDataKey({})).rejects.toMatchObject({ code: 'CONFIG_INVALID' }); // required: no silent plain call
    await kms.close();
  });

  it('refreshes the document (and key pair) once it reaches the age limit', async () => {
    let t = 1_000_000;
    const { source, calls } = testSource();
    const manager = createAttestationManager({ source, maxDocumentAge: 60_000, now: () => t });
    const kms = await provider(manager.recipient());
    const { wrapped } = await kms.generateDataKey({});
    t += 30_000;
    await kms.unwrapKey(wrapped, {});
    expect(calls).toHaveLength(1);
    t += 30_000; // 60 s: at the limit (refresh starts 6 s before it)
    await kms.unwrapKey(wrapped, {});
    expect(calls).toHaveLength(2);
    expect(Buffer.from(calls[0]!.publicKey).equals(Buffer.from(calls[1]!.publicKey))).toBe(false);
    expect(manager.getStatus()).toMatchObject({ keyPairsGenerated: 2, documentsFetched: 2, documentAge: 0 });
    manager.destroy();
    await kms.close();
  });

  it('a rejected document triggers exactly one regeneration and one retry', async () => {
    const { source, calls } = testSource({ bad: 1 });
    const warnings: string[] = [];
    const manager = createAttestationManager({ source, logger: { warn: (m) => warnings.push(m) } });
    const kms = await provider(manager.recipient());
    emu.resetCounters();
    const { dataKey, wrapped } = await kms.generateDataKey({});
    expect(dataKey).toHaveLength(32);
    expect(emu.counters.byOperation.GenerateDataKey).toBe(2);
    expect(calls).toHaveLength(2);
    expect(manager.getStatus()).toMatchObject({ keyPairsGenerated: 2, documentsFetched: 2, rejections: 1 });
    expect(warnings.join('\n')).toMatch(/rejected the attestation document \(ValidationException\)/);
    await kms.unwrapKey(wrapped, {});
    manager.destroy();
    await kms.close();
  });

  it('a document rejected twice fails after the one retry (no loop, no fallback)', async () => {
    const { source, calls } = testSource({ bad: 5 });
    const manager = createAttestationManager({ source, logger: { warn: () => undefined } });
    const kms = await provider(manager.recipient({ required: false }));
    emu.resetCounters();
    await expect(kms.generateDataKey({})).rejects.toThrow();
    expect(emu.counters.byOperation.GenerateDataKey).toBe(2);
    expect(calls).toHaveLength(2);
    expect(manager.getStatus()).toMatchObject({ rejections: 1, fallbacks: 0 }); // the hook runs once per call
    manager.destroy();
    await kms.close();
  });

  it('required: true never falls back; required: false falls back with a logged, counted warning', async () => {
    const failing = createAttestationManager({ source: nsmSource({ devicePath: '/nonexistent/nsm' }), logger: { warn: () => undefined } });
    const strict = await provider(failing.recipient({ required: true }));
    emu.resetCounters();
    // The NSM is absent (UNAVAILABLE from nsmSource): that code, not a configuration error, and no KMS call.
    await expect(strict.generateDataKey({})).rejects.toMatchObject({ code: 'UNAVAILABLE', message: expect.stringMatching(/^no attestation document for the KMS recipient: .*not running inside a Nitro Enclave/) as unknown });
    expect(emu.counters.byOperation.GenerateDataKey ?? 0).toBe(0);
    expect(failing.getStatus()).toMatchObject({ fallbacks: 0, lastError: expect.stringMatching(/absent: this is not running inside a Nitro Enclave/) as unknown });
    await strict.close();

    const warnings: string[] = [];
    const dev = createAttestationManager({ source: nsmSource({ devicePath: '/nonexistent/nsm' }), logger: { warn: (m) => warnings.push(m) } });
    const lenient = await provider(dev.recipient({ required: false }));
    const { dataKey, wrapped } = await lenient.generateDataKey({});
    expect(Buffer.from(await lenient.unwrapKey(wrapped, {})).equals(Buffer.from(dataKey))).toBe(true);
    expect(dev.getStatus().fallbacks).toBe(2);
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toMatch(/ProviderError UNAVAILABLE.*required is false/);
    expect(warnings[0]).not.toMatch(/nonexistent/); // class and code only
    await lenient.close();
  });

  it('100 simultaneous first calls: one key pair, one document fetch', async () => {
    const { source, calls } = testSource();
    const manager = createAttestationManager({ source });
    const docs = await Promise.all(Array.from({ length: 100 }, () => manager.getDocument()));
    expect(calls).toHaveLength(1);
    expect(manager.getStatus()).toMatchObject({ keyPairsGenerated: 1, documentsFetched: 1 });
    expect(new Set(docs.map((d) => Buffer.from(d).toString('base64'))).size).toBe(1);
    manager.destroy();
    await expect(manager.getDocument()).rejects.toMatchObject({ code: 'PROVIDER_CLOSED' });
  });

  it('a call that raced a refresh still opens its CMS with the previous key; reinitialize() replaces the key pair', async () => {
    const { source, calls } = testSource();
    const manager = createAttestationManager({ source });
    const r = manager.recipient();
    const racing = {
      ...r,
      attestationDocument: async () => {
        const doc = await r.attestationDocument();
        await manager.reinitialize(); // a refresh lands between our document and KMS's answer
        return doc;
      },
    };
    const kms = await provider(racing);
    const { dataKey, wrapped } = await kms.generateDataKey({});
    expect(calls).toHaveLength(2);
    await kms.close();
    const plain = await provider(r);
    expect(Buffer.from(await plain.unwrapKey(wrapped, {})).equals(Buffer.from(dataKey))).toBe(true);
    expect(manager.getStatus()).toMatchObject({ state: 'ready', keyPairsGenerated: 2 });
    manager.destroy();
    await expect(r.decrypt(new Uint8Array(10))).rejects.toMatchObject({ code: 'PROVIDER_CLOSED' });
    await plain.close();
  });
});
