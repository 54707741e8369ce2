/**
 * `keyfold attest verify` and `keyfold attest fetch`, through the built binary. Documents are signed by a P-384 test
 * CA made with openssl (the emulators' createTestNitroCa: root -> intermediate -> leaf) with the emulators'
 * signNitroDocument; fetch is run against a small HTTP attestation endpoint in this process and against
 * the NSM emulator (LD_PRELOAD stand-in for /dev/nsm), both answering from this process's event loop, so those runs
 * spawn the CLI asynchronously.
 */
import { createHash, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EMULATED_PCRS, createTestNitroCa, signNitroDocument, startNsmEmulator, type NitroDocumentFields, type NsmEmulator } from '@keyfold/emulators';
import { keyfold, keyfoldAsync, makeTempDir, removeDir } from './helpers.js';

const work = makeTempDir('keyfold-attest-');
afterAll(() => removeDir(work));

const ca = createTestNitroCa(work, 'cli');
const other = createTestNitroCa(work, 'other');
/** PCR0..2 as the NSM emulator sends, plus an all-zero PCR3 (hidden unless --all-pcrs). */
const PCRS = new Map<number, Uint8Array>([...EMULATED_PCRS, [3, new Uint8Array(48)]]);
const PCR0 = Buffer.from(EMULATED_PCRS.get(0) as Uint8Array).toString('hex');
const PCR1 = Buffer.from(EMULATED_PCRS.get(1) as Uint8Array).toString('hex');
const enclaveKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'der' });
const fingerprint = (spki: Uint8Array): string => `sha256:${createHash('sha256').update(spki).digest('hex')}`;

function sign(fields: NitroDocumentFields = {}, signWith?: KeyObject): Buffer {
  return Buffer.from(signNitroDocument(ca.signer, { pcrs: PCRS, publicKey: enclaveKey, ...fields }, signWith));
}

let files = 0;
function docFile(bytes: Buffer | string): string {
  const path = join(work, `doc-${++files}.bin`);
  writeFileSync(path, bytes);
  return path;
}

const nonce = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
const goodDoc = docFile(sign({ nonce, userData: Buffer.from('app v1') }));

describe('keyfold attest verify', () => {
  it('accepts a document under --root and shows module, PCRs (zeros hidden), key fingerprint, chain and KMS condition keys', () => {
    const r = keyfold(['attest', 'verify', goodDoc, '--root', ca.rootPemPath]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.out).toContain('Attestation document verified');
    expect(r.out).toContain('i-0123456789abcdef0-enc0123456789abcdef');
    expect(r.out).toContain(PCR0);
    expect(r.out).toContain('1 all-zero PCR hidden');
    expect(r.out).not.toMatch(/^3\s+0{96}/m);
    expect(r.out).toContain(`${fingerprint(enclaveKey)} (RSA 2048, 294 bytes DER)`);
    expect(r.out).not.toContain(enclaveKey.toString('base64').slice(0, 40));
    expect(r.out).toContain('present (6 bytes)');
    expect(r.out).toContain(nonce.toString('hex'));
    expect(r.out).toMatch(/leaf\s+CN=cli test leaf/);
    expect(r.out).toMatch(/intermediate\s+CN=cli test intermediate/);
    expect(r.out).toMatch(/root \(trusted\)\s+CN=cli test root/);
    expect(r.out).toContain(`chain to --root ${ca.rootPemPath}, signature`);
    expect(r.out).toContain(`"kms:RecipientAttestation:ImageSha384": "${PCR0}",`);
    expect(r.out).toContain(`"kms:RecipientAttestation:PCR1": "${PCR1}"`);
    expect(r.out).not.toContain('kms:RecipientAttestation:PCR3');

    const all = keyfold(['attest', 'verify', goodDoc, '--root', ca.rootPemPath, '--all-pcrs']);
    expect(all.status).toBe(0);
    expect(all.out).toMatch(/^3\s+0{96}\s+IAM role of the parent instance$/m);
  });

  it('a debug-mode enclave (all PCRs zero): a warning, and no condition keys to paste', () => {
    const zeros = new Map([0, 1, 2].map((i) => [i, new Uint8Array(48)] as const));
    const doc = docFile(sign({ pcrs: zeros }));
    const r = keyfold(['attest', 'verify', doc, '--root', ca.rootPemPath]);
    expect(r.status).toBe(0);
    expect(r.out).toContain('3 all-zero PCRs hidden');
    expect(r.out).toContain('PCR0 is all zeros: the enclave runs in debug mode');
    expect(r.out).toContain('(none: every PCR is zero)');
    expect(r.out).not.toContain('kms:RecipientAttestation:');
    const j = keyfold(['attest', 'verify', doc, '--root', ca.rootPemPath, '--json']);
    expect(JSON.parse(j.out)).toMatchObject({ debugMode: true, pcrs: [], kmsConditionKeys: {} });
  });

  it('--json: the same facts as one document', () => {
    const r = keyfold(['attest', 'verify', goodDoc, '--root', ca.rootPemPath, '--json']);
    expect(r.status).toBe(0);
    const j = JSON.parse(r.out) as Record<string, unknown>;
    expect(j).toMatchObject({
      valid: true,
      input: { encoding: 'binary' },
      moduleId: 'i-0123456789abcdef0-enc0123456789abcdef',
      digest: 'SHA384',
      pcrs: [{ index: 0, hex: PCR0 }, { index: 1, hex: PCR1 }, { index: 2 }],
      hiddenZeroPcrs: 1,
      debugMode: false,
      publicKey: { present: true, bytes: 294, sha256: fingerprint(enclaveKey), type: 'RSA 2048' },
      userData: { present: true, bytes: 6 },
      nonce: { present: true, hex: nonce.toString('hex') },
      checked: { chain: `--root ${ca.rootPemPath}`, pcrs: [], nonce: false },
      kmsConditionKeys: { 'kms:RecipientAttestation:ImageSha384': PCR0, 'kms:RecipientAttestation:PCR1': PCR1 },
    });
    expect(Date.parse(j.timestamp as string)).toBeGreaterThan(Date.now() - 120_000);
    expect((j.ageSeconds as number) >= 0 && (j.ageSeconds as number) < 120).toBe(true);
    const chain = j.chain as { role: string; subject: string; validFrom: string; validTo: string }[];
    expect(chain.map((c) => [c.role, c.subject])).toEqual([
      ['leaf', 'CN=cli test leaf'],
      ['intermediate', 'CN=cli test intermediate'],
      ['root', 'CN=cli test root'],
    ]);
    for (const c of chain) expect(Date.parse(c.validTo)).toBeGreaterThan(Date.parse(c.validFrom));
    expect(Object.keys(j.kmsConditionKeys as object)).not.toContain('kms:RecipientAttestation:PCR3');
  });

  it('the pinned AWS Nitro root (no --root) or another CA refuses it: exit 3, INTEGRITY_FAILED, UNTRUSTED_ROOT', () => {
    const r = keyfold(['attest', 'verify', goodDoc]);
    expect(r.status).toBe(3);
    expect(r.out).toBe('');
    expect(r.stderr).toMatch(/\(UNTRUSTED_ROOT\).*pinned AWS Nitro root \(pass --root FILE.*\[INTEGRITY_FAILED\]/);
    const j = keyfold(['attest', 'verify', goodDoc, '--json']);
    expect(j.status).toBe(3);
    expect(JSON.parse(j.out)).toMatchObject({ error: { code: 'INTEGRITY_FAILED', reason: 'UNTRUSTED_ROOT' } });
    const o = keyfold(['attest', 'verify', goodDoc, '--root', other.rootPemPath, '--json']);
    expect(o.status).toBe(3);
    expect(JSON.parse(o.out)).toMatchObject({ error: { code: 'INTEGRITY_FAILED', reason: 'UNTRUSTED_ROOT' } });
    // Both roots given: the right one anchors it.
    const both = keyfold(['attest', 'verify', goodDoc, '--root', other.rootPemPath, '--root', ca.rootPemPath, '--json']);
    expect(both.status).toBe(0);
    expect(JSON.parse(both.out)).toMatchObject({ checked: { chain: `--root ${ca.rootPemPath}` } });
  });

  it('--pcr: the right value passes, a wrong one or a PCR the document lacks is ACCESS_DENIED (PCR_MISMATCH), exit 3', () => {
    const ok = keyfold(['attest', 'verify', goodDoc, '--root', ca.rootPemPath, '--pcr', `0=${PCR0}`, '--pcr', `1=${PCR1.toUpperCase()}`]);
    expect(ok.status).toBe(0);
    expect(ok.out).toContain('PCR 0, 1');
    const wrong = keyfold(['attest', 'verify', goodDoc, '--root', ca.rootPemPath, '--pcr', `0=${'b0'.repeat(48)}`, '--json']);
    expect(wrong.status).toBe(3);
    expect(JSON.parse(wrong.out)).toMatchObject({ error: { code: 'ACCESS_DENIED', reason: 'PCR_MISMATCH', message: expect.stringContaining('PCR0') as unknown } });
    const missing = keyfold(['attest', 'verify', goodDoc, '--root', ca.rootPemPath, '--pcr', `7=${PCR0}`]);
    expect(missing.status).toBe(3);
    expect(missing.stderr).toMatch(/\(PCR_MISMATCH\).*\[ACCESS_DENIED\]/);
  });

  it('--nonce: the document must carry it (NONCE_MISMATCH otherwise, also when it has none)', () => {
    expect(keyfold(['attest', 'verify', goodDoc, '--root', ca.rootPemPath, '--nonce', nonce.toString('hex')]).status).toBe(0);
    const wrong = keyfold(['attest', 'verify', goodDoc, '--root', ca.rootPemPath, '--nonce', 'ff'.repeat(16), '--json']);
    expect(wrong.status).toBe(3);
    expect(JSON.parse(wrong.out)).toMatchObject({ error: { code: 'ACCESS_DENIED', reason: 'NONCE_MISMATCH' } });
    const none = keyfold(['attest', 'verify', docFile(sign()), '--root', ca.rootPemPath, '--nonce', 'ff']);
    expect(none.status).toBe(3);
    expect(none.stderr).toContain('NONCE_MISMATCH');
  });

  it('--max-age: a ten-minute-old document is STALE under 60 s and accepted under 3600 s; one from the future is STALE', () => {
    const old = docFile(sign({ timestamp: Date.now() - 10 * 60_000 }));
    const stale = keyfold(['attest', 'verify', old, '--root', ca.rootPemPath, '--max-age', '60', '--json']);
    expect(stale.status).toBe(3);
    expect(JSON.parse(stale.out)).toMatchObject({ error: { code: 'ACCESS_DENIED', reason: 'STALE' } });
    const fine = keyfold(['attest', 'verify', old, '--root', ca.rootPemPath, '--max-age', '3600']);
    expect(fine.status).toBe(0);
    expect(fine.out).toContain('(10 min ago)');
    expect(fine.out).toContain('age <= 3600 s');
    const future = keyfold(['attest', 'verify', docFile(sign({ timestamp: Date.now() + 10 * 60_000 })), '--root', ca.rootPemPath, '--max-age', '3600']);
    expect(future.status).toBe(3);
    expect(future.stderr).toContain('STALE');
  });

  it('a flipped byte in the payload, a foreign signature and garbage are refused with exit 3 (INTEGRITY_FAILED)', () => {
    const bytes = sign();
    const at = bytes.indexOf(Buffer.from('i-0123456789abcdef0'));
    expect(at).toBeGreaterThan(0);
    const tampered = Buffer.from(bytes);
    tampered[at + 5] = (tampered[at + 5] as number) ^ 0x01;
    const t = keyfold(['attest', 'verify', docFile(tampered), '--root', ca.rootPemPath, '--json']);
    expect(t.status).toBe(3);
    expect(JSON.parse(t.out)).toMatchObject({ error: { code: 'INTEGRITY_FAILED', reason: 'BAD_SIGNATURE' } });
    const otherKey = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
    const foreign = keyfold(['attest', 'verify', docFile(sign({}, otherKey)), '--root', ca.rootPemPath]);
    expect(foreign.status).toBe(3);
    expect(foreign.stderr).toMatch(/\(BAD_SIGNATURE\).*\[INTEGRITY_FAILED\]/);
    const truncated = keyfold(['attest', 'verify', docFile(bytes.subarray(0, bytes.length - 10)), '--root', ca.rootPemPath, '--json']);
    expect(truncated.status).toBe(3);
    expect(JSON.parse(truncated.out)).toMatchObject({ error: { code: 'INTEGRITY_FAILED', reason: 'MALFORMED' } });
    const huge = keyfold(['attest', 'verify', '-', '--root', ca.rootPemPath], { input: Buffer.alloc(1024 * 1024 + 1, 0x84) });
    expect(huge.status).toBe(3);
    expect(huge.stderr).toContain('larger than 1048576 bytes');
    const empty = keyfold(['attest', 'verify', '-', '--root', ca.rootPemPath], { input: '' });
    expect(empty.status).toBe(3);
    expect(empty.stderr).toContain('MALFORMED');
  });

  it('base64 text (wrapped, from stdin) and base64url (from a file) are detected and verified', () => {
    const bytes = readFileSync(goodDoc);
    const wrapped = `${bytes.toString('base64').replace(/.{76}/g, '$&\n')}\n`;
    const b64 = keyfold(['attest', 'verify', '-', '--root', ca.rootPemPath, '--json'], { input: wrapped });
    expect(b64.status).toBe(0);
    expect(JSON.parse(b64.out)).toMatchObject({ valid: true, input: { encoding: 'base64', bytes: bytes.length } });
    const url = keyfold(['attest', 'verify', docFile(bytes.toString('base64url')), '--root', ca.rootPemPath]);
    expect(url.status).toBe(0);
    expect(url.out).toContain('base64 text');
    const rawStdin = keyfold(['attest', 'verify', '-', '--root', ca.rootPemPath], { input: bytes });
    expect(rawStdin.status).toBe(0);
  });

  it('usage errors exit 2; an unreadable input exits 1 (IO_ERROR)', () => {
    const notPem = docFile('not a certificate');
    for (const args of [
      [],
      [goodDoc, goodDoc],
      [goodDoc, '--pcr', '32=' + PCR0],
      [goodDoc, '--pcr', '0=abc'],
      [goodDoc, '--pcr', '0=' + 'aa'.repeat(20)],
      [goodDoc, '--pcr', `0=${PCR0}`, '--pcr', `0=${PCR0}`],
      [goodDoc, '--nonce', 'xyz'],
      [goodDoc, '--max-age', '0'],
      [goodDoc, '--max-age', '-5'],
      [goodDoc, '--root', notPem],
      [goodDoc, '--bogus'],
    ]) {
      const r = keyfold(['attest', 'verify', ...args]);
      expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toContain('[USAGE]');
    }
    const missing = keyfold(['attest', 'verify', join(work, 'nope.bin')]);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain('[IO_ERROR]');
    const noRoot = keyfold(['attest', 'verify', goodDoc, '--root', join(work, 'nope.pem')]);
    expect(noRoot.status).toBe(1);
  });
});

/** What the endpoint was asked for (decoded query parameters). */
interface EndpointRequest {
  readonly publicKey: Buffer | undefined;
  readonly userData: Buffer | undefined;
  readonly nonce: Buffer | undefined;
}
type Answer = (request: EndpointRequest) => Uint8Array;

/**
 * A minimal Anjuna-style endpoint: GET /api/v1/attestation/report?publicKey=&userData=&nonce= (base64url). It answers
 * honestly (a document signed by the test CA with what was asked) unless `answer` is set: a hostile or stale endpoint.
 */
function startEndpoint(): Promise<{ server: Server; url: string; requests: number; answer: Answer | undefined }> {
  const state: { requests: number; answer: Answer | undefined } = { requests: 0, answer: undefined };
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    state.requests++;
    if (url.pathname !== '/api/v1/attestation/report') {
      res.writeHead(404).end();
      return;
    }
    const param = (n: string): Buffer | undefined => {
      const v = url.searchParams.get(n);
      return v === null ? undefined : Buffer.from(v, 'base64url');
    };
    const asked = { publicKey: param('publicKey'), userData: param('userData'), nonce: param('nonce') };
    const document =
      state.answer?.(asked) ?? signNitroDocument(ca.signer, { publicKey: asked.publicKey ?? null, userData: asked.userData ?? null, nonce: asked.nonce ?? null });
    res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(Buffer.from(document));
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        server,
        url: `http://127.0.0.1:${port}`,
        get requests() {
          return state.requests;
        },
        get answer() {
          return state.answer;
        },
        set answer(a: Answer | undefined) {
          state.answer = a;
        },
      });
    });
  });
}

function fingerprintIn(out: string): string {
  return /sha256:[0-9a-f]{64}/.exec(out)?.[0] ?? 'none';
}

describe('keyfold attest fetch', () => {
  let endpoint: Awaited<ReturnType<typeof startEndpoint>>;
  beforeAll(async () => {
    endpoint = await startEndpoint();
  });
  afterAll(() => new Promise<void>((resolve) => endpoint.server.close(() => resolve())));

  it('over HTTP: writes the document (mode 0600) naming a fresh public key; verify accepts it with the nonce', async () => {
    const dir = join(work, 'fetch-http');
    mkdirSync(dir);
    const out = join(dir, 'doc.cbor');
    const nonceHex = 'a1b2c3d4e5f60718';
    const r = await keyfoldAsync(['attest', 'fetch', '--source', endpoint.url, '--root', ca.rootPemPath, '--nonce', nonceHex, '--user-data', 'ticket 42', '--out', out]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.out).toContain('Attestation document written (');
    expect(r.out).toContain(out);
    expect(r.out).not.toMatch(/PRIVATE KEY|BEGIN/);
    expect(statSync(out).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir)).toEqual(['doc.cbor']);
    const v = keyfold(['attest', 'verify', out, '--root', ca.rootPemPath, '--nonce', nonceHex, '--max-age', '60', '--json']);
    expect(v.status).toBe(0);
    const j = JSON.parse(v.out) as { publicKey: { sha256: string; type: string }; userData: { bytes: number } };
    expect(j.publicKey.sha256).toBe(fingerprintIn(r.out));
    expect(j.publicKey.type).toBe('RSA 2048');
    expect(j.userData.bytes).toBe('ticket 42'.length);

    // --json, and a second fetch makes a new key pair.
    const out2 = join(dir, 'doc2.cbor');
    const r2 = await keyfoldAsync(['attest', 'fetch', '--source', `${endpoint.url}/`, '--root', ca.rootPemPath, '--out', out2, '--json']);
    expect(r2.status).toBe(0);
    const j2 = JSON.parse(r2.out) as { ok: boolean; path: string; bytes: number; source: string; mode: string; publicKey: string };
    expect(j2).toMatchObject({ ok: true, path: out2, bytes: statSync(out2).size, source: endpoint.url, mode: '0600' });
    expect(j2.publicKey).not.toBe(j.publicKey.sha256);
  });

  it('refuses to replace an existing file (exit 1, ALREADY_EXISTS, nothing fetched) unless --force', async () => {
    const dir = join(work, 'fetch-exists');
    mkdirSync(dir);
    const out = join(dir, 'doc.cbor');
    writeFileSync(out, 'keep me');
    const before = endpoint.requests;
    const r = await keyfoldAsync(['attest', 'fetch', '--source', endpoint.url, '--out', out]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('[ALREADY_EXISTS]');
    expect(readFileSync(out, 'utf8')).toBe('keep me');
    expect(endpoint.requests).toBe(before);
    const forced = await keyfoldAsync(['attest', 'fetch', '--source', endpoint.url, '--root', ca.rootPemPath, '--out', out, '--force']);
    expect(forced.status).toBe(0);
    expect(statSync(out).mode & 0o777).toBe(0o600);
    expect(keyfold(['attest', 'verify', out, '--root', ca.rootPemPath]).status).toBe(0);
    expect(readdirSync(dir)).toEqual(['doc.cbor']);
  });

  it('an endpoint that fails or cannot be reached is UNAVAILABLE (exit 1) and nothing is written', async () => {
    const dir = join(work, 'fetch-down');
    mkdirSync(dir);
    const wrongPath = await keyfoldAsync(['attest', 'fetch', '--source', `${endpoint.url}/elsewhere`, '--out', join(dir, 'doc')]);
    expect(wrongPath.status).toBe(1);
    expect(wrongPath.stderr).toMatch(/HTTP 404.*\[UNAVAILABLE\]/);
    const closed = await startEndpoint();
    await new Promise<void>((resolve) => closed.server.close(() => resolve()));
    const down = await keyfoldAsync(['attest', 'fetch', '--source', closed.url, '--out', join(dir, 'doc')]);
    expect(down.status).toBe(1);
    expect(down.stderr).toContain('[UNAVAILABLE]');
    expect(readdirSync(dir)).toEqual([]);
  });

  it('--source nsm outside an enclave (no device): exit 1, UNAVAILABLE, nothing written', () => {
    const dir = join(work, 'fetch-nsm-missing');
    mkdirSync(dir);
    const r = keyfold(['attest', 'fetch', '--source', 'nsm', '--device', join(dir, 'no-nsm'), '--out', join(dir, 'doc.cbor')]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/not running inside a Nitro Enclave; outside an enclave use --source http:\/\/HOST:PORT.*\[UNAVAILABLE\]/);
    expect(readdirSync(dir)).toEqual([]);
    const j = keyfold(['attest', 'fetch', '--source', 'nsm', '--device', join(dir, 'no-nsm'), '--out', join(dir, 'doc.cbor'), '--json']);
    expect(j.status).toBe(1);
    expect(JSON.parse(j.out)).toMatchObject({ error: { code: 'UNAVAILABLE' } });
    expect(readdirSync(dir)).toEqual([]);
  });

  /** Runs fetch (text, then --json) into an empty directory: refused with exit 3, `code` and `reason`, nothing written. */
  async function expectRefused(name: string, args: readonly string[], code: string, reason: string): Promise<void> {
    const dir = join(work, name);
    mkdirSync(dir);
    const out = join(dir, 'doc.cbor');
    const r = await keyfoldAsync(['attest', 'fetch', '--source', endpoint.url, '--out', out, ...args]);
    expect(r.status, r.stderr).toBe(3);
    expect(r.stderr).toMatch(new RegExp(`^keyfold: attestation document refused \\(${reason}\\): .*\\[${code}\\]\\n$`));
    expect(r.out).toBe('');
    expect(readdirSync(dir)).toEqual([]);
    const j = await keyfoldAsync(['attest', 'fetch', '--source', endpoint.url, '--out', out, '--json', ...args]);
    expect(j.status).toBe(3);
    expect(JSON.parse(j.out)).toMatchObject({ error: { code, reason } });
    expect(readdirSync(dir)).toEqual([]);
  }

  it('a stale document naming another key (or none) is refused: exit 3, ACCESS_DENIED (PUBLIC_KEY_MISMATCH), nothing written', async () => {
    // A genuine document, signed by the trusted CA, but made for another request (enclaveKey): a replay.
    const stale = sign({ timestamp: Date.now() - 60_000 });
    endpoint.answer = () => stale;
    try {
      await expectRefused('fetch-stale', ['--root', ca.rootPemPath], 'ACCESS_DENIED', 'PUBLIC_KEY_MISMATCH');
      const r = await keyfoldAsync(['attest', 'fetch', '--source', endpoint.url, '--root', ca.rootPemPath, '--out', join(work, 'fetch-stale', 'x')]);
      // Both fingerprints are named: the one the document carries and the one sent (never key bytes).
      expect(r.stderr).toContain(`names the public key ${fingerprint(enclaveKey)}, not sha256:`);
      expect(r.stderr).not.toContain(enclaveKey.toString('base64').slice(0, 40));

      // --force over an existing file: the file keeps its bytes.
      const kept = join(work, 'fetch-stale', 'kept.cbor');
      writeFileSync(kept, 'previous document');
      const forced = await keyfoldAsync(['attest', 'fetch', '--source', endpoint.url, '--root', ca.rootPemPath, '--out', kept, '--force']);
      expect(forced.status).toBe(3);
      expect(readFileSync(kept, 'utf8')).toBe('previous document');
      expect(readdirSync(join(work, 'fetch-stale'))).toEqual(['kept.cbor']);

      endpoint.answer = (asked) => signNitroDocument(ca.signer, { publicKey: null, nonce: asked.nonce ?? null });
      await expectRefused('fetch-no-key', ['--root', ca.rootPemPath], 'ACCESS_DENIED', 'PUBLIC_KEY_MISMATCH');
    } finally {
      endpoint.answer = undefined;
    }
  });

  it('a document without the nonce or user data sent is refused: exit 3, ACCESS_DENIED (NONCE_MISMATCH / USER_DATA_MISMATCH)', async () => {
    const nonceArgs = ['--root', ca.rootPemPath, '--nonce', 'a1b2c3d4e5f60718'];
    endpoint.answer = (asked) =>
      signNitroDocument(ca.signer, { publicKey: asked.publicKey ?? null, nonce: Buffer.from('a1b2c3d4e5f60719', 'hex'), userData: asked.userData ?? null });
    try {
      await expectRefused('fetch-wrong-nonce', nonceArgs, 'ACCESS_DENIED', 'NONCE_MISMATCH');
      endpoint.answer = (asked) => signNitroDocument(ca.signer, { publicKey: asked.publicKey ?? null, nonce: null });
      await expectRefused('fetch-no-nonce', nonceArgs, 'ACCESS_DENIED', 'NONCE_MISMATCH');
      endpoint.answer = (asked) =>
        signNitroDocument(ca.signer, { publicKey: asked.publicKey ?? null, nonce: asked.nonce ?? null, userData: Buffer.from('ticket 43') });
      await expectRefused('fetch-wrong-user-data', [...nonceArgs, '--user-data', 'ticket 42'], 'ACCESS_DENIED', 'USER_DATA_MISMATCH');
    } finally {
      endpoint.answer = undefined;
    }
  });

  it('a document that is not authentic is refused: exit 3, INTEGRITY_FAILED (UNTRUSTED_ROOT, BAD_SIGNATURE, MALFORMED), nothing written', async () => {
    // Signed by another CA, naming the right key: untrusted under --root ca.
    endpoint.answer = (asked) => signNitroDocument(other.signer, { publicKey: asked.publicKey ?? null });
    try {
      await expectRefused('fetch-other-ca', ['--root', ca.rootPemPath], 'INTEGRITY_FAILED', 'UNTRUSTED_ROOT');
      // The honest endpoint under the test CA, with no --root: the pinned AWS Nitro root does not trust it.
      endpoint.answer = undefined;
      await expectRefused('fetch-pinned-root', [], 'INTEGRITY_FAILED', 'UNTRUSTED_ROOT');
      // The right CA's certificates, the signature of another key.
      endpoint.answer = (asked) => signNitroDocument(ca.signer, { publicKey: asked.publicKey ?? null }, other.signer.key);
      await expectRefused('fetch-bad-signature', ['--root', ca.rootPemPath], 'INTEGRITY_FAILED', 'BAD_SIGNATURE');
      endpoint.answer = () => Buffer.from('not an attestation document');
      await expectRefused('fetch-garbage', ['--root', ca.rootPemPath], 'INTEGRITY_FAILED', 'MALFORMED');
    } finally {
      endpoint.answer = undefined;
    }
  });

  it('a valid answer is written, and the output says what was checked', async () => {
    const dir = join(work, 'fetch-checked');
    mkdirSync(dir);
    const out = join(dir, 'doc.cbor');
    const r = await keyfoldAsync(['attest', 'fetch', '--source', endpoint.url, '--root', ca.rootPemPath, '--nonce', '0a0b', '--user-data', 'u', '--out', out]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.out).toMatch(/checked\s+chain to the --root certificates, signature, public key, nonce, user data/);
    expect(readdirSync(dir)).toEqual(['doc.cbor']);
    const j = await keyfoldAsync(['attest', 'fetch', '--source', endpoint.url, '--root', ca.rootPemPath, '--out', join(dir, 'doc2.cbor'), '--json']);
    expect(j.status).toBe(0);
    expect(JSON.parse(j.out)).toMatchObject({ checked: { signature: true, publicKey: true, nonce: false, userData: false } });
  });

  it('usage errors exit 2 and fetch nothing', () => {
    const before = endpoint.requests;
    for (const args of [
      ['--out', join(work, 'u1')],
      ['--source', 'nsm'],
      ['--source', 'nsm', '--out', '-'],
      ['--source', 'ftp://127.0.0.1/', '--out', join(work, 'u2')],
      ['--source', 'not a url', '--out', join(work, 'u3')],
      ['--source', endpoint.url, '--device', '/dev/nsm', '--out', join(work, 'u4')],
      ['--source', endpoint.url, '--nonce', 'abc', '--out', join(work, 'u5')],
      ['--source', endpoint.url, '--nonce', 'aa'.repeat(513), '--out', join(work, 'u6')],
      ['--source', endpoint.url, '--user-data', 'x'.repeat(513), '--out', join(work, 'u7')],
    ]) {
      const r = keyfold(['attest', 'fetch', ...args]);
      expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(2);
    }
    expect(endpoint.requests).toBe(before);
    for (const n of ['u1', 'u2', 'u3', 'u4', 'u5', 'u6', 'u7']) expect(existsSync(join(work, n))).toBe(false);
  });
});

describe('keyfold attest fetch --source nsm through the NSM emulator (emulated /dev/nsm)', () => {
  let nsm: NsmEmulator;
  beforeAll(async () => {
    nsm = await startNsmEmulator({ signer: ca.signer });
  });
  afterAll(async () => {
    await nsm.close();
  });

  it('asks the NSM through the native binding; the document carries the nonce, user data and the fresh key, and verifies', async () => {
    const dir = join(work, 'fetch-nsm');
    mkdirSync(dir);
    const out = join(dir, 'doc.cbor');
    const before = nsm.counters.attestations;
    const r = await keyfoldAsync(
      ['attest', 'fetch', '--source', 'nsm', '--device', nsm.devicePath, '--root', ca.rootPemPath, '--nonce', nonce.toString('hex'), '--user-data', 'app v2', '--out', out],
      { env: nsm.env },
    );
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.out).toContain(`nsm (${nsm.devicePath})`);
    expect(nsm.counters.attestations - before).toBe(1);
    expect(nsm.counters.last?.publicKey?.length).toBe(294);
    expect(Buffer.from(nsm.counters.last?.nonce ?? []).equals(nonce)).toBe(true);
    expect(Buffer.from(nsm.counters.last?.userData ?? []).toString()).toBe('app v2');
    expect(fingerprintIn(r.out)).toBe(fingerprint(nsm.counters.last?.publicKey ?? new Uint8Array()));
    expect(statSync(out).mode & 0o777).toBe(0o600);

    const v = keyfold(['attest', 'verify', out, '--root', ca.rootPemPath, '--nonce', nonce.toString('hex'), '--pcr', `0=${PCR0}`, '--max-age', '60', '--json']);
    expect(v.status).toBe(0);
    expect(JSON.parse(v.out)).toMatchObject({
      moduleId: expect.stringMatching(/^i-[0-9a-f]+-enc[0-9a-f]+$/) as unknown,
      publicKey: { sha256: fingerprintIn(r.out) },
      userData: { bytes: 6 },
      kmsConditionKeys: { 'kms:RecipientAttestation:ImageSha384': PCR0 },
    });
  });

  it('the NSM answer is checked too: without --root (the pinned AWS Nitro root) it is refused, exit 3, nothing written', async () => {
    const dir = join(work, 'fetch-nsm-untrusted');
    mkdirSync(dir);
    const r = await keyfoldAsync(['attest', 'fetch', '--source', 'nsm', '--device', nsm.devicePath, '--out', join(dir, 'doc.cbor')], { env: nsm.env });
    expect(r.status).toBe(3);
    expect(r.stderr).toMatch(/\(UNTRUSTED_ROOT\).*trusted: the pinned AWS Nitro root.*\[INTEGRITY_FAILED\]/);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('an NSM error answer is reported with its code (exit 1) and nothing is written', async () => {
    const dir = join(work, 'fetch-nsm-error');
    mkdirSync(dir);
    nsm.faults.errorCode = 'InternalError';
    try {
      const r = await keyfoldAsync(['attest', 'fetch', '--source', 'nsm', '--device', nsm.devicePath, '--out', join(dir, 'doc.cbor')], { env: nsm.env });
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/InternalError.*\[UNAVAILABLE\]/);
    } finally {
      nsm.faults.errorCode = undefined;
    }
    expect(readdirSync(dir)).toEqual([]);
  });
});
