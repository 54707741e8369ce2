/**
 * `keyfold rewrap` on files, through the built binary: a directory of mixed envelopes (binary and armored, under
 * KEK v1 and v2, a tenant envelope, a file that is not an envelope, a tampered envelope, a nested directory, symbolic
 * links) checked, re-wrapped and checked again; bodies byte-for-byte unchanged, every file opens with `keyfold
 * decrypt`, permission bits kept, no temporary file left; a read-only file or directory (run as the unprivileged
 * user `nobody`, since root ignores modes) gives a coded error and is left untouched; the audit entries and the
 * warning `kek retire` prints from them.
 *
 * The installation uses the env provider: version 2 becomes the key store's active version when `KEYFOLD_KEK_V2` is
 * added to the environment and `keyfold kek activate --kek-version 2` is run.
 */
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dearmor, inspectEnvelope } from '@keyfold/envelope-core';
import { BIN, baseEnv, keyfold, makeTempDir, removeDir, type RunResult } from './helpers.js';
import { envKeks } from './seed.js';

type Json = ReturnType<typeof JSON.parse>;

const keks = envKeks();
const V1 = { KEYFOLD_KEK_V1: keks.KEYFOLD_KEK_V1 };
const V12 = { ...keks };

let work: string;

function cli(dir: string, args: string[], env: Record<string, string>, input?: string): RunResult {
  return keyfold([...args, '--dir', dir], { env, ...(input === undefined ? {} : { input }) });
}

function ok(r: RunResult): RunResult {
  expect(r.status, r.stderr + r.out).toBe(0);
  return r;
}

/** Every file under `root` (not following links), relative path -> bytes. */
function snapshot(root: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) out.set(relative(root, p), readFileSync(p));
      else if (e.isSymbolicLink()) out.set(relative(root, p), Buffer.from(`-> ${readlinkSync(p)}`));
    }
  };
  walk(root);
  return out;
}

/** The envelope's bytes after its header (armor decoded first). */
function bodyOf(file: Buffer): Buffer {
  const text = file.toString('latin1').trim();
  const bytes = text.startsWith('kf1.') ? dearmor(text) : new Uint8Array(file);
  return Buffer.from(bytes.subarray(inspectEnvelope(bytes).headerLength));
}

function versionOf(file: Buffer): string[] {
  const text = file.toString('latin1').trim();
  const info = inspectEnvelope(text.startsWith('kf1.') ? text : new Uint8Array(file));
  return info.wrappedKeys.map((w) => `${w.kind}@${w.keyVersion}`);
}

function outcomes(json: Json): Record<string, { status: string; code?: string }> {
  return Object.fromEntries((json.files as { path: string; status: string; code?: string }[]).map((f) => [f.path, f]));
}

describe('keyfold rewrap: a directory of mixed envelopes', () => {
  let dir: string;
  let data: string;
  const plain: Record<string, Buffer> = {};

  beforeAll(() => {
    work = makeTempDir();
    dir = join(work, 'kf');
    data = join(work, 'data');
    mkdirSync(join(data, 'nested', 'deeper'), { recursive: true });
    ok(cli(dir, ['init', '--provider', 'env'], V1));
    ok(cli(dir, ['tenant', 'create', '--tenant', 'acme'], V1));
    const seal = (name: string, env: Record<string, string>, extra: string[] = [], size = 64): void => {
      plain[name] = randomBytes(size);
      ok(cli(dir, ['encrypt', '--out', join(data, name), ...extra], env, plain[name].toString('base64')));
      plain[name] = Buffer.from(plain[name].toString('base64'));
    };
    // Under v1: binary (several frames, larger than the header limit), armored, nested, a tenant's, a tampered one.
    seal('big.kf', V1, [], 300_000);
    seal('note.txt', V1, ['--armor', '--context', 'app=notes']);
    seal('nested/inner.kf', V1);
    seal('nested/deeper/armored.kf', V1, ['--armor']);
    seal('tenant.kf', V1, ['--tenant', 'acme']);
    seal('tampered.kf', V1);
    const t = readFileSync(join(data, 'tampered.kf'));
    t[t.length - 20] = (t[t.length - 20] as number) ^ 0x01;
    writeFileSync(join(data, 'tampered.kf'), t);
    // Under v1, outside the directory: for the named-file, read-only and --stdin-list tests.
    ok(cli(dir, ['encrypt', '--out', join(work, 'read-only.kf')], V1, 'read only'));
    ok(cli(dir, ['encrypt', '--out', join(work, 'list-a.kf')], V1, 'a'));
    ok(cli(dir, ['encrypt', '--out', join(work, 'list-b.kf'), '--armor'], V1, 'b'));
    seal('../outside.kf', V1);
    // Under v2, once it is the key store's active version.
    ok(cli(dir, ['kek', 'activate', '--kek-version', '2'], V12));
    seal('new.kf', V12);
    seal('nested/new.txt', V12, ['--armor']);
    writeFileSync(join(data, 'readme.md'), '# not an envelope\n');
    writeFileSync(join(data, 'nested', 'empty'), '');
    chmodSync(join(data, 'big.kf'), 0o664); // group write: a umask of 022 would drop it
    chmodSync(join(data, 'nested', 'inner.kf'), 0o600);
    // A link inside the tree to an envelope outside it: a walk must not follow it.
    symlinkSync(join(work, 'outside.kf'), join(data, 'link-out.kf'));
  });
  afterAll(() => removeDir(work));

  it('kek retire before any check says none was ever recorded', () => {
    const r = cli(dir, ['kek', 'retire', '--kek-version', '1'], V12);
    expect(r.stderr).toContain("no 'keyfold rewrap' or 'keyfold rewrap --check' run was ever recorded");
    // Refused as before: the tenant key is still wrapped under version 1.
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('[POLICY_VIOLATION]');
  });

  it('--check lists what is not on the active version, exit 1, and writes nothing', () => {
    const before = snapshot(data);
    const r = cli(dir, ['rewrap', '--check', '--recursive', data, '--json'], V12);
    expect(r.status, r.stderr).toBe(1);
    const json = JSON.parse(r.out);
    const o = outcomes(json);
    const p = (name: string): string => join(data, name);
    expect(o[p('big.kf')]?.status).toBe('stale');
    expect(o[p('note.txt')]?.status).toBe('stale');
    expect(o[p('nested/inner.kf')]?.status).toBe('stale');
    expect(o[p('nested/deeper/armored.kf')]?.status).toBe('stale');
    expect(o[p('tampered.kf')]?.status).toBe('stale');
    expect(o[p('new.kf')]?.status).toBe('current');
    expect(o[p('nested/new.txt')]?.status).toBe('current');
    expect(o[p('tenant.kf')]?.status).toBe('tenant');
    expect(o[p('readme.md')]?.status).toBe('skipped');
    expect(o[p('nested/empty')]?.status).toBe('skipped');
    expect(o[p('link-out.kf')]?.status).toBe('skipped');
    expect(json.counts).toEqual({ rewrapped: 0, current: 2, stale: 5, tenant: 1, skipped: 3, failed: 0 });
    expect(json.target).toMatchObject({ kind: 'env', version: '2' });
    expect(snapshot(data)).toEqual(before);

    const text = cli(dir, ['rewrap', '--check', '-r', data], V12);
    expect(text.status).toBe(1);
    expect(text.out).toContain("5 envelope(s) are not on the active version: run 'keyfold rewrap' without --check");
    expect(text.out).toMatch(/tenant\s+\S*tenant\.kf\s+tenant key: rotate with 'keyfold tenant rotate'/);
  });

  it('kek retire warns with the counts of the latest check', () => {
    const r = cli(dir, ['kek', 'retire', '--kek-version', '1'], V12);
    expect(r.stderr).toContain('warning: 5 envelope(s) outside the key store were last seen under KEK version 1:');
    expect(r.stderr).toContain(`5 in files:${data} (check of `);
    expect(r.status).toBe(1);
  });

  it('re-wraps the stale ones in place: bodies, plaintexts and modes kept; the tampered one fails (exit 3) untouched', () => {
    const before = snapshot(data);
    const r = cli(dir, ['rewrap', '-r', data, '--json'], V12);
    expect(r.status, r.stderr).toBe(3);
    const json = JSON.parse(r.out);
    const o = outcomes(json);
    expect(o[join(data, 'tampered.kf')]).toMatchObject({ status: 'failed', code: 'DECRYPT_FAILED' });
    expect(json.counts).toEqual({ rewrapped: 4, current: 2, stale: 0, tenant: 1, skipped: 3, failed: 1 });
    const after = snapshot(data);
    for (const name of ['big.kf', 'note.txt', 'nested/inner.kf', 'nested/deeper/armored.kf']) {
      const a = after.get(name) as Buffer;
      const b = before.get(name) as Buffer;
      expect(o[join(data, name)]?.status, name).toBe('rewrapped');
      expect(versionOf(b), name).toEqual(['env@1']);
      expect(versionOf(a), name).toEqual(['env@2']);
      expect(a.equals(b), name).toBe(false);
      expect(bodyOf(a).equals(bodyOf(b)), name).toBe(true);
      // Opens with keyfold decrypt, to the plaintext sealed, with version 2 alone.
      const d = keyfold(['decrypt', '--dir', dir, '--in', join(data, name)], { env: { KEYFOLD_KEK_V2: keks.KEYFOLD_KEK_V2 } });
      expect(d.status, d.stderr).toBe(0);
      expect(d.stdout.equals(plain[name] as Buffer), name).toBe(true);
    }
    // Armor stays armor, with its trailing newline.
    expect((after.get('note.txt') as Buffer).toString('latin1')).toMatch(/^kf1\.[A-Za-z0-9_-]+\n$/);
    for (const name of ['tampered.kf', 'tenant.kf', 'new.kf', 'nested/new.txt', 'readme.md', 'nested/empty', 'link-out.kf']) {
      expect(after.get(name)?.equals(before.get(name) as Buffer), name).toBe(true);
    }
    expect(versionOf(readFileSync(join(work, 'outside.kf')))).toEqual(['env@1']);
    expect(lstatSync(join(data, 'link-out.kf')).isSymbolicLink()).toBe(true);
    expect(statSync(join(data, 'big.kf')).mode & 0o7777).toBe(0o664);
    expect(statSync(join(data, 'nested', 'inner.kf')).mode & 0o7777).toBe(0o600);
    expect([...after.keys()].filter((k) => k.includes('keyfold-tmp'))).toEqual([]);
  });

  it('a second run re-wraps nothing; --check afterwards lists only the tampered file', () => {
    const again = cli(dir, ['rewrap', '-r', data, '--json'], V12);
    expect(again.status).toBe(3);
    expect(JSON.parse(again.out).counts).toMatchObject({ rewrapped: 0, current: 6, failed: 1 });
    const check = cli(dir, ['rewrap', '--check', '-r', data, '--json'], V12);
    expect(check.status).toBe(1);
    const stale = (JSON.parse(check.out).files as { path: string; status: string }[]).filter((f) => f.status === 'stale').map((f) => f.path);
    expect(stale).toEqual([join(data, 'tampered.kf')]);
  });

  it('records each run in the audit log, and kek retire warns with the latest counts', () => {
    const checks = JSON.parse(ok(cli(dir, ['audit', 'list', '--event', 'envelopes.check', '--json'], V12)).out);
    const rewraps = JSON.parse(ok(cli(dir, ['audit', 'list', '--event', 'envelopes.rewrap', '--json'], V12)).out);
    const entries = (checks.entries ?? checks) as Json[];
    const last = entries[entries.length - 1];
    expect(last.subject).toBe(`files:${data}`);
    expect(last.details.versions).toMatchObject({ [`env:KEYFOLD_KEK@1`]: 1, [`env:KEYFOLD_KEK@2`]: 6 });
    expect(JSON.stringify(last.details)).not.toContain(keks.KEYFOLD_KEK_V1);
    expect(((rewraps.entries ?? rewraps) as Json[]).length).toBe(2);
    expect(ok(cli(dir, ['audit', 'verify'], V12)).status).toBe(0);

    // Once the stored keys are moved, retire succeeds and still warns about the one envelope left on version 1.
    ok(cli(dir, ['kek', 'rotate'], V12));
    const r = cli(dir, ['kek', 'retire', '--kek-version', '1', '--json'], V12);
    expect(r.status, r.stderr + r.out).toBe(0);
    expect(JSON.parse(r.out).envelopes).toMatchObject({ recorded: true, total: 1 });
    const t = cli(dir, ['kek', 'retire', '--kek-version', '1'], V12);
    expect(t.stderr).toContain('warning: 1 envelope(s) outside the key store were last seen under KEK version 1:');
  });

  it('named files: a non-envelope is a failure (exit 3), a directory needs --recursive (exit 2), a named link is followed', () => {
    const notEnvelope = cli(dir, ['rewrap', join(data, 'readme.md'), join(data, 'new.kf')], V12);
    expect(notEnvelope.status).toBe(3);
    expect(notEnvelope.out).toMatch(/failed\s+\S*readme\.md\s+FORMAT_INVALID/);
    expect(notEnvelope.out).toMatch(/current\s+\S*new\.kf/);

    const before = snapshot(data);
    const d = cli(dir, ['rewrap', data], V12);
    expect(d.status).toBe(2);
    expect(d.stderr).toContain('is a directory: add --recursive');
    expect(snapshot(data)).toEqual(before);

    // A read-only file (no write bit) is refused even for root, and left as it was.
    const ro = join(work, 'read-only.kf');
    chmodSync(ro, 0o444);
    const roBefore = readFileSync(ro);
    const refused = cli(dir, ['rewrap', ro, '--json'], V12);
    expect(refused.status).toBe(1);
    expect(JSON.parse(refused.out).files[0]).toMatchObject({ status: 'failed', code: 'IO_ERROR', reason: expect.stringContaining('read-only (mode 0444)') });
    expect(readFileSync(ro).equals(roBefore)).toBe(true);

    const missing = cli(dir, ['rewrap', join(data, 'nope.kf')], V12);
    expect(missing.status).toBe(1);
    expect(missing.out).toMatch(/failed\s+\S*nope\.kf\s+IO_ERROR/);

    // The link is followed to its file, which is re-wrapped; the link stays a link.
    const link = cli(dir, ['rewrap', join(data, 'link-out.kf'), '--json'], V12);
    expect(link.status, link.stderr).toBe(0);
    expect(lstatSync(join(data, 'link-out.kf')).isSymbolicLink()).toBe(true);
    expect(versionOf(readFileSync(join(work, 'outside.kf')))).toEqual(['env@2']);
  });

  it('--stdin-list reads the paths from stdin, one a line', () => {
    const a = join(work, 'list-a.kf');
    const b = join(work, 'list-b.kf');
    const r = cli(dir, ['rewrap', '--stdin-list', '--json'], V12, `${a}\n${b}\n`);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.out).counts).toMatchObject({ rewrapped: 2 });
    expect(versionOf(readFileSync(a))).toEqual(['env@2']);
    expect(versionOf(readFileSync(b))).toEqual(['env@2']);
    expect(cli(dir, ['rewrap', '--stdin-list', a], V12, '').status).toBe(2);
  });
});

describe('keyfold rewrap: files it may not write (run as nobody)', () => {
  const NOBODY = 65534;
  let root: string;
  let dir: string;

  /** Runs the built binary as nobody. */
  function asNobody(args: string[], env: Record<string, string>): RunResult {
    const r = spawnSync(process.execPath, [BIN, ...args, '--dir', dir], { env: baseEnv({ ...env, HOME: root }), uid: NOBODY, gid: NOBODY, cwd: root, input: '' });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr.toString('utf8'), out: r.stdout.toString('utf8') };
  }

  beforeAll(() => {
    root = makeTempDir('keyfold-rewrap-nobody-');
    chownSync(root, NOBODY, NOBODY);
    dir = join(root, 'kf');
    expect(asNobody(['init', '--provider', 'env'], V1).status).toBe(0);
    for (const d of ['ro-file', 'ro-dir']) {
      mkdirSync(join(root, d));
      chownSync(join(root, d), NOBODY, NOBODY);
      const f = join(root, d, 'x.kf');
      const r = asNobody(['encrypt', '--out', f], { ...V1 });
      expect(r.status, r.stderr).toBe(0);
    }
    // Version 2 becomes the active version: the files above are stale.
    expect(asNobody(['kek', 'activate', '--kek-version', '2'], V12).status).toBe(0);
    // Writable by its owner, root, only: nobody may read it but not write it.
    chownSync(join(root, 'ro-file', 'x.kf'), 0, 0);
    chmodSync(join(root, 'ro-file', 'x.kf'), 0o644);
    chmodSync(join(root, 'ro-dir'), 0o555);
  });
  afterAll(() => {
    chmodSync(join(root, 'ro-dir'), 0o755);
    removeDir(root);
  });

  it('a file and a directory it may not write: IO_ERROR (exit 1), left byte-for-byte as they were', () => {
    for (const d of ['ro-file', 'ro-dir']) {
      const f = join(root, d, 'x.kf');
      const before = readFileSync(f);
      const r = asNobody(['rewrap', f, '--json'], V12);
      expect(r.status, d + r.stderr + r.out).toBe(1);
      const file = JSON.parse(r.out).files[0];
      expect(file).toMatchObject({ status: 'failed', code: 'IO_ERROR' });
      expect(file.reason).toContain('permission denied');
      expect(readFileSync(f).equals(before)).toBe(true);
      expect(readdirSync(join(root, d))).toEqual(['x.kf']);
    }
    // --check needs no write access.
    expect(asNobody(['rewrap', '--check', join(root, 'ro-dir', 'x.kf')], V12).status).toBe(1);
  });
});
