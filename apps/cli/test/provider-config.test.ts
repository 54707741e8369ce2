/**
 * config.json's `provider` section, checked by the adapter of its kind (`parseConfig` in `src/providers/<kind>.ts`):
 * through the built CLI, a section with one field wrong is refused before any provider opens, with exit 1 and one
 * CONFIG_INVALID line naming the field, for every kind. Nothing is contacted (the addresses are unroutable) and
 * nothing is written.
 */
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyfold, makeTempDir, removeDir } from './helpers.js';

let work: string;

beforeAll(() => {
  work = makeTempDir('keyfold-provider-config-');
});
afterAll(() => removeDir(work));

/** A valid section of each kind, and one change that makes it invalid with the message that names the field. */
const CASES: readonly (readonly [string, Record<string, unknown>, Record<string, unknown>, string])[] = [
  ['file', { kind: 'file', keyId: 'k', keyring: 'keys' }, { keyring: '' }, '"provider.keyring" must be a non-empty string'],
  ['env', { kind: 'env', keyId: 'k', prefix: 'APP_KEK_V' }, { prefix: 7 }, '"provider.prefix" must be a non-empty string'],
  [
    'aws-kms',
    { kind: 'aws-kms', keyId: 'arn:aws:kms:eu-west-1:1:key/x', arn: 'arn:aws:kms:eu-west-1:1:key/x', region: 'eu-west-1' },
    { region: undefined },
    '"provider.region" must be a non-empty string',
  ],
  [
    'vault-transit',
    { kind: 'vault-transit', keyId: 'transit/keys/k', keyName: 'k', endpoint: 'http://192.0.2.1:8200', mount: 'transit', auth: 'token' },
    { auth: 'password' },
    '"provider.auth" must be one of "token", "approle"',
  ],
  [
    'gcp-kms',
    { kind: 'gcp-kms', keyId: 'projects/p/locations/l/keyRings/r/cryptoKeys/k' },
    { insecure: 'yes' },
    '"provider.insecure" must be true or false',
  ],
  [
    'azure-kv',
    { kind: 'azure-kv', keyId: 'https://v.vault.azure.net/keys/k', kid: 'https://v.vault.azure.net/keys/k', algorithm: 'A256KW' },
    { algorithm: 'RSA1_5' },
    '"provider.algorithm" must be one of "RSA-OAEP-256", "A256KW"',
  ],
  [
    'pkcs11',
    { kind: 'pkcs11', keyId: 'kek', library: '/nonexistent/libsofthsm2.so', slot: 0, mechanism: 'AES_GCM', pinEnv: 'HSM_PIN' },
    { tokenLabel: 'tok' },
    'exactly one of "provider.slot" and "provider.tokenLabel" must be set',
  ],
];

function writeConfig(name: string, provider: Record<string, unknown>): string {
  const dir = join(work, name);
  mkdirSync(dir, { mode: 0o700 });
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ version: 1, createdAt: '2026-01-01T00:00:00.000Z', provider }), { mode: 0o600 });
  return dir;
}

describe('config.json provider section, per kind', () => {
  for (const [kind, valid, change, message] of CASES) {
    it(`${kind}: ${message} (exit 1, CONFIG_INVALID, text and --json)`, () => {
      const dir = writeConfig(`bad-${kind}`, { ...valid, ...change });
      const r = keyfold(['provider', 'probe', '--dir', dir], { env: { HSM_PIN: '123456' } });
      expect(r.status, r.stderr).toBe(1);
      expect(r.out).toBe('');
      const lines = r.stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(message);
      expect(lines[0]).toMatch(/\[CONFIG_INVALID\]$/);
      const j = keyfold(['provider', 'probe', '--dir', dir, '--json'], { env: { HSM_PIN: '123456' } });
      expect(j.status, j.stderr).toBe(1);
      const doc = JSON.parse(j.out) as { error: { code: string; message: string } };
      expect(doc.error.code).toBe('CONFIG_INVALID');
      expect(doc.error.message).toContain(message);
      expect(readdirSync(dir)).toEqual(['config.json']);
    });
  }

  it('an unknown kind names the kinds this keyfold supports', () => {
    const dir = writeConfig('bad-kind', { kind: 'hsm', keyId: 'k' });
    const r = keyfold(['provider', 'probe', '--dir', dir]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('unknown "provider.kind" "hsm"; this keyfold supports "file", "env", "aws-kms"');
    expect(r.stderr).toMatch(/\[CONFIG_INVALID\]\n$/);
  });

  it('a missing keyId is named before the kind is looked at', () => {
    const dir = writeConfig('no-key-id', { kind: 'hsm' });
    const r = keyfold(['provider', 'probe', '--dir', dir]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('"provider.keyId" must be a non-empty string');
  });
});
