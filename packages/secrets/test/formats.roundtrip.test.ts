import { parse as parseToml } from 'smol-toml';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { decryptSecrets, encryptSecrets, loadSecrets, type SecretsFormat } from '../src/index.js';
import { envProvider, fixedNow, fixture, policy } from './helpers.js';

const cases: { file: string; format: SecretsFormat; expect: Record<string, unknown> }[] = [
  {
    file: 'app.env',
    format: 'dotenv',
    expect: {
      NODE_ENV: 'production',
      DATABASE_URL: 'postgres://app:s3cr3t@db:5432/app',
      API_KEY: 'sk_live_abc123',
      SINGLE: 'single $NOT_EXPANDED # not a comment',
      DOUBLE: 'double with "escapes"\tand \\ backslash',
      MULTI: 'line one\nline two\nline three',
      MULTI_SINGLE: 'raw\nblock',
      EMPTY: '',
      PUBLIC_URL_unencrypted: 'https://example.com',
    },
  },
  {
    file: 'docker-compose.yaml',
    format: 'yaml',
    expect: {
      'services.db.environment.POSTGRES_PASSWORD': 's3cr3t',
      'services.web.environment.0': 'SESSION_SECRET=abc',
      'services.web.command.1': 'server.js',
      'services.web.image': 'registry.example.com/web:1.2.3',
      'services.web.init_script': 'set -e\necho "hello"\n',
      'services.web.note': 'folded text',
      'services.web.healthcheck.retries': '3',
      'services.web.healthcheck.enabled': 'true',
    },
  },
  {
    file: 'k8s-secret.yaml',
    format: 'yaml',
    expect: { '0.stringData.password': 'hunter2', '1.data.tls.key': 'LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0t', '0.kind': 'Secret' },
  },
  {
    file: 'app-package.json',
    format: 'json',
    expect: {
      'config.port': '8080',
      'config.ratio': '1.5',
      'config.debug': 'false',
      'config.unicode': 'café "quoted"',
      'config.hosts.1': 'b.example.com',
      'scripts.start': 'node .',
    },
  },
  {
    file: 'config.toml',
    format: 'toml',
    expect: {
      title: 'billing',
      'database.password': 'literal \\ no escapes',
      'database.port': '5432',
      'database.started': '1979-05-27 07:32:00Z',
      'database.hosts.1': 'b.example.com',
      'database.pool.max': '10',
      'database.quoted key.inner': 'dotted',
      'users.0.token': 'multi\nline',
      'users.1.token': 'raw\ntext',
      'users.1.name': 'bob',
    },
  },
];

describe.each(cases)('$file', ({ file, format, expect: values }) => {
  it('round-trips byte for byte, touching only values, and loads every value', async () => {
    const plain = fixture(file);
    const providers = [envProvider()];
    const { content, encrypted } = await encryptSecrets(plain, { format, providers, policy, now: fixedNow });
    expect(encrypted.length).toBeGreaterThan(0);
    expect(content).toContain('ENC[kf1,');
    // The encrypted file is still valid for other tools reading its format.
    if (format === 'json') expect(() => JSON.parse(content) as unknown).not.toThrow();
    if (format === 'yaml') expect(parseAllDocuments(content, { keepSourceTokens: false }).flatMap((d) => d.errors)).toEqual([]);
    if (format === 'toml') expect(() => parseToml(content)).not.toThrow();
    // Comments and keys stay readable.
    for (const line of plain.split('\n').filter((l) => l.trim().startsWith('#'))) expect(content).toContain(line);
    expect(await decryptSecrets(content, { format, providers, policy })).toBe(plain);

    const store = await loadSecrets({ content, format }, { providers, policy });
    for (const [k, v] of Object.entries(values)) expect(store.get(k), k).toBe(v);
    store.destroy();
  });
});

describe('typed values', () => {
  it('restores JSON and YAML scalar types through getSection', async () => {
    const providers = [envProvider()];
    const json = (await encryptSecrets(fixture('app-package.json'), { format: 'json', providers, policy })).content;
    expect(json).not.toContain('8080');
    const store = await loadSecrets({ content: json, format: 'json' }, { providers, policy });
    expect(store.getSection('config')).toMatchObject({ port: 8080, ratio: 1.5, debug: false, nothing: null, hosts: ['a.example.com', 'b.example.com'] });
    const yaml = (await encryptSecrets(fixture('docker-compose.yaml'), { format: 'yaml', providers, policy })).content;
    const y = await loadSecrets({ content: yaml, format: 'yaml' }, { providers, policy });
    expect(y.getSection('services.web.healthcheck')).toEqual({ retries: 3, enabled: true });
  });
});
