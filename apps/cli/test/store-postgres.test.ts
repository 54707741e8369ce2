/**
 * The built `keyfold` binary on a PostgreSQL key store (`init --store postgres://...` / `KEYFOLD_DATABASE_URL`), on a
 * throwaway PostgreSQL server this file starts (tooling/postgres-server.ts) and stops: init with a file KEK and with
 * an env KEK, tenants, encrypt/decrypt, kek add / rotate / verify / retire, audit verify, the install lock refusing
 * another provider, the password coming from the environment only, and unreachable, malformed or wrong store URLs
 * failing with a coded error and a nonzero exit.
 *
 * Each installation uses a schema (or database) of its own. SQL the CLI does not offer (setting up a login with a
 * password, reading or tampering with rows) goes through the server's own `psql`.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPostgresKeyStore } from '@keyfold/keystore';
import { freePort, startPostgres, type PostgresServer } from '../../../tooling/postgres-server.js';
import { keyfold, makeTempDir, PASSPHRASE, removeDir, type RunResult } from './helpers.js';
import { ctrlCDuringRotate, requireScript } from './rotate-interrupt.js';
import { countIntact, envKeks, seedDataKeys } from './seed.js';

/** Parsed JSON output (loosely typed on purpose: the assertions check the shape). */
type Json = ReturnType<typeof JSON.parse>;

let server: PostgresServer;
let work: string;
let psqlBin: string;

/** `psql` of the server's own installation (/usr/lib/postgresql/<version>/bin, where the server binaries are). */
function findPsql(): string {
  const root = '/usr/lib/postgresql';
  const found = (existsSync(root) ? readdirSync(root) : [])
    .filter((v) => /^\d+$/.test(v) && existsSync(join(root, v, 'bin', 'psql')))
    .sort((a, b) => Number(b) - Number(a))[0];
  if (found === undefined) throw new Error('psql was not found in /usr/lib/postgresql/<version>/bin; install PostgreSQL (apt-get install postgresql)');
  return join(root, found, 'bin', 'psql');
}

/** Runs SQL as the superuser (no password: the test cluster trusts `postgres`); returns the unaligned output. */
function sql(statement: string, database = 'postgres'): string {
  const r = spawnSync(psqlBin, ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1', '-p', String(server.port), '-U', 'postgres', '-d', database, '-c', statement], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '' },
  });
  if (r.status !== 0) throw new Error(`psql failed (${String(r.status)}): ${r.stderr}`);
  return r.stdout.trim();
}

/** `postgresql://postgres@127.0.0.1:<port>/postgres` */
const superUrl = (): string => server.url;
const dirOf = (name: string): string => join(work, name);
const configOf = (dir: string): Json => JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));

function cli(dir: string, args: string[], env: Record<string, string | undefined>, input?: string | Buffer): RunResult {
  return keyfold([...args, '--dir', dir], { env, ...(input === undefined ? {} : { input }) });
}

function cliJson(dir: string, args: string[], env: Record<string, string | undefined>): Json {
  const r = cli(dir, [...args, '--json'], env);
  expect(r.status, r.stderr + r.out).toBe(0);
  return JSON.parse(r.out);
}

/** Exit status and `[CODE]` of a failed run; the message is checked by the caller. */
function failure(r: RunResult): { status: number | null; code: string | undefined } {
  return { status: r.status, code: /^keyfold: .*\[([A-Z_]+)\]$/m.exec(r.stderr)?.[1] };
}

beforeAll(async () => {
  psqlBin = findPsql();
  server = await startPostgres();
  work = makeTempDir();
}, 120_000);

afterAll(async () => {
  await server?.stop();
  if (work !== undefined) removeDir(work);
});

describe('a file KEK on PostgreSQL', () => {
  const env = { KEYFOLD_PASSPHRASE: PASSPHRASE };
  const dir = (): string => dirOf('file');
  let sealedForAcme: Buffer;
  let sealedDirect: Buffer;

  it('init creates the store in its own schema and records the URL (no SQLite file)', () => {
    const r = keyfold(['init', '--dir', dir(), '--kdf', 'scrypt', '--store', superUrl(), '--store-schema', 'kf_file', '--json'], { env });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.out).store).toMatchObject({ backend: 'postgres', location: superUrl(), schemaVersion: 3, kekVersion: '1' });
    expect(configOf(dir()).store).toEqual({ backend: 'postgres', url: superUrl(), schema: 'kf_file' });
    expect(existsSync(join(dir(), 'keystore.db'))).toBe(false);
    const lockKeyId = configOf(dir()).provider.keyId as string;
    expect(sql('SELECT kind || \':\' || key_id FROM kf_file.keyfold_install_lock')).toBe(`file:${lockKeyId}`);
    expect(cliJson(dir(), ['status'], env).store).toMatchObject({ backend: 'postgres', dataKeys: { active: 0 }, interruptedRotations: [] });
  });

  it('tenant create / list, and encrypt / decrypt under the tenant key and under the KEK', () => {
    expect(cliJson(dir(), ['tenant', 'create', '--tenant', 'acme'], env)).toMatchObject({ ok: true, id: 'acme', activeVersion: 1 });
    expect(cliJson(dir(), ['tenant', 'list'], env).tenants.map((t: { id: string }) => t.id)).toEqual(['acme']);
    expect(sql('SELECT count(*) FROM kf_file.keyfold_data_keys')).toBe('1');

    const e = cli(dir(), ['encrypt', '--tenant', 'acme', '--armor', '--context', 'table=users'], env, 'secret of acme');
    expect(e.status, e.stderr).toBe(0);
    sealedForAcme = e.stdout;
    const d = cli(dir(), ['decrypt', '--tenant', 'acme', '--context', 'table=users'], env, sealedForAcme);
    expect(d.status, d.stderr).toBe(0);
    expect(d.out).toBe('secret of acme');

    const direct = cli(dir(), ['encrypt', '--armor'], env, 'sealed under the KEK');
    expect(direct.status, direct.stderr).toBe(0);
    sealedDirect = direct.stdout;
    expect(cli(dir(), ['decrypt'], env, sealedDirect).out).toBe('sealed under the KEK');
  });

  it('kek add + kek rotate re-wraps the stored key; a second rotate does nothing; verify, list, retire', () => {
    expect(cliJson(dir(), ['kek', 'add'], env)).toMatchObject({ version: '2', recordedInStore: true });
    expect(cliJson(dir(), ['kek', 'rotate'], env)).toMatchObject({ ok: true, rewrapped: 1, failed: [], aborted: false, target: { version: '2' } });
    expect(cliJson(dir(), ['kek', 'rotate'], env)).toMatchObject({ ok: true, rewrapped: 0, skipped: 1 });
    expect(sql("SELECT kek_version FROM kf_file.keyfold_data_keys WHERE owner = 'tenant:acme'")).toBe('2');
    expect(cliJson(dir(), ['kek', 'verify'], env)).toMatchObject({ ok: true, checked: 1, verified: 1, failed: [] });
    const versions = cliJson(dir(), ['kek', 'list'], env).versions.map((v: { version: string; state: string; keys: { active: number } }) => [v.version, v.state, v.keys.active]);
    expect(versions).toEqual([
      ['1', 'available', 0],
      ['2', 'active', 1],
    ]);
    expect(cliJson(dir(), ['kek', 'retire', '--kek-version', '1'], env)).toMatchObject({ ok: true, state: 'retired' });
    expect(cli(dir(), ['decrypt', '--tenant', 'acme'], env, sealedForAcme).out).toBe('secret of acme');
    expect(cli(dir(), ['decrypt'], env, sealedDirect).out).toBe('sealed under the KEK');
  });

  it('audit verify: the chain of every change above verifies; an edited row exits 3 naming it', () => {
    const { entries, head } = cliJson(dir(), ['audit', 'list', '--limit', '1000'], env);
    const events = entries.map((e: { event: string }) => e.event);
    for (const e of ['install.lock', 'kek.activate', 'tenant.create', 'kek.rewrap', 'kek.rotate', 'kek.verify', 'kek.retire']) expect(events).toContain(e);
    expect(cliJson(dir(), ['audit', 'verify'], env)).toMatchObject({ ok: true, entries: entries.length, head });

    const actor = sql('SELECT actor FROM kf_file.keyfold_audit WHERE seq = 3');
    sql("UPDATE kf_file.keyfold_audit SET actor = 'mallory' WHERE seq = 3");
    try {
      const r = cli(dir(), ['audit', 'verify'], env);
      expect(failure(r)).toEqual({ status: 3, code: 'INTEGRITY_FAILED' });
      expect(r.stderr).toContain('#3');
    } finally {
      sql(`UPDATE kf_file.keyfold_audit SET actor = '${actor.replace(/'/g, "''")}' WHERE seq = 3`);
    }
    expect(cliJson(dir(), ['audit', 'verify'], env)).toMatchObject({ ok: true });
  });

  it('the install lock: init of another provider on this store exits 3 (PROVIDER_MISMATCH) naming both, writing nothing', () => {
    const lockKeyId = configOf(dir()).provider.keyId as string;
    const before = cliJson(dir(), ['audit', 'verify'], env).head;

    const otherFile = dirOf('file-other');
    const r = keyfold(['init', '--dir', otherFile, '--kdf', 'scrypt', '--store', superUrl(), '--store-schema', 'kf_file'], { env });
    expect(failure(r)).toEqual({ status: 3, code: 'PROVIDER_MISMATCH' });
    const named = /installed with the file provider "(file-[0-9a-f]+)" but was opened with the file provider "(file-[0-9a-f]+)"/.exec(r.stderr);
    expect(named?.slice(1), r.stderr).toEqual([lockKeyId, expect.not.stringMatching(lockKeyId)]);
    expect(existsSync(join(otherFile, 'config.json'))).toBe(false);

    const otherEnv = dirOf('env-other');
    const e = keyfold(['init', '--dir', otherEnv, '--provider', 'env', '--store', superUrl(), '--store-schema', 'kf_file'], {
      env: { KEYFOLD_KEK_V1: 'ab'.repeat(32) },
    });
    expect(failure(e)).toEqual({ status: 3, code: 'PROVIDER_MISMATCH' });
    expect(e.stderr).toContain(`file provider "${lockKeyId}"`);
    expect(e.stderr).toContain('env provider "KEYFOLD_KEK"');
    expect(existsSync(join(otherEnv, 'config.json'))).toBe(false);

    expect(cliJson(dir(), ['audit', 'verify'], env).head).toEqual(before);
  });

  it('the install lock: a store whose lock names another key refuses this installation (exit 3, naming both)', () => {
    const lockKeyId = configOf(dir()).provider.keyId as string;
    sql("UPDATE kf_file.keyfold_install_lock SET key_id = 'file-00000000'");
    try {
      const r = cli(dir(), ['tenant', 'create', '--tenant', 'initech'], env);
      expect(failure(r)).toEqual({ status: 3, code: 'PROVIDER_MISMATCH' });
      expect(r.stderr).toContain('file-00000000');
      expect(r.stderr).toContain(lockKeyId);
      expect(sql("SELECT count(*) FROM kf_file.keyfold_data_keys WHERE owner = 'tenant:initech'")).toBe('0');
    } finally {
      sql(`UPDATE kf_file.keyfold_install_lock SET key_id = '${lockKeyId}'`);
    }
    expect(cliJson(dir(), ['tenant', 'list'], env).tenants).toHaveLength(1);
  });
});

describe('an env KEK on PostgreSQL with a password login', () => {
  const password = 'p@ss word/42';
  const kek = { KEYFOLD_KEK_V1: 'c4'.repeat(32) };
  const dir = (): string => dirOf('env');
  let url: string;
  let fullUrl: string;

  beforeAll(() => {
    // A login that must give its password (SCRAM) over TCP, owning a database of its own.
    sql(`CREATE ROLE kf_app LOGIN PASSWORD '${password}'`);
    sql('CREATE DATABASE kf_app OWNER kf_app');
    const hba = sql('SHOW hba_file');
    writeFileSync(hba, `host all kf_app 127.0.0.1/32 scram-sha-256\n${readFileSync(hba, 'utf8')}`);
    expect(sql('SELECT pg_reload_conf()')).toBe('t');
    url = `postgresql://kf_app@127.0.0.1:${server.port}/kf_app`;
    fullUrl = `postgresql://kf_app:${encodeURIComponent(password)}@127.0.0.1:${server.port}/kf_app`;
  });

  it('init takes the store from KEYFOLD_DATABASE_URL and records it without the password', () => {
    const r = keyfold(['init', '--dir', dir(), '--provider', 'env', '--json'], { env: { ...kek, KEYFOLD_DATABASE_URL: fullUrl } });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.out).store).toMatchObject({ backend: 'postgres', schemaVersion: 3, installLock: { kind: 'env', keyId: 'KEYFOLD_KEK' }, kekVersion: '1' });
    expect(configOf(dir()).store).toEqual({ backend: 'postgres', url });
    for (const text of [r.out, r.stderr, readFileSync(join(dir(), 'config.json'), 'utf8')]) {
      expect(text).not.toContain(password);
      expect(text).not.toContain(encodeURIComponent(password));
    }
    expect(sql("SELECT count(*) FROM public.keyfold_install_lock WHERE kind = 'env'", 'kf_app')).toBe('1');
  });

  it('later runs take the password from KEYFOLD_DATABASE_URL or PGPASSWORD', () => {
    expect(cliJson(dir(), ['tenant', 'create', '--tenant', 'acme'], { ...kek, KEYFOLD_DATABASE_URL: fullUrl })).toMatchObject({ ok: true, activeVersion: 1 });
    expect(cliJson(dir(), ['tenant', 'list'], { ...kek, PGPASSWORD: password }).tenants.map((t: { id: string }) => t.id)).toEqual(['acme']);
  });

  it('no password: exit 3 ACCESS_DENIED saying where the password comes from', () => {
    const r = cli(dir(), ['tenant', 'list'], kek);
    expect(failure(r)).toEqual({ status: 3, code: 'ACCESS_DENIED' });
    expect(r.stderr).toContain(url);
    expect(r.stderr).toContain('asks for a password and none was given');
    expect(r.stderr).toContain('KEYFOLD_DATABASE_URL');
    expect(r.stderr).toContain('PGPASSWORD');
  });

  it('a KEYFOLD_DATABASE_URL for another database is not used, and the error says so', () => {
    const elsewhere = `postgresql://kf_app:${encodeURIComponent(password)}@127.0.0.1:${server.port}/postgres`;
    const r = cli(dir(), ['tenant', 'list'], { ...kek, KEYFOLD_DATABASE_URL: elsewhere });
    expect(failure(r)).toEqual({ status: 3, code: 'ACCESS_DENIED' });
    expect(r.stderr).toContain(`KEYFOLD_DATABASE_URL is set but names another database, postgresql://kf_app@127.0.0.1:${server.port}/postgres`);
    expect(r.stderr).not.toContain(password);
    expect(r.stderr).not.toContain(encodeURIComponent(password));
  });

  it('a wrong password: exit 3 ACCESS_DENIED, without the password in the message', () => {
    const r = cli(dir(), ['tenant', 'list'], { ...kek, PGPASSWORD: 'not the password' });
    expect(failure(r)).toEqual({ status: 3, code: 'ACCESS_DENIED' });
    expect(r.stderr).not.toContain('not the password');
  });

  it('encrypt / decrypt for a tenant, a new env KEK version, kek rotate, verify and audit verify', () => {
    const env = { ...kek, PGPASSWORD: password };
    const sealed = cli(dir(), ['encrypt', '--tenant', 'acme', '--armor'], env, 'env on postgres');
    expect(sealed.status, sealed.stderr).toBe(0);
    const env2 = { ...env, KEYFOLD_KEK_V2: 'd5'.repeat(32) };
    // A new variable changes nothing until the store's active version moves to it.
    expect(cliJson(dir(), ['kek', 'rotate'], env2)).toMatchObject({ ok: true, rewrapped: 0, target: { kind: 'env', version: '1' } });
    expect(cliJson(dir(), ['kek', 'activate', '--kek-version', '2'], env2)).toMatchObject({ from: '1', to: '2' });
    expect(cliJson(dir(), ['kek', 'rotate'], env2)).toMatchObject({ ok: true, rewrapped: 1, failed: [], target: { kind: 'env', version: '2' } });
    expect(sql("SELECT kek_version FROM public.keyfold_data_keys WHERE owner = 'tenant:acme'", 'kf_app')).toBe('2');
    expect(cliJson(dir(), ['kek', 'verify'], env2)).toMatchObject({ ok: true, checked: 1, failed: [] });
    expect(cli(dir(), ['decrypt', '--tenant', 'acme'], env2, sealed.stdout).out).toBe('env on postgres');
    // Without version 2 the re-wrapped tenant key no longer opens: the rotation really moved it.
    expect(cli(dir(), ['decrypt', '--tenant', 'acme'], env, sealed.stdout).status).not.toBe(0);
    expect(cliJson(dir(), ['audit', 'verify'], env2)).toMatchObject({ ok: true });
  });
});

describe('store URLs that do not lead to a store', () => {
  const env = { KEYFOLD_PASSPHRASE: PASSPHRASE };

  it('init: an unreachable server exits 1 (UNAVAILABLE) naming it, and leaves no installation', async () => {
    const dead = `postgresql://postgres@127.0.0.1:${await freePort()}/postgres`;
    const d = dirOf('unreachable');
    const r = keyfold(['init', '--dir', d, '--kdf', 'scrypt', '--store', dead], { env });
    expect(failure(r)).toEqual({ status: 1, code: 'UNAVAILABLE' });
    expect(r.stderr).toContain(`the key store ${dead} cannot be reached`);
    expect(existsSync(join(d, 'config.json'))).toBe(false);
    expect(existsSync(join(d, 'keys', 'keyring.json'))).toBe(false);
  });

  it('init: a database that does not exist exits 1 (CONFIG_INVALID) saying so', () => {
    const missing = `postgresql://postgres@127.0.0.1:${server.port}/no_such_database`;
    const d = dirOf('no-database');
    const r = keyfold(['init', '--dir', d, '--kdf', 'scrypt', '--store', missing], { env });
    expect(failure(r)).toEqual({ status: 1, code: 'CONFIG_INVALID' });
    expect(r.stderr).toContain('names a database that does not exist');
    expect(existsSync(join(d, 'config.json'))).toBe(false);
  });

  it('init: a malformed or foreign URL is a usage error (exit 2) and nothing is written', () => {
    for (const [i, bad] of ['postgresql://postgres@[127.0.0.1/x', 'postgres://u@h:99999/db', 'mysql://u@127.0.0.1/db'].entries()) {
      const d = dirOf(`bad-url-${i}`);
      const r = keyfold(['init', '--dir', d, '--kdf', 'scrypt', '--store', bad], { env });
      expect(failure(r), bad).toEqual({ status: 2, code: 'USAGE' });
      expect(existsSync(join(d, 'config.json')), bad).toBe(false);
    }
  });

  it('an installed store whose server went away, or whose recorded URL is corrupt: exit 1 with a coded error', async () => {
    const d = dirOf('moved');
    expect(keyfold(['init', '--dir', d, '--kdf', 'scrypt', '--store', superUrl(), '--store-schema', 'kf_moved'], { env }).status).toBe(0);
    expect(cli(d, ['tenant', 'create', '--tenant', 'acme'], env).status).toBe(0);
    const path = join(d, 'config.json');
    const original = readFileSync(path, 'utf8');
    const withUrl = (u: string): void => {
      const c = JSON.parse(original) as { store: { url: string } };
      c.store.url = u;
      writeFileSync(path, JSON.stringify(c), { mode: 0o600 });
    };
    try {
      const dead = `postgresql://postgres@127.0.0.1:${await freePort()}/postgres`;
      withUrl(dead);
      for (const args of [['tenant', 'list'], ['kek', 'rotate'], ['audit', 'verify']]) {
        const r = cli(d, args, env);
        expect(failure(r), args.join(' ')).toEqual({ status: 1, code: 'UNAVAILABLE' });
        expect(r.stderr).toContain(dead);
      }
      withUrl('postgresql://postgres@[broken/postgres');
      let r = cli(d, ['tenant', 'list'], env);
      expect(failure(r)).toEqual({ status: 1, code: 'CONFIG_INVALID' });
      expect(r.stderr).toContain('not a valid URL');
      withUrl(`postgresql://postgres:hunter2@127.0.0.1:${server.port}/postgres`);
      r = cli(d, ['tenant', 'list'], env);
      expect(failure(r)).toEqual({ status: 1, code: 'CONFIG_INVALID' });
      expect(r.stderr).toContain('must not hold a password');
      expect(r.stderr).not.toContain('hunter2');
    } finally {
      writeFileSync(path, original, { mode: 0o600 });
    }
    expect(cliJson(d, ['tenant', 'list'], env).tenants).toHaveLength(1);
  });
});

describe('Ctrl-C during kek rotate on PostgreSQL', () => {
  const SEEDED = 20_000;
  const TOTAL = SEEDED + 1;

  beforeAll(requireScript);

  it('stops after the batch in progress (exit 130), leaves every key opening, and the next run finishes the rest', async () => {
    const d = dirOf('interrupt');
    const kek = envKeks();
    const v1Only = { KEYFOLD_KEK_V1: kek.KEYFOLD_KEK_V1 };
    expect(keyfold(['init', '--dir', d, '--provider', 'env', '--store', superUrl(), '--store-schema', 'kf_interrupt'], { env: v1Only }).status).toBe(0);
    expect(cli(d, ['tenant', 'create', '--tenant', 'acme'], v1Only).status).toBe(0);
    const sealed = cli(d, ['encrypt', '--tenant', 'acme', '--armor'], v1Only, 'sealed before the rotation');
    expect(sealed.status, sealed.stderr).toBe(0);
    const open = () => openPostgresKeyStore({ connectionString: superUrl(), schema: 'kf_interrupt' });
    let store = await open();
    let seeded: Uint8Array;
    try {
      seeded = await seedDataKeys(store, kek, SEEDED);
    } finally {
      await store.close();
    }

    // KEYFOLD_KEK_V2 is rolled out and made the store's active version: `kek rotate` re-wraps onto it.
    expect(cli(d, ['kek', 'activate', '--kek-version', '2'], kek).status).toBe(0);
    const { status, text, typedAt, rewrapped } = await ctrlCDuringRotate({ dir: d, cwd: work, env: kek, batchSize: 25 });
    expect(typedAt, text).toBeDefined();
    expect(typedAt?.total).toBe(TOTAL);
    expect(typedAt?.done).toBeLessThan(TOTAL / 4);
    expect(status, text).toBe(130);
    expect(text).toContain('interrupted: finishing the batch in progress (Ctrl-C again to stop at once)');
    expect(text).toContain('Interrupted: the batches done are saved; run the command again to resume.');
    expect(rewrapped, text).toBeDefined();
    const first = rewrapped ?? Number.NaN;
    expect(first).toBeGreaterThanOrEqual(typedAt?.done ?? Infinity);
    expect(first).toBeLessThan(TOTAL);
    expect(first % 25).toBe(0);

    // In between: the split the run reported, in the tables; every key verifying; the chain intact.
    expect(sql("SELECT kek_version || '=' || count(*) FROM kf_interrupt.keyfold_data_keys GROUP BY kek_version ORDER BY kek_version")).toBe(
      `1=${TOTAL - first}\n2=${first}`,
    );
    expect(cliJson(d, ['status'], kek).store.interruptedRotations).toHaveLength(1);
    expect(cliJson(d, ['kek', 'verify'], kek)).toMatchObject({ ok: true, checked: TOTAL, failed: [] });
    expect(cliJson(d, ['audit', 'verify'], kek)).toMatchObject({ ok: true });

    expect(cliJson(d, ['kek', 'rotate'], kek)).toMatchObject({ ok: true, aborted: false, resumed: true, rewrapped: TOTAL - first, failed: [] });
    expect(cliJson(d, ['kek', 'rotate'], kek)).toMatchObject({ ok: true, rewrapped: 0, skipped: TOTAL });
    expect(cliJson(d, ['status'], kek).store.interruptedRotations).toEqual([]);
    expect(cliJson(d, ['audit', 'verify'], kek)).toMatchObject({ ok: true });
    store = await open();
    try {
      expect(await countIntact(store, kek, seeded)).toEqual({ intact: SEEDED, byVersion: { '2': SEEDED } });
    } finally {
      await store.close();
    }
    expect(cli(d, ['decrypt', '--tenant', 'acme'], kek, sealed.stdout).out).toBe('sealed before the rotation');
  });
});

describe('keys another transaction holds locked', () => {
  it('kek rotate lists them LOCKED and exits 1; retire is refused; the run after the lock ends finishes them', async () => {
    const env = { KEYFOLD_PASSPHRASE: PASSPHRASE };
    const d = dirOf('locked');
    expect(keyfold(['init', '--dir', d, '--kdf', 'scrypt', '--store', superUrl(), '--store-schema', 'kf_locked', '--json'], { env }).status).toBe(0);
    for (const t of ['a', 'b', 'c']) expect(cliJson(d, ['tenant', 'create', '--tenant', t], env)).toMatchObject({ ok: true });
    expect(cliJson(d, ['kek', 'add'], env)).toMatchObject({ version: '2' });

    // A second session holds tenant b's key row FOR UPDATE until it commits.
    const holder = spawn(psqlBin, ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1', '-p', String(server.port), '-U', 'postgres', '-d', 'postgres'], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH ?? '' },
    });
    const exited = new Promise<number | null>((resolve) => holder.on('exit', resolve));
    let held = '';
    await new Promise<void>((resolve, reject) => {
      holder.stdout.on('data', (c: Buffer) => {
        held += c.toString();
        if (held.includes('locked:1')) resolve();
      });
      holder.on('exit', () => reject(new Error(`psql ended before taking the lock: ${held}`)));
      holder.stdin.write("BEGIN; SELECT 'locked:' || count(*) FROM (SELECT id FROM kf_locked.keyfold_data_keys WHERE owner = 'tenant:b' FOR UPDATE) l;\n");
    });
    try {
      const r = cli(d, ['kek', 'rotate', '--lock-wait', '0', '--json'], env);
      expect(r.status, r.stderr).toBe(1);
      const report = JSON.parse(r.out);
      expect(report).toMatchObject({ ok: false, rewrapped: 2, aborted: false });
      expect(report.failed).toHaveLength(1);
      expect(report.failed[0].code).toBe('LOCKED');
      expect(sql("SELECT kek_version FROM kf_locked.keyfold_data_keys WHERE owner = 'tenant:b'")).toBe('1');

      const human = cli(d, ['kek', 'rotate', '--lock-wait', '0'], env);
      expect(human.status).toBe(1);
      expect(human.out).toContain('held locked by another transaction');
      expect(human.out).not.toContain('Every key is on the target version.');

      expect(failure(cli(d, ['kek', 'retire', '--kek-version', '1'], env))).toEqual({ status: 1, code: 'POLICY_VIOLATION' });
      expect(failure(cli(d, ['kek', 'rotate', '--lock-wait', 'soon'], env))).toEqual({ status: 2, code: 'USAGE' });
    } finally {
      holder.stdin.end('COMMIT;\n');
      await exited;
    }
    expect(cliJson(d, ['kek', 'rotate'], env)).toMatchObject({ ok: true, rewrapped: 1, failed: [] });
    expect(cliJson(d, ['kek', 'retire', '--kek-version', '1'], env)).toMatchObject({ ok: true, state: 'retired' });
    expect(cliJson(d, ['kek', 'verify'], env)).toMatchObject({ ok: true, checked: 3, failed: [] });
  });
});

describe('a PostgreSQL store opened by a role without write rights, or whose tables are gone (issue 13)', () => {
  it('kek add is refused before the keyring changes and the read commands work; a retry with write rights adds exactly one version', () => {
    const env = { KEYFOLD_PASSPHRASE: PASSPHRASE };
    const d = dirOf('readonly-role');
    expect(keyfold(['init', '--dir', d, '--kdf', 'scrypt', '--store', superUrl(), '--store-schema', 'kf_ro', '--json'], { env }).status).toBe(0);
    expect(cliJson(d, ['tenant', 'create', '--tenant', 'a'], env)).toMatchObject({ ok: true });
    sql('CREATE ROLE kf_reader LOGIN; GRANT USAGE ON SCHEMA kf_ro TO kf_reader; GRANT SELECT ON ALL TABLES IN SCHEMA kf_ro TO kf_reader');
    const config = configOf(d);
    const readerUrl = superUrl().replace('postgres@', 'kf_reader@');
    writeFileSync(join(d, 'config.json'), JSON.stringify({ ...config, store: { ...config.store, url: readerUrl } }), { mode: 0o600 });
    const keyring = join(d, 'keys', 'keyring.json');
    const before = readFileSync(keyring);

    const add = cli(d, ['kek', 'add'], env);
    expect(add.status, add.stderr).toBe(3);
    expect(add.stderr).toMatch(/\[ACCESS_DENIED\]\n$/);
    expect(readFileSync(keyring).equals(before)).toBe(true);
    expect(sql("SELECT string_agg(version || ':' || state, ',' ORDER BY version) FROM kf_ro.keyfold_kek_versions")).toBe('1:active');
    expect(sql("SELECT count(*) FROM kf_ro.keyfold_checkpoints")).toBe('0');
    expect(cliJson(d, ['kek', 'list'], env).versions).toHaveLength(1);
    expect(cliJson(d, ['tenant', 'list'], env).tenants).toMatchObject([{ id: 'a' }]);
    expect(cliJson(d, ['audit', 'verify'], env)).toMatchObject({ ok: true });

    writeFileSync(join(d, 'config.json'), JSON.stringify(config), { mode: 0o600 });
    expect(cliJson(d, ['kek', 'add'], env)).toMatchObject({ version: '2', versions: ['1', '2'], recordedInStore: true });
    expect(sql("SELECT string_agg(version || ':' || state, ',' ORDER BY version) FROM kf_ro.keyfold_kek_versions")).toBe('1:available,2:active');
  });

  it('a store whose table was dropped is refused (INTEGRITY_FAILED), a dropped schema is not re-created (CONFIG_INVALID)', () => {
    const env = { KEYFOLD_PASSPHRASE: PASSPHRASE };
    const d = dirOf('dropped');
    expect(keyfold(['init', '--dir', d, '--kdf', 'scrypt', '--store', superUrl(), '--store-schema', 'kf_dropped', '--json'], { env }).status).toBe(0);
    sql('DROP TABLE kf_dropped.keyfold_data_keys');
    for (const args of [['tenant', 'list'], ['kek', 'list'], ['status'], ['tenant', 'create', '--tenant', 'x']]) {
      expect(failure(cli(d, args, env)), args.join(' ')).toEqual({ status: 3, code: 'INTEGRITY_FAILED' });
    }
    expect(sql("SELECT to_regclass('kf_dropped.keyfold_data_keys') IS NULL")).toBe('t');
    sql('DROP SCHEMA kf_dropped CASCADE');
    for (const args of [['tenant', 'list'], ['tenant', 'create', '--tenant', 'x'], ['encrypt']]) {
      expect(failure(cli(d, args, env, 'x')), args.join(' ')).toEqual({ status: 1, code: 'CONFIG_INVALID' });
    }
    expect(sql("SELECT count(*) FROM information_schema.schemata WHERE schema_name = 'kf_dropped'")).toBe('0');
  });
});
