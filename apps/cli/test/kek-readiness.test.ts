/**
 * Readiness before rotation through the built binary (issue 14, item 2), on SQLite and PostgreSQL. A long-running
 * application (a child process, registered through openTenantKeys) loaded KEK version 1 only; `kek add` makes
 * version 2 active. Then: `kek verify --target 2` lists that process and exits 1 (NOT_READY); `kek verify
 * --kek-version 2` says plainly that 0 keys were checked; `kek rotate` refuses and writes nothing, `--force`
 * rotates and the audit entry records it; once the process is killed its record (which it could not remove)
 * expires and no longer blocks: `--target 3` passes and `kek rotate --from-version 2 --to-version 3` moves exactly
 * the keys under 2. `keyfold status` shows per-version key counts and the live processes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type PostgresServer } from '../../../tooling/postgres-server.js';
import { baseEnv, keyfold, makeTempDir, PASSPHRASE, removeDir, type RunResult } from './helpers.js';

type Json = ReturnType<typeof JSON.parse>;
const env = { KEYFOLD_PASSPHRASE: PASSPHRASE };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const TTL_MS = 800;

let server: PostgresServer;
let work: string;

beforeAll(async () => {
  server = await startPostgres();
  work = makeTempDir();
}, 120_000);

afterAll(async () => {
  await server?.stop();
  if (work !== undefined) removeDir(work);
});

/** The registered application: resolves with its registration id once it is registered. */
function startApp(dir: string): { child: ChildProcess; registered: Promise<{ id: string; versions: string }> } {
  const child = spawn(process.execPath, [fileURLToPath(new URL('./fixtures/registered-app.mjs', import.meta.url))], {
    env: baseEnv({ ...env, KF_DIR: dir, KF_REFRESH_MS: '200', KF_TTL_MS: String(TTL_MS) }),
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const registered = new Promise<{ id: string; versions: string }>((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (line) => {
      const m = /^registered (\S+) (\S*)$/.exec(line);
      if (m) resolve({ id: m[1]!, versions: m[2]! });
    });
    child.on('exit', (code) => reject(new Error(`the application exited (${String(code)})`)));
  });
  return { child, registered };
}

function cli(dir: string, args: string[]): RunResult {
  return keyfold([...args, '--dir', dir], { env });
}
function cliJson(dir: string, args: string[]): Json {
  const r = cli(dir, [...args, '--json']);
  expect(r.status, r.stderr + r.out).toBe(0);
  return JSON.parse(r.out);
}
/** The one coded line of a failure. */
function codeOf(r: RunResult): string | undefined {
  const lines = r.stderr.trim().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  return /^keyfold: .*\[([A-Z_]+)\]$/.exec(lines[0]!)?.[1];
}

describe.each(['sqlite', 'postgres'] as const)('kek verify --target and kek rotate readiness (%s store)', (backend) => {
  let dir: string;
  let app: ReturnType<typeof startApp>;
  let appPid: number;

  beforeAll(() => {
    dir = join(work, backend);
    const store = backend === 'sqlite' ? [] : ['--store', server.url, '--store-schema', 'kf_ready'];
    const r = keyfold(['init', '--dir', dir, '--kdf', 'scrypt', ...store], { env });
    expect(r.status, r.stderr).toBe(0);
    for (const t of ['acme', 'beta']) expect(cli(dir, ['tenant', 'create', '--tenant', t]).status).toBe(0);
  });
  afterAll(() => {
    app?.child.kill('SIGKILL');
  });

  it('a live process that loaded only version 1: --target 2 lists it and exits 1 (NOT_READY); status shows it', async () => {
    app = startApp(dir);
    const reg = await app.registered;
    appPid = app.child.pid!;
    expect(reg.versions).toBe('1');
    expect(cli(dir, ['kek', 'add']).status).toBe(0);

    const r = cli(dir, ['kek', 'verify', '--target', '2']);
    expect(r.status).toBe(1);
    expect(codeOf(r)).toBe('NOT_READY');
    expect(r.stderr).toContain(`pid ${appPid}`);
    // The table names the process: host, pid, start time, what it is, the versions it loaded.
    const row = r.out.split('\n').find((l) => l.includes(String(appPid)));
    expect(row).toMatch(/billing-app\s+1\s*$/);
    expect(r.out).toMatch(/probe here\s+ok: a throwaway key wrapped under it and unwrapped again/);

    const j = keyfold(['kek', 'verify', '--target', '2', '--dir', dir, '--json'], { env });
    expect(j.status).toBe(1);
    const doc = JSON.parse(j.out);
    expect(doc).toMatchObject({ ok: false, ready: false, error: { code: 'NOT_READY' }, probe: { method: 'wrap-unwrap', ok: true }, processes: { live: 1 } });
    expect(doc.processes.notReady).toEqual([expect.objectContaining({ pid: appPid, label: 'billing-app', versions: ['1'], startedAt: expect.any(String) })]);

    const status = cliJson(dir, ['status']).store;
    expect(status.processes).toEqual([expect.objectContaining({ pid: appPid, label: 'billing-app', kind: 'file', versions: ['1'] })]);
    expect((status.kekVersions as Json[]).map((v): unknown[] => [v.version as unknown, v.state as unknown, v.keys.active as unknown, v.keys.retired as unknown])).toEqual([
      ['1', 'available', 2, 0],
      ['2', 'active', 0, 0],
    ]);
  });

  it('--kek-version 2 before the rotation says 0 keys were checked, not that every key unwraps', () => {
    const r = cli(dir, ['kek', 'verify', '--kek-version', '2']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.out).toContain('0 keys checked: no stored key is wrapped under version 2');
    expect(r.out).toContain("run 'keyfold kek verify --target 2'");
    expect(r.out).not.toContain('Every key unwraps');
    expect(cliJson(dir, ['kek', 'verify', '--kek-version', '2'])).toMatchObject({ checked: 0, warning: expect.stringContaining('0 keys checked') });
  });

  it('a rotation with one stale registered process: refused (nothing written), --force proceeds and is audited', () => {
    const auditBefore = cliJson(dir, ['audit', 'list', '--limit', '1000']).entries.length as number;
    const r = cli(dir, ['kek', 'rotate']);
    expect(r.status).toBe(1);
    expect(codeOf(r)).toBe('NOT_READY');
    expect(r.stderr).toContain('nothing was written');
    expect(r.out).toContain(String(appPid));
    expect(cliJson(dir, ['status']).store.kekVersions.find((v: Json) => v.version === '1').keys.active).toBe(2);
    expect(cliJson(dir, ['audit', 'list', '--limit', '1000']).entries.length).toBe(auditBefore);

    const forced = cliJson(dir, ['kek', 'rotate', '--force']);
    expect(forced).toMatchObject({ ok: true, rewrapped: 2, readiness: { ready: false, forced: true } });
    const entry = cliJson(dir, ['audit', 'list', '--event', 'kek.rotate']).entries.at(-1);
    expect(entry.details).toMatchObject({ readiness: 'forced', from: null, to: '2', rewrapped: 2 });
    expect(entry.details.notReady).toEqual([expect.stringMatching(new RegExp(`:${appPid}$`))]);
    expect(cliJson(dir, ['status']).store.kekVersions.find((v: Json) => v.version === '2').keys.active).toBe(2);
  });

  it('an expired record no longer blocks: --target 3 passes once the killed process\'s record expired; --from-version 2 --to-version 3 moves exactly those keys', async () => {
    expect(cli(dir, ['kek', 'add']).status).toBe(0);
    expect(cli(dir, ['tenant', 'rotate', '--tenant', 'acme']).status).toBe(0); // acme:2 under v3, acme:1 and beta:1 under v2
    expect(codeOf(cli(dir, ['kek', 'verify', '--target', '3']))).toBe('NOT_READY');
    // The application is killed: it cannot remove its record, which stops being refreshed and expires.
    app.child.kill('SIGKILL');
    await sleep(TTL_MS + 700);
    const ok = cli(dir, ['kek', 'verify', '--target', '3']);
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.out).toContain('Version 3 is ready');
    expect(cliJson(dir, ['status']).store.processes).toEqual([]);

    // --to-version must be the store's active version.
    const wrongTo = cli(dir, ['kek', 'rotate', '--to-version', '2']);
    expect(wrongTo.status).toBe(1);
    expect(codeOf(wrongTo)).toBe('POLICY_VIOLATION');

    const moved = cliJson(dir, ['kek', 'rotate', '--from-version', '2', '--to-version', '3']);
    expect(moved).toMatchObject({ ok: true, rewrapped: 2, fromVersion: '2', readiness: { ready: true, forced: false } });
    expect(cliJson(dir, ['audit', 'list', '--event', 'kek.rotate']).entries.at(-1).details).toMatchObject({ readiness: 'ready', from: '2', to: '3' });
    const versions = (cliJson(dir, ['status']).store.kekVersions as Json[]).map((v): unknown[] => [v.version as unknown, (v.keys.active as number) + (v.keys.retired as number)]);
    expect(versions).toEqual([
      ['1', 0],
      ['2', 0],
      ['3', 3],
    ]);
  });

  it('hostile and conflicting options: one coded line, exit 2', () => {
    for (const [args, says] of [
      [['kek', 'verify', '--target', 'x y'], '--target must be a KEK version'],
      [['kek', 'verify', '--target', '\u001b[2J'], '--target must be a KEK version'],
      [['kek', 'verify', '--target', '2', '--kek-version', '2'], '--target and --kek-version are different checks'],
      [['kek', 'rotate', '--from-version', ''], '--from-version must be a KEK version'],
      [['kek', 'rotate', '--to-version', '3\n4'], '--to-version must be a KEK version'],
    ] as const) {
      const r = cli(dir, [...args]);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr.split('\n')[0]).toMatch(/^keyfold: .*\[USAGE\]$/);
      expect(r.stderr).toContain(says);
      expect(r.stderr).not.toContain('\u001b[2J');
    }
  });
});
