/**
 * The key store's pointer decides which KEK version new writes use, through the built binary, on SQLite and on
 * PostgreSQL: two processes with different environments sharing one installation and store (host A has
 * KEYFOLD_KEK_V1..V3, host B only V1 and V2) both seal under the pointer; `kek activate` moves it (audited, from → to),
 * after which B refuses to seal naming the variable to add and still opens what it has; a rollback; a retired or
 * unknown version refused; `kek add --no-activate` leaving the pointer where it is.
 */
import { existsSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type PostgresServer } from '../../../tooling/postgres-server.js';
import { keyfold, makeTempDir, PASSPHRASE, removeDir, type RunResult } from './helpers.js';

type Json = ReturnType<typeof JSON.parse>;

let server: PostgresServer;
let work: string;
let schemas = 0;

beforeAll(async () => {
  server = await startPostgres();
  work = makeTempDir();
}, 120_000);

afterAll(async () => {
  await server?.stop();
  if (work !== undefined) removeDir(work);
});

const V1 = '1a'.repeat(32);
const V2 = '2b'.repeat(32);
const V3 = '3c'.repeat(32);
const HOST_A = { KEYFOLD_KEK_V1: V1, KEYFOLD_KEK_V2: V2, KEYFOLD_KEK_V3: V3 };
const HOST_B = { KEYFOLD_KEK_V1: V1, KEYFOLD_KEK_V2: V2 };

/** `--store` options of a fresh store: none (SQLite in the directory) or a schema of its own on the test server. */
const STORES = [
  ['SQLite', (): string[] => []],
  ['PostgreSQL', (): string[] => ['--store', server.url, '--store-schema', `kf_pointer_${++schemas}`]],
] as const;

function run(dir: string, args: string[], env: Record<string, string>, input?: string | Buffer): RunResult {
  return keyfold([...args, '--dir', dir], { env, ...(input === undefined ? {} : { input }) });
}

function json(dir: string, args: string[], env: Record<string, string>): Json {
  const r = run(dir, [...args, '--json'], env);
  expect(r.status, r.stderr + r.out).toBe(0);
  return JSON.parse(r.out);
}

/** Seals `text` (armored, to stdout) and returns the envelope and the KEK version its wrapped key is under. */
function seal(dir: string, env: Record<string, string>, text: string): { sealed: Buffer; version: string } {
  const r = run(dir, ['encrypt', '--armor'], env, text);
  expect(r.status, r.stderr).toBe(0);
  const info = JSON.parse(keyfold(['inspect', '--json'], { input: r.stdout }).out);
  return { sealed: r.stdout, version: info.wrappedKeys[0].keyVersion as string };
}

/** Exit status and `[CODE]` of a failed run. */
function failure(r: RunResult): { status: number | null; code: string | undefined } {
  return { status: r.status, code: /^keyfold: .*\[([A-Z_]+)\]$/m.exec(r.stderr)?.[1] };
}

describe.each(STORES)('the store pointer decides the write version (%s)', (_name, storeArgs) => {
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(join(work, 'env-'));
    const r = keyfold(['init', '--provider', 'env', '--dir', dir, ...storeArgs(), '--json'], { env: HOST_B });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.out).store).toMatchObject({ kekVersion: '2' });
  });

  it('two hosts with different environments, one store: both seal under the pointer; after kek activate B refuses, naming the variable, and still opens', () => {
    // Pointer at 2: host A, which has V3 (its highest), still seals under 2.
    const a2 = seal(dir, HOST_A, 'from A under 2');
    const b2 = seal(dir, HOST_B, 'from B under 2');
    expect([a2.version, b2.version]).toEqual(['2', '2']);
    expect(json(dir, ['status'], HOST_A).provider).toMatchObject({ activeVersion: '2', versions: ['1', '2', '3'] });

    // B cannot activate a version it has not loaded and the store does not know: coded refusal, nothing changes.
    const unknownHere = run(dir, ['kek', 'activate', '--kek-version', '3'], HOST_B);
    expect(failure(unknownHere)).toEqual({ status: 1, code: 'KEY_NOT_FOUND' });
    expect(unknownHere.out).toBe('');

    // A has V3: activating registers it and moves the pointer, audited with from and to.
    expect(json(dir, ['kek', 'activate', '--kek-version', '3'], HOST_A)).toMatchObject({ ok: true, from: '2', to: '3', changed: true, loadedHere: true });
    const a3 = seal(dir, HOST_A, 'from A under 3');
    expect(a3.version).toBe('3');

    // B lacks V3: it refuses to seal (stdout and --out), naming the variable, with the table's exit code; nothing is written.
    const refused = run(dir, ['encrypt', '--armor'], HOST_B, 'from B');
    expect(failure(refused)).toEqual({ status: 1, code: 'KEY_NOT_FOUND' });
    expect(refused.stderr).toContain('KEYFOLD_KEK_V3');
    expect(refused.stderr).not.toContain(V1);
    expect(refused.stdout.length).toBe(0);
    const out = join(dir, 'b.kf');
    const refusedToFile = run(dir, ['encrypt', '--out', out], HOST_B, 'from B');
    expect(failure(refusedToFile)).toEqual({ status: 1, code: 'KEY_NOT_FOUND' });
    expect(existsSync(out)).toBe(false);
    // Tenant keys too: wrapped under the pointer, so B cannot create one; A can.
    expect(failure(run(dir, ['tenant', 'create', '--tenant', 'acme'], HOST_B))).toEqual({ status: 1, code: 'KEY_NOT_FOUND' });
    expect(json(dir, ['tenant', 'create', '--tenant', 'acme'], HOST_A)).toMatchObject({ ok: true, id: 'acme' });

    // B still opens everything under the versions it has.
    for (const [sealed, text] of [[a2.sealed, 'from A under 2'], [b2.sealed, 'from B under 2']] as const) {
      const opened = run(dir, ['decrypt'], HOST_B, sealed);
      expect(opened.status, opened.stderr).toBe(0);
      expect(opened.out).toBe(text);
    }
    expect(run(dir, ['decrypt'], HOST_A, a3.sealed).out).toBe('from A under 3');
  });

  it('rollback: activate back to 2 (prints from → to); kek rotate follows the pointer; a retired or unknown version is refused', () => {
    const back = run(dir, ['kek', 'activate', '--kek-version', '2'], HOST_B);
    expect(back.status, back.stderr).toBe(0);
    expect(back.out).toContain('3 → 2');
    expect(seal(dir, HOST_A, 'after rollback').version).toBe('2');
    expect(seal(dir, HOST_B, 'after rollback').version).toBe('2');

    // The tenant key made under 3 goes back to 2: the rotation's target is the pointer, not A's highest version.
    expect(json(dir, ['kek', 'rotate'], HOST_A)).toMatchObject({ ok: true, rewrapped: 1, target: { version: '2' } });
    expect(json(dir, ['kek', 'retire', '--kek-version', '3'], HOST_A)).toMatchObject({ ok: true, state: 'retired' });

    const retired = run(dir, ['kek', 'activate', '--kek-version', '3'], HOST_A);
    expect(failure(retired)).toEqual({ status: 1, code: 'KEY_VERSION_RETIRED' });
    const unknown = run(dir, ['kek', 'activate', '--kek-version', '9'], HOST_A);
    expect(failure(unknown)).toEqual({ status: 1, code: 'KEY_NOT_FOUND' });
    expect(run(dir, ['kek', 'activate', '--kek-version', '2\u001b[31m'], HOST_A).status).toBe(2);
    expect(run(dir, ['kek', 'activate'], HOST_A).status).toBe(2);

    const versions = json(dir, ['kek', 'list'], HOST_A).versions.map((v: { version: string; state: string }) => [v.version, v.state]);
    expect(versions).toEqual([
      ['2', 'active'],
      ['3', 'retired'],
    ]);
    const moves = json(dir, ['audit', 'list', '--limit', '1000'], HOST_A)
      .entries.filter((e: { event: string }) => e.event === 'kek.activate')
      .map((e: { details: { from?: string | null; to?: string } }) => [e.details.from ?? null, e.details.to]);
    expect(moves).toEqual([
      [null, '2'],
      ['2', '3'],
      ['3', '2'],
    ]);
    expect(json(dir, ['audit', 'verify'], HOST_A)).toMatchObject({ ok: true });
  });
});

describe.each(STORES)('kek add --no-activate (file provider, %s)', (_name, storeArgs) => {
  const env = { KEYFOLD_PASSPHRASE: PASSPHRASE };

  it('adds and registers the version but leaves the pointer; kek activate then moves it', () => {
    const dir = mkdtempSync(join(work, 'file-'));
    const init = keyfold(['init', '--dir', dir, '--kdf', 'scrypt', ...storeArgs()], { env });
    expect(init.status, init.stderr).toBe(0);

    const added = json(dir, ['kek', 'add', '--no-activate'], env);
    expect(added).toMatchObject({ ok: true, version: '2', activeVersion: '1', activated: false, recordedInStore: true, versions: ['1', '2'] });
    const text = run(dir, ['kek', 'add', '--no-activate'], env);
    expect(text.status, text.stderr).toBe(0);
    expect(text.out).toContain("The key store's active version stays 1");
    expect(json(dir, ['kek', 'list'], env).versions.map((v: { version: string; state: string }) => [v.version, v.state])).toEqual([
      ['1', 'active'],
      ['2', 'available'],
      ['3', 'available'],
    ]);
    expect(seal(dir, env, 'still under 1').version).toBe('1');

    expect(json(dir, ['kek', 'activate', '--kek-version', '3'], env)).toMatchObject({ from: '1', to: '3', changed: true });
    expect(seal(dir, env, 'now under 3').version).toBe('3');
    // kek add without the flag keeps its meaning: add and activate.
    expect(json(dir, ['kek', 'add'], env)).toMatchObject({ version: '4', activeVersion: '4', activated: true });
    expect(seal(dir, env, 'under 4').version).toBe('4');
  });
});
