/**
 * When AWS KMS refuses the enclave's attested request, seal and open say so with a coded ATTESTATION_REFUSED (not
 * INTERNAL, UNWRAP_FAILED or DECRYPT_FAILED); an attestation endpoint that is down is UNAVAILABLE; an endpoint with
 * its own path and parameter names works end to end. Real AWS SDK (@keyfold/provider-aws) against the KMS emulator,
 * which verifies documents against a test root and enforces kms:RecipientAttestation PCR conditions.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { createEnvelope } from '@keyfold/envelope-core';
import { startAwsKmsEmulator } from '@keyfold/emulators';
import { createAwsKmsProvider } from '@keyfold/provider-aws';
import { createAttestationManager, httpSource, type AttestationFunction, type AttestationRequest, type AttestationSource } from '../src/index.js';
import { PCR0, makeDocument, makeTestCa } from './fixtures.js';

const ca = makeTestCa('refused');
const rogue = makeTestCa('refused-rogue');
const emu = await startAwsKmsEmulator({ port: 0, attestationRoots: [ca.rootPem] });
afterAll(() => emu.close());

type Recipient = Parameters<typeof createAwsKmsProvider>[0]['recipient'];
const provider = (keyId: string, recipient?: Recipient) =>
  createAwsKmsProvider({
    keyId,
    region: emu.region,
    endpoint: emu.url,
    credentials: { accessKeyId: 'AKIDKEYFOLDTEST', secretAccessKey: 'emulator-does-not-check' },
    resilience: { retry: { maxAttempts: 1 } },
    ...(recipient ? { recipient } : {}),
  });

/** A key and an envelope sealed under it without a Recipient (what an enclave later has to open). */
async function keyWithEnvelope(): Promise<{ arn: string; sealed: Uint8Array }> {
  const { Arn } = await emu.createKey({ keySpec: 'SYMMETRIC_DEFAULT' });
  const plain = await provider(Arn);
  const envelope = createEnvelope({ providers: [plain] });
  const sealed = await envelope.seal('for the enclave only', { tenant: 't1' });
  await envelope.close();
  await plain.close();
  return { arn: Arn, sealed };
}

const signedBy = (chain: typeof ca) => (req: AttestationRequest) =>
  makeDocument(chain, { publicKey: req.publicKey, ...(req.nonce ? { nonce: req.nonce } : {}) });
const quiet = { warn: () => undefined };
const failure = (e: unknown) => e as { code?: string; message: string; name: string };

/** Seal and open through an enclave recipient (required); each outcome is 'sealed', the opened text, or the error. */
async function sealAndOpen(arn: string, sealed: Uint8Array, source: AttestationSource | AttestationFunction) {
  const manager = createAttestationManager({ source, logger: quiet });
  const kms = await provider(arn, manager.recipient({ required: true }));
  const envelope = createEnvelope({ providers: [kms], cache: false });
  const seal = await envelope.seal('new data', { tenant: 't1' }).then(() => 'sealed', failure);
  const open = await envelope.open(sealed, { context: { tenant: 't1' } }).then((b) => Buffer.from(b).toString(), failure);
  const status = manager.getStatus();
  await envelope.close();
  await kms.close();
  manager.destroy();
  return { seal, open, status };
}

describe('KMS refuses the attestation document', () => {
  it('a document from an untrusted chain: seal and open are ATTESTATION_REFUSED after the one retry', async () => {
    const { arn, sealed } = await keyWithEnvelope();
    emu.resetCounters();
    const r = await sealAndOpen(arn, sealed, signedBy(rogue));
    for (const outcome of [r.seal, r.open]) {
      expect(outcome).toMatchObject({ code: 'ATTESTATION_REFUSED', message: expect.stringContaining('does not lead to a trusted root') as unknown });
      expect((outcome as { message: string }).message).toContain(arn);
    }
    expect(emu.counters.byOperation.GenerateDataKey).toBe(2); // refused, new key pair and document, refused again
    expect(emu.counters.byOperation.Decrypt).toBe(2);
    expect(r.status.rejections).toBe(2);
  });

  it('a key policy whose PCR0 condition this enclave does not meet: ATTESTATION_REFUSED, no pointless retry', async () => {
    const { arn, sealed } = await keyWithEnvelope();
    emu.requireRecipientAttestation(arn, { PCR0: 'ff'.repeat(48) });
    emu.resetCounters();
    const r = await sealAndOpen(arn, sealed, signedBy(ca));
    for (const outcome of [r.seal, r.open]) {
      expect(outcome).toMatchObject({ code: 'ATTESTATION_REFUSED', message: expect.stringContaining('kms:RecipientAttestation conditions') as unknown });
    }
    expect(emu.counters.byOperation.GenerateDataKey).toBe(1);
    expect(emu.counters.byOperation.Decrypt).toBe(1);
    expect(r.status.rejections).toBe(0);

    // The same key with the enclave's real measurements (PCR0 and ImageSha384) opens and seals.
    emu.requireRecipientAttestation(arn, { PCR0: PCR0.toString('hex'), ImageSha384: PCR0.toString('hex').toUpperCase() });
    const ok = await sealAndOpen(arn, sealed, signedBy(ca));
    expect(ok).toMatchObject({ seal: 'sealed', open: 'for the enclave only' });

    // Without a Recipient the request is an ordinary denial: ACCESS_DENIED, not an attestation refusal.
    const plain = await provider(arn);
    await expect(createEnvelope({ providers: [plain] }).seal('x')).rejects.toMatchObject({ code: 'ACCESS_DENIED' });
    await plain.close();
    emu.requireRecipientAttestation(arn, undefined);
  });

  it('the emulator refuses conditions it does not know', async () => {
    const { Arn } = await emu.createKey({});
    expect(() => emu.requireRecipientAttestation(Arn, { PCR32: 'aa' })).toThrow(/unknown kms:RecipientAttestation condition "PCR32"/);
    expect(() => emu.requireRecipientAttestation(Arn, { PCR0: 'xyz' })).toThrow(/PCR0 must be a hex string/);
  });
});

/** An attestation sidecar with its own path and parameter names, signing with the trusted test chain. */
function sidecar(path: string, names: { publicKey: string; nonce: string }): Promise<{ server: Server; url: string; seen: URL[] }> {
  const seen: URL[] = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    seen.push(url);
    const pk = url.searchParams.get(names.publicKey);
    if (url.pathname !== path || pk === null) {
      res.writeHead(404).end();
      return;
    }
    const nonce = url.searchParams.get(names.nonce);
    res.writeHead(200, { 'content-type': 'application/cbor' });
    res.end(makeDocument(ca, { publicKey: Buffer.from(pk, 'base64url'), ...(nonce === null ? {} : { nonce: Buffer.from(nonce, 'base64url') }) }));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen })));
}

describe('attestation endpoint', () => {
  it('a configured path and parameter names: seal and open through KMS; the default path there is UNAVAILABLE', async () => {
    const { arn, sealed } = await keyWithEnvelope();
    const side = await sidecar('/enclave/v2/attest', { publicKey: 'pk', nonce: 'challenge' });
    try {
      const nonce = new Uint8Array([1, 2, 3, 0xff]);
      const manager = createAttestationManager({
        source: httpSource({ baseUrl: side.url, path: '/enclave/v2/attest', parameters: { publicKey: 'pk', nonce: 'challenge' } }),
        nonce,
        logger: quiet,
      });
      const kms = await provider(arn, manager.recipient());
      const envelope = createEnvelope({ providers: [kms], cache: false });
      const again = await envelope.seal('attested', { tenant: 't1' });
      expect(Buffer.from(await envelope.open(again, { context: { tenant: 't1' } })).toString()).toBe('attested');
      expect(Buffer.from(await envelope.open(sealed, { context: { tenant: 't1' } })).toString()).toBe('for the enclave only');
      const asked = side.seen.at(-1)!;
      expect(asked.pathname).toBe('/enclave/v2/attest');
      expect(asked.searchParams.get('challenge')).toBe('AQID_w');
      expect(asked.searchParams.has('publicKey')).toBe(false);
      await envelope.close();
      await kms.close();
      manager.destroy();

      const r = await sealAndOpen(arn, sealed, httpSource({ baseUrl: side.url }));
      expect(r.seal).toMatchObject({ code: 'UNAVAILABLE', message: expect.stringContaining('HTTP 404') as unknown });
      expect(r.open).toMatchObject({ code: 'UNAVAILABLE' });
    } finally {
      await new Promise<void>((resolve) => side.server.close(() => resolve()));
    }
  });

  it('an endpoint that is down: seal and open are UNAVAILABLE, naming the endpoint, without a KMS call', async () => {
    const { arn, sealed } = await keyWithEnvelope();
    const side = await sidecar('/x', { publicKey: 'pk', nonce: 'n' });
    const deadUrl = side.url;
    await new Promise<void>((resolve) => side.server.close(() => resolve()));
    emu.resetCounters();
    const r = await sealAndOpen(arn, sealed, httpSource({ baseUrl: deadUrl, timeoutMs: 2000 }));
    for (const outcome of [r.seal, r.open]) {
      expect(outcome).toMatchObject({ code: 'UNAVAILABLE', message: expect.stringContaining(`the attestation endpoint ${deadUrl} could not be reached`) as unknown });
    }
    expect(emu.counters.byOperation.GenerateDataKey ?? 0).toBe(0);
    expect(emu.counters.byOperation.Decrypt ?? 0).toBe(0);
  });
});
