/**
 * Command table entries of `keyfold attest ...` (AWS Nitro Enclave attestation documents). Data only, like
 * `table.ts`: each command module is imported when the command runs, and `@keyfold/attestation` (with the
 * optional native `@keyfold/nsm-ioctl` behind it) only inside those modules.
 * @module
 */
import type { CommandSpec, GroupSpec } from './table.js';

const attestVerify: CommandSpec = {
  name: 'attest verify',
  summary: 'verify a Nitro Enclave attestation document and show its PCRs, key and certificate chain',
  usage:
    'keyfold attest verify FILE|- [--root PEM-FILE]... [--pcr N=HEX]... [--nonce HEX] [--max-age SECONDS] [--all-pcrs] [--json]',
  description: [
    'Reads a COSE_Sign1 attestation document (raw bytes, or base64 / base64url text: detected) from FILE or stdin ' +
      '(-) and verifies it: the certificate chain from the signing certificate through the cabundle to a trusted root ' +
      '(the pinned AWS Nitro root unless --root is given; the root inside the document is never trusted), validity ' +
      'dates, the ES384 signature, then --pcr, --nonce and --max-age when given.',
    'Prints module id, digest, timestamp and age, the PCRs (all-zero ones only with --all-pcrs), whether the ' +
      'document carries a public key (shown as its SHA-256 fingerprint), user data and a nonce, the certificate chain ' +
      'with validity, and the kms:RecipientAttestation:ImageSha384 / kms:RecipientAttestation:PCR<N> condition keys ' +
      "to put in the KMS key policy. All-zero PCRs mean a debug-mode enclave: never pin those in a policy.",
    'Exit 0 when the document verifies. Exit 3 when it does not: INTEGRITY_FAILED when it cannot be shown authentic ' +
      '(MALFORMED, UNTRUSTED_ROOT, CERT_EXPIRED, BAD_SIGNATURE), ACCESS_DENIED when it is authentic but a check ' +
      'refuses it (PCR_MISMATCH, NONCE_MISMATCH, STALE); the reason is in the message (and in "reason" with --json). ' +
      'Bad arguments exit 2.',
  ],
  options: {
    root: {
      type: 'string',
      multiple: true,
      valueName: 'PEM-FILE',
      description: 'trust the CA certificate(s) in this PEM file instead of the pinned AWS Nitro root (repeatable)',
    },
    pcr: {
      type: 'string',
      multiple: true,
      valueName: 'N=HEX',
      description: 'PCR N (0-31) must equal HEX (repeatable; e.g. 0=<PCR0 of your image from nitro-cli build-enclave>)',
    },
    nonce: { type: 'string', valueName: 'HEX', description: 'the document must carry this nonce (your challenge)' },
    'max-age': { type: 'string', valueName: 'SECONDS', description: 'refuse a document older than this (from its timestamp)' },
    'all-pcrs': { type: 'boolean', description: 'also show PCRs that are all zeros' },
  },
  positionals: true,
  examples: [
    'keyfold attest verify doc.cbor --pcr 0=$(jq -r .Measurements.PCR0 build.json)',
    'curl -s "http://127.0.0.1:50123/api/v1/attestation/report?publicKey=..." | keyfold attest verify - --max-age 300',
    'keyfold attest verify doc.b64 --root test-root.pem --json | jq .kmsConditionKeys',
  ],
  load: () => import('../commands/attest-verify.js'),
};

const attestFetch: CommandSpec = {
  name: 'attest fetch',
  summary: 'get an attestation document from the NSM (/dev/nsm) or an HTTP attestation endpoint into a file',
  usage:
    'keyfold attest fetch --source nsm|http://HOST:PORT [--device PATH] [--nonce HEX] [--user-data TEXT] [--root PEM-FILE]... ' +
    '--out FILE [--force] [--json]',
  description: [
    '--source nsm asks the Nitro Secure Module of the enclave this runs in (--device, default /dev/nsm; needs the ' +
      'native @keyfold/nsm-ioctl binding). --source http://HOST:PORT asks an attestation endpoint (GET ' +
      '/api/v1/attestation/report, Anjuna-style sidecars); the document is signed and checked before it is written, ' +
      'so plain http adds no trust to check.',
    'The document names a fresh RSA-2048 public key made for this request; its private half is never written or ' +
      'printed and is dropped at exit, so the file is for checking the enclave (PCRs, chain), not for use with KMS.',
    'The answer is checked before anything is written, as attest verify checks a document (the chain to the pinned ' +
      'AWS Nitro root unless --root is given, validity, the signature), and it must answer this request: the public ' +
      'key it names is the one just made (an old or replayed document names another), and the nonce and user data ' +
      'are those sent. Otherwise exit 3 and nothing is written: INTEGRITY_FAILED when it cannot be shown authentic ' +
      '(MALFORMED, UNTRUSTED_ROOT, CERT_EXPIRED, BAD_SIGNATURE), ACCESS_DENIED when it answers another request ' +
      '(PUBLIC_KEY_MISMATCH, NONCE_MISMATCH, USER_DATA_MISMATCH); the reason is in the message (and in "reason" with --json).',
    'FILE is written with mode 0600 through a temporary file renamed into place, and only when a document arrived. ' +
      'An existing FILE is refused (exit 1, ALREADY_EXISTS) unless --force. Outside an enclave --source nsm fails ' +
      'with exit 1 (UNAVAILABLE) and writes nothing.',
  ],
  options: {
    source: { type: 'string', valueName: 'nsm|URL', description: 'nsm, or the http(s) base URL of an attestation endpoint' },
    device: { type: 'string', valueName: 'PATH', description: 'nsm: the NSM device (default /dev/nsm)' },
    nonce: { type: 'string', valueName: 'HEX', description: 'nonce to include in the document (at most 512 bytes)' },
    'user-data': { type: 'string', valueName: 'TEXT', description: 'user data to include, as UTF-8 (at most 512 bytes)' },
    root: {
      type: 'string',
      multiple: true,
      valueName: 'PEM-FILE',
      description: 'trust the CA certificate(s) in this PEM file instead of the pinned AWS Nitro root (repeatable)',
    },
    out: { type: 'string', short: 'o', valueName: 'FILE', description: 'where to write the document (raw COSE_Sign1 bytes)' },
    force: { type: 'boolean', description: 'replace FILE when it exists' },
  },
  examples: [
    'keyfold attest fetch --source nsm --nonce $(openssl rand -hex 16) --out doc.cbor',
    'keyfold attest fetch --source http://127.0.0.1:50123 --root emulator-root.pem --out doc.cbor',
  ],
  load: () => import('../commands/attest-fetch.js'),
};

export const group: GroupSpec = {
  name: 'attest',
  summary: 'AWS Nitro Enclave attestation documents (verify, fetch)',
  subcommands: { verify: attestVerify, fetch: attestFetch },
};
