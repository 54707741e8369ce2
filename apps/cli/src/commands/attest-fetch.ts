/**
 * `keyfold attest fetch --source nsm|URL --out FILE`: asks the Nitro Secure Module (inside an enclave) or an HTTP
 * attestation endpoint for a document naming a fresh RSA public key, and writes the document to FILE.
 *
 * Security rule: the key pair exists only so that the request carries a public key, as the manager's requests do;
 * its private half is never exported, written or printed, and is dropped when the command ends. What the source
 * answers is untrusted until it is checked as `attest verify` checks a document (chain to the pinned AWS Nitro root
 * or `--root`, validity, signature) and shown to answer this request: the public key it names is the fresh one sent
 * (an old or replayed document names another), and so are the nonce and user data when they were sent. Only then is
 * FILE written (mode 0600), through a temporary file in the same directory: renamed over FILE with --force,
 * otherwise hard-linked into place, which fails rather than replace a FILE that appeared meanwhile. A refused
 * document writes nothing.
 * @module
 */
import { generateKeyPair } from 'node:crypto';
import { lstat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { KeyfoldError } from '@keyfold/envelope-core';
import type { CommandContext } from '../command.js';
import { UsageError } from '../exit-codes.js';
import { ioError } from '../input.js';
import { AtomicFile } from '../output-sink.js';
import { formatFields, printable } from '../output.js';
import { loadRoots, parseHexOption, sha256Fingerprint } from './attest-common.js';
import { checkFetchedDocument } from './attest-fetch-check.js';

const generateRsa = promisify(generateKeyPair);

type Source = { readonly kind: 'nsm'; readonly device: string } | { readonly kind: 'http'; readonly url: URL };

function parseSource(ctx: CommandContext): Source {
  const value = ctx.args.string('source');
  const device = ctx.args.string('device');
  if (value === undefined) throw new UsageError('--source is required: nsm, or the http(s) URL of an attestation endpoint', ctx.name);
  if (value === 'nsm') {
    if (device === '') throw new UsageError('--device must not be empty', ctx.name);
    return { kind: 'nsm', device: device ?? '/dev/nsm' };
  }
  if (device !== undefined) throw new UsageError('--device applies to --source nsm only', ctx.name);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UsageError(`--source must be nsm or an http(s) URL such as http://127.0.0.1:50123; got ${JSON.stringify(value)}`, ctx.name);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(`--source URL must be http:// or https://; got ${url.protocol}`, ctx.name);
  }
  if (url.username !== '' || url.password !== '') throw new UsageError('--source URL must not carry credentials', ctx.name);
  // The request's query (public key, user data, nonce) is built here: a query or fragment in --source would be dropped.
  if (url.search !== '' || url.hash !== '') {
    throw new UsageError(`--source URL must not have a query or fragment (http://HOST:PORT); got ${JSON.stringify(value)}`, ctx.name);
  }
  return { kind: 'http', url };
}

function parseUserData(ctx: CommandContext, limit: number): Buffer | undefined {
  const text = ctx.args.string('user-data');
  if (text === undefined) return undefined;
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length === 0 || bytes.length > limit) {
    throw new UsageError(`--user-data must be 1 to ${limit} bytes of UTF-8; got ${bytes.length}`, ctx.name);
  }
  return bytes;
}

/** Refuses a FILE that exists (unless `force`) or is not a regular file, before anything is fetched. */
async function checkTarget(path: string, force: boolean): Promise<void> {
  let isFile: boolean;
  try {
    isFile = (await lstat(path)).isFile();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw ioError('write', path, err);
  }
  if (!isFile) throw new KeyfoldError('ALREADY_EXISTS', `${path} exists and is not a regular file; nothing was fetched`);
  if (!force) throw new KeyfoldError('ALREADY_EXISTS', `${path} exists; pass --force to replace it. Nothing was fetched.`);
}

/** Writes `data` to `path` with mode 0600 through the CLI's atomic output file (see the module comment). */
async function writeDocument(path: string, data: Uint8Array, force: boolean): Promise<void> {
  const file = await AtomicFile.create(path, 0o600);
  try {
    await file.write(data);
    await file.commit({ replace: force });
  } catch (err) {
    await file.abort();
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new KeyfoldError('ALREADY_EXISTS', `${path} appeared while fetching; it was left as it was (pass --force to replace it)`);
    }
    throw err;
  }
}

/**
 * The source's error with its advice in CLI terms: the library suggests `httpSource()` or a function source, which
 * for this command is `--source http://HOST:PORT`. Code and cause are kept.
 */
function forOperators(err: unknown): unknown {
  if (!(err instanceof KeyfoldError) || !err.message.includes('httpSource()')) return err;
  const what = err.message.split(';')[0] as string;
  return new KeyfoldError(err.code, `${what}; outside an enclave use --source http://HOST:PORT (an attestation endpoint)`, { cause: err });
}

export async function run(ctx: CommandContext): Promise<number | undefined> {
  const attestation = await import('@keyfold/attestation');
  const source = parseSource(ctx);
  const out = ctx.args.string('out');
  if (out === undefined || out === '' || out === '-') throw new UsageError('--out FILE is required (the document is binary)', ctx.name);
  const nonceHex = ctx.args.string('nonce');
  const nonce = nonceHex === undefined ? undefined : parseHexOption(nonceHex, '--nonce', ctx.name, attestation.NSM_LIMITS.nonce);
  const userData = parseUserData(ctx, attestation.NSM_LIMITS.userData);
  const force = ctx.args.flag('force');
  const roots = await loadRoots(ctx, ctx.args.list('root'));
  const path = resolve(ctx.cwd, out);
  await checkTarget(path, force);

  const from =
    source.kind === 'nsm' ? attestation.nsmSource({ devicePath: source.device }) : attestation.httpSource({ baseUrl: source.url.href });
  // Only the public half leaves this function; the private key is never exported and is dropped here.
  const { publicKey } = await generateRsa('rsa', { modulusLength: 2048 });
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  let document: Uint8Array;
  try {
    document = await from.attest({
      publicKey: spki,
      ...(userData === undefined ? {} : { userData }),
      ...(nonce === undefined ? {} : { nonce }),
    });
  } catch (err) {
    throw forOperators(err);
  }
  const verified = await checkFetchedDocument(ctx, document, roots, { publicKey: spki, nonce, userData });
  await writeDocument(path, document, force);

  const where = source.kind === 'nsm' ? `nsm (${source.device})` : source.url.origin;
  const trustedBy = ctx.args.list('root').length === 0 ? 'the pinned AWS Nitro root' : 'the --root certificates';
  const checks = [`chain to ${trustedBy}`, 'signature', 'public key', ...(nonce === undefined ? [] : ['nonce']), ...(userData === undefined ? [] : ['user data'])];
  const result = {
    ok: true,
    path,
    bytes: document.length,
    source: where,
    mode: '0600',
    publicKey: sha256Fingerprint(spki),
    checked: { chain: trustedBy, signature: true, publicKey: true, nonce: nonce !== undefined, userData: userData !== undefined },
    moduleId: verified.moduleId,
    timestamp: new Date(verified.timestamp).toISOString(),
    ...(nonce === undefined ? {} : { nonce: nonce.toString('hex') }),
    ...(userData === undefined ? {} : { userDataBytes: userData.length }),
  };
  ctx.out.result(result, () =>
    [
      `Attestation document written (${document.length} bytes, mode 0600)`,
      '',
      formatFields(
        [
          ['file', printable(path)],
          ['source', printable(where)],
          ['module id', printable(verified.moduleId)],
          ['timestamp', result.timestamp],
          ['checked', checks.join(', ')],
          ['public key', `${result.publicKey} (RSA 2048, made for this request; its private key was not kept)`],
          ...(nonce === undefined ? [] : [['nonce', nonce.toString('hex')] as const]),
          ...(userData === undefined ? [] : [['user data', `${userData.length} bytes`] as const]),
        ],
        ctx.out.out,
      ),
      '',
      `Pin its PCRs with: keyfold attest verify ${printable(out)}${ctx.args
        .list('root')
        .map((r) => ` --root ${printable(r)}`)
        .join('')} --pcr N=HEX`,
    ].join('\n'),
  );
  return undefined;
}
