/**
 * `keyfold attest verify FILE|-`: verifies an AWS Nitro attestation document with `verifyAttestationDocument` and
 * shows what an operator needs to trust it: module, time and age, PCRs, the public key's fingerprint, the certificate
 * chain, and the KMS key-policy condition keys for its PCRs.
 *
 * Security rule: the document is untrusted input until it verifies, so nothing in it is printed before that, and
 * every string from it (module id, certificate subjects) is escaped for the terminal. The public key is shown only
 * as its SHA-256 fingerprint.
 * @module
 */
import { createPublicKey, X509Certificate } from 'node:crypto';
import { resolve } from 'node:path';
import type { AttestationDocument } from '@keyfold/attestation';
import type { CommandContext } from '../command.js';
import { UsageError } from '../exit-codes.js';
import { ioError, openInput, readAll } from '../input.js';
import { formatFields, formatTable, printable } from '../output.js';
import { loadRoots, parseHexOption, sha256Fingerprint, verifyDocument, type TrustedRoot } from './attest-common.js';

/** Nitro documents are about 4-5 KiB; anything over this is not one (base64 text of one is a third larger). */
const MAX_INPUT = 1024 * 1024;

/** What each PCR measures (AWS Nitro Enclaves documentation). */
const PCR_MEANING: Readonly<Record<number, string>> = {
  0: 'enclave image file',
  1: 'Linux kernel and bootstrap',
  2: 'application',
  3: 'IAM role of the parent instance',
  4: 'instance id of the parent instance',
  8: 'enclave image signing certificate',
};

interface Options {
  readonly roots: readonly TrustedRoot[];
  readonly expectedPcrs: Readonly<Record<number, string>>;
  readonly nonce: Buffer | undefined;
  readonly maxAgeMs: number | undefined;
  readonly allPcrs: boolean;
}

interface ChainEntry {
  readonly role: 'leaf' | 'intermediate' | 'root';
  readonly subject: string;
  readonly issuer: string;
  readonly validFrom: string;
  readonly validTo: string;
  readonly fingerprint256: string;
  /** For the root: the pinned AWS Nitro root or `--root FILE`. */
  readonly trustedBy?: string;
}

function parsePcrs(ctx: CommandContext): Record<number, string> {
  const pcrs: Record<number, string> = {};
  for (const entry of ctx.args.list('pcr')) {
    const m = /^(\d{1,2})=(.*)$/s.exec(entry);
    const index = m === null ? NaN : Number(m[1]);
    if (m === null || !(index >= 0 && index <= 31)) {
      throw new UsageError(`--pcr expects N=HEX with N from 0 to 31; got ${JSON.stringify(entry.slice(0, 40))}`, ctx.name);
    }
    const bytes = parseHexOption(m[2] as string, `--pcr ${index}`, ctx.name, 64);
    if (![32, 48, 64].includes(bytes.length)) {
      throw new UsageError(`--pcr ${index} is ${bytes.length} bytes; a PCR is 48 bytes (96 hex digits) in Nitro documents`, ctx.name);
    }
    if (Object.prototype.hasOwnProperty.call(pcrs, index)) throw new UsageError(`--pcr ${index} is given twice`, ctx.name);
    pcrs[index] = bytes.toString('hex');
  }
  return pcrs;
}

function parseMaxAge(ctx: CommandContext): number | undefined {
  const value = ctx.args.string('max-age');
  if (value === undefined) return undefined;
  const seconds = /^\d+(?:\.\d+)?$/.test(value) ? Number(value) : NaN;
  if (!(seconds > 0 && Number.isFinite(seconds))) {
    throw new UsageError(`--max-age expects a positive number of seconds; got ${JSON.stringify(value)}`, ctx.name);
  }
  return seconds * 1000;
}

/** The document bytes: raw COSE_Sign1 (starts with a CBOR array of 4 or tag 18), or base64 / base64url text of it. */
function decodeInput(bytes: Buffer): { document: Buffer; encoding: 'binary' | 'base64' } {
  const first = bytes[0];
  if (first === 0x84 || first === 0xd2) return { document: bytes, encoding: 'binary' };
  const text = bytes.toString('latin1').replace(/\s+/g, '');
  if (text.length > 0 && /^[A-Za-z0-9+/_-]+={0,2}$/.test(text) && text.length % 4 !== 1) {
    // Node's base64 decoder accepts both alphabets (standard and URL-safe) and optional padding.
    return { document: Buffer.from(text, 'base64'), encoding: 'base64' };
  }
  return { document: bytes, encoding: 'binary' };
}

function oneLine(name: string): string {
  return printable(name.split('\n').filter((p) => p.length > 0).join(', '));
}

function iso(date: string): string {
  const ms = Date.parse(date);
  return Number.isNaN(ms) ? printable(date) : new Date(ms).toISOString();
}

/** The chain as verification walked it: leaf, intermediates (cabundle after its claimed root, nearest first), root. */
function describeChain(doc: AttestationDocument, roots: readonly TrustedRoot[]): ChainEntry[] {
  const entry = (cert: X509Certificate, role: ChainEntry['role'], trustedBy?: string): ChainEntry => ({
    role,
    subject: oneLine(cert.subject),
    issuer: oneLine(cert.issuer),
    validFrom: iso(cert.validFrom),
    validTo: iso(cert.validTo),
    fingerprint256: cert.fingerprint256,
    ...(trustedBy === undefined ? {} : { trustedBy }),
  });
  const leaf = new X509Certificate(Buffer.from(doc.certificate));
  const intermediates = doc.cabundle.slice(1).map((b) => new X509Certificate(Buffer.from(b))).reverse();
  const top = intermediates[intermediates.length - 1] ?? leaf;
  const root = roots.find((r) => r.cert.ca && top.checkIssued(r.cert) && top.verify(r.cert.publicKey));
  return [
    entry(leaf, 'leaf'),
    ...intermediates.map((c) => entry(c, 'intermediate')),
    ...(root === undefined ? [] : [entry(root.cert, 'root', root.source)]),
  ];
}

function describeKey(spki: Uint8Array): string | undefined {
  try {
    const key = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
    const d = key.asymmetricKeyDetails;
    if (key.asymmetricKeyType === 'rsa' && d?.modulusLength !== undefined) return `RSA ${d.modulusLength}`;
    if (key.asymmetricKeyType === 'ec' && d?.namedCurve !== undefined) return `EC ${d.namedCurve}`;
    return key.asymmetricKeyType;
  } catch {
    return undefined;
  }
}

function formatAge(ms: number): string {
  if (ms < 0) return `${Math.round(-ms / 1000)} s in the future`;
  const s = ms / 1000;
  if (s < 90) return `${Math.round(s)} s ago`;
  if (s < 90 * 60) return `${Math.round(s / 60)} min ago`;
  if (s < 48 * 3600) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} days ago`;
}

const isZero = (b: Uint8Array): boolean => b.every((x) => x === 0);

export async function run(ctx: CommandContext): Promise<number | undefined> {
  const positionals = ctx.positionals ?? [];
  if (positionals.length !== 1) {
    throw new UsageError(`expected one FILE (or - for stdin), got ${positionals.length === 0 ? 'nothing' : `${positionals.length} arguments`}`, ctx.name);
  }
  const file = positionals[0] as string;
  const { AttestationError, NSM_LIMITS } = await import('@keyfold/attestation');
  const expectedPcrs = parsePcrs(ctx);
  const nonceHex = ctx.args.string('nonce');
  const options: Options = {
    roots: await loadRoots(ctx, ctx.args.list('root')),
    expectedPcrs,
    nonce: nonceHex === undefined ? undefined : parseHexOption(nonceHex, '--nonce', ctx.name, NSM_LIMITS.nonce),
    maxAgeMs: parseMaxAge(ctx),
    allPcrs: ctx.args.flag('all-pcrs'),
  };

  const input = await openInput(ctx, file === '-' ? '-' : resolve(ctx.cwd, file));
  let raw: Buffer;
  try {
    raw = await readAll(input.stream, MAX_INPUT);
  } catch (err) {
    if (err instanceof RangeError) {
      throw new AttestationError('MALFORMED', `${input.name} is larger than ${MAX_INPUT} bytes: not an attestation document (they are about 5 KiB)`);
    }
    throw ioError('read', input.name, err);
  } finally {
    input.close();
  }
  const { document, encoding } = decodeInput(raw);
  if (document.length === 0) throw new AttestationError('MALFORMED', `${input.name} is empty`);

  const now = Date.now();
  const doc = await verifyDocument(ctx, document, options.roots, {
    expectedPcrs: options.expectedPcrs,
    ...(options.nonce === undefined ? {} : { nonce: options.nonce }),
    ...(options.maxAgeMs === undefined ? {} : { maxAge: options.maxAgeMs }),
    now,
  });

  const pcrs = [...doc.pcrs.entries()].sort(([a], [b]) => a - b);
  const shown = pcrs.filter(([, v]) => options.allPcrs || !isZero(v));
  const hiddenZero = pcrs.length - shown.length;
  const pcr0 = doc.pcrs.get(0);
  const debugMode = pcr0 !== undefined && isZero(pcr0);
  const conditionKeys: Record<string, string> = {};
  for (const [index, value] of pcrs) {
    if (isZero(value)) continue; // a debug-mode enclave: zeros admit any such enclave, never pin them
    const hex = Buffer.from(value).toString('hex');
    if (index === 0) conditionKeys['kms:RecipientAttestation:ImageSha384'] = hex;
    else conditionKeys[`kms:RecipientAttestation:PCR${index}`] = hex;
  }
  const chain = describeChain(doc, options.roots);
  const keyType = doc.publicKey === undefined ? undefined : describeKey(doc.publicKey);
  const result = {
    valid: true,
    input: { encoding, bytes: document.length },
    moduleId: doc.moduleId,
    digest: doc.digest,
    timestamp: new Date(doc.timestamp).toISOString(),
    ageSeconds: Math.round((now - doc.timestamp) / 1000),
    pcrs: shown.map(([index, value]) => ({ index, hex: Buffer.from(value).toString('hex') })),
    hiddenZeroPcrs: hiddenZero,
    debugMode,
    publicKey:
      doc.publicKey === undefined
        ? { present: false }
        : { present: true, bytes: doc.publicKey.length, sha256: sha256Fingerprint(doc.publicKey), ...(keyType === undefined ? {} : { type: keyType }) },
    userData: doc.userData === undefined ? { present: false } : { present: true, bytes: doc.userData.length },
    nonce: doc.nonce === undefined ? { present: false } : { present: true, hex: Buffer.from(doc.nonce).toString('hex') },
    checked: {
      chain: chain.find((c) => c.role === 'root')?.trustedBy ?? 'a trusted root',
      pcrs: Object.keys(options.expectedPcrs).map(Number),
      nonce: options.nonce !== undefined,
      ...(options.maxAgeMs === undefined ? {} : { maxAgeSeconds: options.maxAgeMs / 1000 }),
    },
    chain,
    kmsConditionKeys: conditionKeys,
  };

  ctx.out.result(result, () => {
    const s = ctx.out.out;
    const checks = [
      `chain to ${printable(result.checked.chain)}`,
      'signature',
      ...(result.checked.pcrs.length > 0 ? [`PCR ${result.checked.pcrs.join(', ')}`] : []),
      ...(result.checked.nonce ? ['nonce'] : []),
      ...(options.maxAgeMs === undefined ? [] : [`age <= ${options.maxAgeMs / 1000} s`]),
    ];
    const fields = formatFields(
      [
        ['module id', printable(doc.moduleId)],
        ['digest', printable(doc.digest)],
        ['timestamp', `${result.timestamp} (${formatAge(now - doc.timestamp)})`],
        [
          'public key',
          doc.publicKey === undefined
            ? 'absent'
            : `${sha256Fingerprint(doc.publicKey)} (${keyType ?? 'unparsed'}, ${doc.publicKey.length} bytes DER)`,
        ],
        ['user data', doc.userData === undefined ? 'absent' : `present (${doc.userData.length} bytes)`],
        ['nonce', doc.nonce === undefined ? 'absent' : Buffer.from(doc.nonce).toString('hex')],
        ['input', `${encoding === 'base64' ? 'base64 text' : 'binary'}, ${document.length} bytes`],
        ['checked', checks.join(', ')],
      ],
      s,
    );
    const pcrTable =
      shown.length === 0
        ? '(none)'
        : formatTable(
            [['PCR', 'value (hex)', 'measures'], ...shown.map(([i, v]) => [String(i), Buffer.from(v).toString('hex'), PCR_MEANING[i] ?? ''])],
            s,
          );
    const chainTable = formatTable(
      [['role', 'subject', 'valid from', 'valid to'], ...chain.map((c) => [c.trustedBy === undefined ? c.role : `${c.role} (trusted)`, c.subject, c.validFrom, c.validTo])],
      s,
    );
    const conditionLines =
      Object.keys(conditionKeys).length === 0
        ? ['(none: every PCR is zero)']
        : [
            '"Condition": {',
            '  "StringEqualsIgnoreCase": {',
            ...Object.entries(conditionKeys).map(([k, v], i, all) => `    "${k}": "${v}"${i === all.length - 1 ? '' : ','}`),
            '  }',
            '}',
          ];
    return [
      s.green('Attestation document verified'),
      '',
      fields,
      '',
      s.bold(`PCRs${hiddenZero > 0 ? ` (${hiddenZero} all-zero PCR${hiddenZero === 1 ? '' : 's'} hidden; --all-pcrs shows them)` : ''}`),
      pcrTable,
      ...(debugMode
        ? ['', s.yellow('PCR0 is all zeros: the enclave runs in debug mode. A key policy must never trust it (zeros match any debug-mode enclave).')]
        : []),
      '',
      s.bold('Certificate chain (leaf first)'),
      chainTable,
      '',
      s.bold('KMS key policy conditions for this enclave (keep the PCRs you mean to pin):'),
      ...conditionLines,
    ].join('\n');
  });
  return undefined;
}
