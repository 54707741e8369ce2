/**
 * Opening a PostgreSQL key store that cannot be opened, on the run's real throwaway server: each failure is a coded
 * error naming the store without its password, and no connection is left behind.
 *
 * - a database that does not exist: CONFIG_INVALID naming it;
 * - a login that needs a password none was given for, or a wrong one: ACCESS_DENIED (`StoreAccessError`, with the
 *   reason), at once, with the socket closed (node-postgres would otherwise keep it until the server's
 *   authentication_timeout);
 * - a server that cannot be reached (TCP or Unix socket): UNAVAILABLE;
 * - a connection string that does not parse: CONFIG_INVALID without repeating it.
 *
 * "No connection left behind" is checked on the sockets themselves: every socket connected during the open (seen by
 * a spy on `net.Socket.prototype.connect`, which node-postgres calls) must be destroyed once the open has failed.
 */
import { Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ConfigError, ProviderError, type KeyfoldError } from '@keyfold/envelope-core';
import { freePort } from '../../../tooling/postgres-server.js';
import { openPostgresKeyStore, StoreAccessError } from '../src/index.js';
import { freshSchema, pgUrl } from './helpers.js';

const role = `kf_pw_${process.pid}_${randomBytes(3).toString('hex')}`;
/** Roles whose pg_hba method is `password` (cleartext) and `md5`: the driver sends an empty password for them. */
const plainRoles = { password: `kf_ct_${process.pid}_${randomBytes(3).toString('hex')}`, md5: `kf_md_${process.pid}_${randomBytes(3).toString('hex')}` };
const password = `s3cret ${randomBytes(6).toString('hex')}/@:?`;
const wrongPassword = `not-it-${randomBytes(6).toString('hex')}`;

let base: URL;
let savedPgPassword: string | undefined;

async function superuser<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: pgUrl() });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** The server's URL for `user` (default: the SCRAM role), with `secret` (URL-encoded) when given, naming `database`. */
function urlFor(database: string, secret?: string, user = role): string {
  const u = new URL(base.href);
  u.username = user;
  u.password = secret === undefined ? '' : encodeURIComponent(secret);
  u.pathname = `/${database}`;
  return u.href;
}

interface Outcome {
  error: unknown;
  sockets: Socket[];
}

/** Opens a store from `connectionString`, expecting it to fail; returns the error and the sockets it created. */
async function failedOpen(connectionString: string): Promise<Outcome> {
  const sockets: Socket[] = [];
  // eslint-disable-next-line @typescript-eslint/unbound-method -- re-bound to each socket below
  const connect = Socket.prototype.connect as (this: Socket, ...args: unknown[]) => Socket;
  const spy = vi.spyOn(Socket.prototype, 'connect').mockImplementation(function (this: Socket, ...args: unknown[]) {
    sockets.push(this);
    return connect.apply(this, args);
  });
  try {
    const store = await openPostgresKeyStore({ connectionString, schema: freshSchema(), create: true });
    await store.close();
    return { error: undefined, sockets };
  } catch (error) {
    return { error, sockets };
  } finally {
    spy.mockRestore();
  }
}

/** Every message in the error and its cause chain. */
function messages(err: unknown): string[] {
  const out: string[] = [];
  for (let e = err; e instanceof Error; e = e.cause) out.push(e.message, String(e));
  return out;
}

function expectNoSecret(err: unknown, ...secrets: string[]): void {
  for (const m of messages(err)) {
    for (const s of secrets) {
      expect(m).not.toContain(s);
      expect(m).not.toContain(encodeURIComponent(s));
    }
  }
}

function expectAllClosed(sockets: readonly Socket[]): void {
  for (const s of sockets) expect(s.destroyed).toBe(true);
}

beforeAll(async () => {
  base = new URL(pgUrl());
  savedPgPassword = process.env.PGPASSWORD;
  delete process.env.PGPASSWORD;
  await superuser(async (c) => {
    await c.query(`CREATE ROLE ${role} LOGIN PASSWORD '${password.replace(/'/g, "''")}'`);
    await c.query(`GRANT CREATE ON DATABASE postgres TO ${role}`);
    const hba = (await c.query<{ hba_file: string }>('SHOW hba_file')).rows[0]?.hba_file;
    if (hba === undefined) throw new Error('SHOW hba_file returned nothing');
    // This role must give its password over TCP (SCRAM); every other role keeps the cluster's trust rule.
    await c.query(`SET password_encryption = 'md5'`);
    for (const r of Object.values(plainRoles)) {
      await c.query(`CREATE ROLE ${r} LOGIN PASSWORD '${password.replace(/'/g, "''")}'`);
      await c.query(`GRANT CREATE ON DATABASE postgres TO ${r}`);
    }
    writeFileSync(
      hba,
      `host all ${role} 127.0.0.1/32 scram-sha-256\nhost all ${plainRoles.password} 127.0.0.1/32 password\n` +
        `host all ${plainRoles.md5} 127.0.0.1/32 md5\n${readFileSync(hba, 'utf8')}`,
    );
    expect((await c.query<{ ok: boolean }>('SELECT pg_reload_conf() AS ok')).rows[0]?.ok).toBe(true);
  });
});

afterAll(() => {
  if (savedPgPassword !== undefined) process.env.PGPASSWORD = savedPgPassword;
});

describe('openPostgresKeyStore failures', () => {
  for (const method of ['password', 'md5'] as const) {
    it(`${method} login method: no password is password-missing, a wrong one login-refused, the right one opens`, async () => {
      const user = plainRoles[method];
      const savedPassfile = process.env.PGPASSFILE;
      process.env.PGPASSFILE = '/nonexistent/keyfold-test-pgpass'; // a ~/.pgpass on the machine must not count
      try {
        const missing = await failedOpen(urlFor('postgres', undefined, user));
        expect(missing.error).toBeInstanceOf(StoreAccessError);
        expect(missing.error).toMatchObject({ code: 'ACCESS_DENIED', reason: 'password-missing' });
        expectAllClosed(missing.sockets);
        const wrong = await failedOpen(urlFor('postgres', wrongPassword, user));
        expect(wrong.error).toMatchObject({ code: 'ACCESS_DENIED', reason: 'login-refused' });
        expectNoSecret(wrong.error, wrongPassword);
        expectAllClosed(wrong.sockets);
        const store = await openPostgresKeyStore({ connectionString: urlFor('postgres', password, user), schema: freshSchema(), create: true });
        await store.close();
      } finally {
        if (savedPassfile === undefined) delete process.env.PGPASSFILE;
        else process.env.PGPASSFILE = savedPassfile;
      }
    });
  }

  it('the login with its password opens the store (the set-up the other cases depend on)', async () => {
    const store = await openPostgresKeyStore({ connectionString: urlFor('postgres', password), schema: freshSchema(), create: true });
    try {
      expect(store.location).not.toContain(encodeURIComponent(password));
      expect(store.location).toContain(role);
    } finally {
      await store.close();
    }
  });

  it('a database that does not exist: CONFIG_INVALID naming the database, without the password', async () => {
    const { error, sockets } = await failedOpen(urlFor('no_such_database', password));
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as KeyfoldError).code).toBe('CONFIG_INVALID');
    expect((error as Error).message).toContain('names a database that does not exist');
    expect((error as Error).message).toContain('database "no_such_database"');
    expect((error as Error).message).toContain('3D000');
    expectNoSecret(error, password);
    expect(sockets.length).toBeGreaterThan(0);
    expectAllClosed(sockets);
  });

  it('no password for a login that needs one: ACCESS_DENIED (password-missing) and the socket is closed', async () => {
    const { error, sockets } = await failedOpen(urlFor('postgres'));
    expect(error).toBeInstanceOf(StoreAccessError);
    expect(error).toBeInstanceOf(ProviderError);
    expect((error as StoreAccessError).code).toBe('ACCESS_DENIED');
    expect((error as StoreAccessError).reason).toBe('password-missing');
    expect((error as Error).message).toContain('asks for a password and none was given');
    expect((error as Error).message).toContain('PGPASSWORD');
    expect((error as Error).message).toContain(`${role}@127.0.0.1:${base.port}/postgres`);
    expectNoSecret(error, password);
    expect(sockets.length).toBeGreaterThan(0);
    expectAllClosed(sockets);
  });

  it('a wrong password (in the URL or in PGPASSWORD): ACCESS_DENIED (login-refused), neither password in any message', async () => {
    const inUrl = await failedOpen(urlFor('postgres', wrongPassword));
    process.env.PGPASSWORD = wrongPassword;
    let fromEnv: Outcome;
    try {
      fromEnv = await failedOpen(urlFor('postgres'));
    } finally {
      delete process.env.PGPASSWORD;
    }
    for (const { error, sockets } of [inUrl, fromEnv]) {
      expect(error).toBeInstanceOf(StoreAccessError);
      expect((error as StoreAccessError).code).toBe('ACCESS_DENIED');
      expect((error as StoreAccessError).reason).toBe('login-refused');
      expect((error as Error).message).toContain('refused the login (28P01');
      expectNoSecret(error, password, wrongPassword);
      expectAllClosed(sockets);
    }
  });

  it('a password given as a query parameter never appears either', async () => {
    const u = new URL(urlFor('postgres'));
    u.searchParams.set('password', wrongPassword);
    const { error, sockets } = await failedOpen(u.href);
    expect((error as StoreAccessError).reason).toBe('login-refused');
    expect((error as Error).message).toContain('password=***');
    expectNoSecret(error, password, wrongPassword);
    expectAllClosed(sockets);
  });

  it('a server that cannot be reached (TCP port, Unix socket directory): UNAVAILABLE', async () => {
    const port = await freePort();
    const tcp = await failedOpen(`postgresql://${role}:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`);
    expect(tcp.error).toBeInstanceOf(ProviderError);
    expect((tcp.error as KeyfoldError).code).toBe('UNAVAILABLE');
    expect((tcp.error as Error).message).toContain(`127.0.0.1:${port}/postgres cannot be reached (ECONNREFUSED)`);
    expectNoSecret(tcp.error, password);
    expectAllClosed(tcp.sockets);

    const socketDir = `/tmp/keyfold-no-such-dir-${randomBytes(4).toString('hex')}`;
    const unix = await failedOpen(`postgresql://${role}:${encodeURIComponent(password)}@${encodeURIComponent(socketDir)}/postgres`);
    expect((unix.error as KeyfoldError).code).toBe('UNAVAILABLE');
    expect((unix.error as Error).message).toContain('cannot be reached (ENOENT)');
    expectNoSecret(unix.error, password);
  });

  it('a connection string that does not parse: CONFIG_INVALID, the string (and its password) not repeated', async () => {
    for (const bad of [`postgresql://${role}:${encodeURIComponent(password)}@[127.0.0.1/postgres`, `postgres://${role}:${encodeURIComponent(password)}@h:99999/db`]) {
      const { error, sockets } = await failedOpen(bad);
      expect(error, bad).toBeInstanceOf(ConfigError);
      expect((error as Error).message).toContain('not a valid URL');
      expectNoSecret(error, password);
      expect(sockets).toEqual([]);
    }
  });
});
