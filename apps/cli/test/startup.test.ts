/**
 * `keyfold --help` must load neither the provider packages nor the core nor any command module. Two independent
 * checks: a module loader hook that records every module URL Node resolves, and a copy of `dist/` with no
 * `node_modules` anywhere near it, where importing any `@keyfold/*` package would fail.
 */
import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, CLI_ROOT, keyfold, makeTempDir, removeDir } from './helpers.js';

const HELP_RUNS = [['--help'], ['help'], ['--version'], ['init', '--help'], ['status', '--help'], ['provider', 'probe', '--help'],
  ['kek', 'add', '--help'], ['encrypt', '--help'], ['decrypt', '--help'], ['inspect', '--help'], ['demo', '--help'], ['help', 'encrypt'],
  ['init', '--provider', 'pkcs11', '--help'], ['kek', 'rotate', '--help'], ['kek', '--help'], ['tenant', 'shred', '--help'],
  ['audit', 'verify', '--help'], ['migrate', '--help'], ['secrets', '--help'], ['secrets', 'exec', '--help'],
  ['secrets', 'edit', 'x.env', '--help'], ['help', 'secrets', 'status'], ['rotate', '--help'], ['backup', '--help'], ['restore', '--help'], ['attest', '--help'], ['attest', 'verify', '--help'],
  ['attest', 'fetch', '--help'], ['help', 'attest', 'fetch'], ['attest', 'fetch', '--source', 'nsm', '--help'], ['bogus']];

/** Chunks of command modules and of the per-provider modules that import provider packages and vendor SDKs. */
const LAZY_CHUNK = /\/(init|status|provider-probe|kek-add|encrypt|decrypt|inspect|demo|kek-list|kek-verify|kek-rotate|kek-retire|tenant|migrate|audit|rotate-if-due|backup|secrets-[a-z]+|attest-[a-z]+|registry|file|env|aws-kms|vault-transit|gcp-kms|azure-kv|pkcs11)-[A-Z0-9]+\.js$/;

let dir: string;

beforeAll(() => {
  dir = makeTempDir('keyfold-startup-');
  writeFileSync(
    join(dir, 'hooks.mjs'),
    [
      "import { appendFileSync } from 'node:fs';",
      'export async function resolve(specifier, context, nextResolve) {',
      '  const result = await nextResolve(specifier, context);',
      "  appendFileSync(process.env.KEYFOLD_TEST_TRACE, result.url + '\\n');",
      '  return result;',
      '}',
    ].join('\n'),
  );
  writeFileSync(
    join(dir, 'register.mjs'),
    `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(join(dir, 'hooks.mjs')).href)});\n`,
  );
  // An isolated copy of the built CLI: no node_modules in any parent of this temporary directory.
  mkdirSync(join(dir, 'isolated', 'dist'), { recursive: true });
  copyFileSync(join(CLI_ROOT, 'package.json'), join(dir, 'isolated', 'package.json'));
  for (const f of readdirSync(join(CLI_ROOT, 'dist'))) {
    if (f.endsWith('.js')) copyFileSync(join(CLI_ROOT, 'dist', f), join(dir, 'isolated', 'dist', f));
  }
});

afterAll(() => removeDir(dir));

function traced(args: string[], name: string): { status: number | null; urls: string[] } {
  const trace = join(dir, `${name}.trace`);
  writeFileSync(trace, '');
  const r = keyfold(args, {
    env: { KEYFOLD_TEST_TRACE: trace, NODE_OPTIONS: `--import=${pathToFileURL(join(dir, 'register.mjs')).href}` },
  });
  return { status: r.status, urls: readFileSync(trace, 'utf8').split('\n').filter((u) => u.length > 0) };
}

describe('start-up cost of keyfold --help', () => {
  it('the loader hook sees provider and core packages when a command really runs (control)', () => {
    const { urls } = traced(['inspect', '--in', BIN], 'control');
    expect(urls.some((u) => u.includes('envelope-core'))).toBe(true);
    expect(urls.some((u) => /\/inspect-[A-Z0-9]+\.js$/.test(u))).toBe(true);
  });

  it('the loader hook sees @keyfold/attestation when an attest command runs, and @keyfold/nsm-ioctl when it asks the NSM (control)', () => {
    const verify = traced(['attest', 'verify', BIN], 'control-attest');
    expect(verify.status).toBe(3);
    expect(verify.urls.some((u) => /\/packages\/attestation\//.test(u))).toBe(true);
    expect(verify.urls.some((u) => /\/attest-verify-[A-Z0-9]+\.js$/.test(u))).toBe(true);
    // nsmSource loads the binding only once a device exists (this file stands in for one; the ioctl then fails).
    const fetch = traced(['attest', 'fetch', '--source', 'nsm', '--device', BIN, '--out', join(dir, 'never.cbor')], 'control-nsm');
    expect(fetch.status).toBe(1);
    expect(fetch.urls.some((u) => /\/packages\/nsm-ioctl\//.test(u))).toBe(true);
  });

  for (const args of HELP_RUNS) {
    it(`'keyfold ${args.join(' ')}' resolves only the entry chunks and node: builtins`, () => {
      const { urls } = traced(args, args.join('_'));
      expect(urls.length).toBeGreaterThan(0);
      const loaded = urls.filter((u) => !u.startsWith('node:'));
      for (const u of loaded) {
        expect(u).not.toMatch(/provider-|envelope-core|attestation|nsm-ioctl|@keyfold|node_modules|@aws-sdk|@azure|google-gax|graphene/);
        expect(u).not.toMatch(LAZY_CHUNK);
      }
    });
  }

  // Reading config.json looks up the recorded kind's adapter (it validates its section); the adapter imports its
  // provider package and vendor SDK only when it opens a provider, so a command that opens none loads none.
  const CONFIG_ONLY: readonly (readonly [string, Record<string, unknown>, RegExp])[] = [
    ['aws-kms', { arn: 'arn:aws:kms:eu-west-1:1:key/x', region: 'eu-west-1' }, /provider-aws|@aws-sdk/],
    ['pkcs11', { library: '/nonexistent/libsofthsm2.so', slot: 0, mechanism: 'AES_GCM', pinEnv: 'HSM_PIN' }, /provider-pkcs11|graphene/],
    ['gcp-kms', {}, /provider-gcp|google-gax|@google-cloud/],
    ['azure-kv', { kid: 'https://v.vault.azure.net/keys/k', algorithm: 'A256KW' }, /provider-azure|@azure/],
    ['vault-transit', { keyName: 'k', endpoint: 'https://192.0.2.1:8200', mount: 'transit', auth: 'token' }, /provider-vault/],
  ];
  for (const [kind, fields, sdk] of CONFIG_ONLY) {
    it(`'keyfold kek list' on a ${kind} installation reads config.json without loading the provider package or SDK`, () => {
      const config = join(dir, `config-only-${kind}`);
      mkdirSync(config, { mode: 0o700 });
      const provider = { kind, keyId: `${kind}-key`, ...fields };
      writeFileSync(join(config, 'config.json'), JSON.stringify({ version: 1, createdAt: '2026-01-01T00:00:00.000Z', provider }), { mode: 0o600 });
      const { status, urls } = traced(['kek', 'list', '--dir', config], `config-only-${kind}`);
      // The configuration was read and validated (it records no key store: NO_STORE, exit 1).
      expect(status).toBe(1);
      expect(urls.some((u) => new RegExp(`/${kind}-[A-Z0-9]+\\.js$`).test(u))).toBe(true);
      for (const u of urls) expect(u).not.toMatch(sdk);
    });
  }

  it('help works from a copy of dist/ that cannot resolve any @keyfold package', () => {
    const bin = join(dir, 'isolated', 'dist', 'bin.js');
    // Control: a command that needs the core fails there, so the isolation is real.
    const control = keyfold(['inspect', '--in', bin], { bin, cwd: dir });
    expect(control.status).toBe(1);
    expect(control.stderr).toContain('@keyfold/envelope-core');
    const attest = keyfold(['attest', 'verify', bin], { bin, cwd: dir });
    expect(attest.status).toBe(1);
    expect(attest.stderr).toContain('@keyfold/attestation');
    for (const args of HELP_RUNS.filter((a) => a[0] !== 'bogus')) {
      const r = keyfold(args, { bin, cwd: dir });
      expect(r.status, `keyfold ${args.join(' ')}: ${r.stderr}`).toBe(0);
    }
  });
});
