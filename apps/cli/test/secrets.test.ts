/**
 * `keyfold secrets ...`: encrypted config files through the built CLI, with the env provider (no passphrase).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baseEnv, BIN, keyfold, makeTempDir, removeDir, type RunOptions } from './helpers.js';

let work: string;
let editTmp: string;
const KEK = { KEYFOLD_KEK_V1: 'd4'.repeat(32) };
const run = (args: string[], options: RunOptions = {}) =>
  keyfold(args, { cwd: work, ...options, env: { ...KEK, KEYFOLD_DIR: join(work, 'kf'), ...options.env } });
const read = (name: string): string => readFileSync(join(work, name), 'utf8');

const DOTENV = '# database\nDB_PASSWORD=hunter2\nexport API_TOKEN="tok en\\n2"\nPORT=5432 # port\n';
const YAML = 'services:\n  db:\n    # the password\n    password: s3cret   # keep\n    port: 5432\n  list: [a, "b"]\n';

function encryptInPlace(name: string, content: string): string {
  writeFileSync(join(work, name), content);
  const r = run(['secrets', 'encrypt', name, '--in-place']);
  expect(r.status, r.stderr).toBe(0);
  return read(name);
}

beforeAll(() => {
  work = makeTempDir();
  editTmp = join(work, 'tmp');
  mkdirSync(editTmp);
  const r = keyfold(['init', '--provider', 'env', '--dir', join(work, 'kf')], { cwd: work, env: KEK });
  expect(r.status, r.stderr).toBe(0);
  writeFileSync(join(work, 'editor.mjs'), [
    "import { readFileSync, writeFileSync } from 'node:fs';",
    'const f = process.argv[2];',
    "writeFileSync(f, readFileSync(f, 'utf8').replace('hunter2', process.env.NEW_VALUE ?? 'hunter3'));",
    'process.exit(Number(process.env.EDITOR_STATUS ?? 0));',
  ].join('\n'));
});
afterAll(() => removeDir(work));

describe('keyfold secrets', () => {
  it('encrypt/decrypt round trip for .env: stdout by default, only values encrypted, byte-exact decryption', () => {
    writeFileSync(join(work, 'a.env'), DOTENV);
    const e = run(['secrets', 'encrypt', 'a.env']);
    expect(e.status, e.stderr).toBe(0);
    expect(read('a.env')).toBe(DOTENV); // stdout only: the file is untouched
    expect(e.out).toContain('# database\nDB_PASSWORD=ENC[kf1,');
    expect(e.out).not.toContain('hunter2');
    const sealed = encryptInPlace('a.env', DOTENV);
    expect(sealed).toContain('KEYFOLD_SECRETS_MAC=');
    const d = run(['secrets', 'decrypt', 'a.env']);
    expect(d.status, d.stderr).toBe(0);
    expect(d.out).toBe(DOTENV);
    expect(run(['secrets', 'decrypt', 'a.env', '--extract', 'API_TOKEN']).out).toBe('tok en\n2\n');
    expect(read('a.env')).toBe(sealed);
  });

  it('encrypt/decrypt round trip for YAML keeps comments and layout', () => {
    const sealed = encryptInPlace('c.yaml', YAML);
    expect(sealed).toContain('# the password\n    password: "ENC[kf1,');
    expect(sealed).toContain('"   # keep\n');
    expect(sealed).not.toContain('s3cret');
    expect(run(['secrets', 'decrypt', 'c.yaml']).out).toBe(YAML);
    const inPlace = run(['secrets', 'decrypt', 'c.yaml', '--in-place']);
    expect(inPlace.status, inPlace.stderr).toBe(0);
    expect(read('c.yaml')).toBe(YAML);
  });

  it('a tampered value or MAC exits 3 and leaves the file untouched; a wrong key exits 3', () => {
    const sealed = encryptInPlace('t.env', DOTENV);
    const tampered = sealed.replace(/DB_PASSWORD=ENC\[kf1,(.)/, (_, c: string) => `DB_PASSWORD=ENC[kf1,${c === 'A' ? 'B' : 'A'}`);
    writeFileSync(join(work, 't.env'), tampered);
    for (const args of [['secrets', 'decrypt', 't.env'], ['secrets', 'decrypt', 't.env', '--in-place'], ['secrets', 'rotate', 't.env'],
      ['secrets', 'set', 't.env', 'X', 'y']]) {
      const r = run(args);
      expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(3);
      expect(r.stderr).toMatch(/\[(DECRYPT_FAILED|INTEGRITY_FAILED)\]/);
      expect(r.out).not.toContain('hunter2');
      expect(read('t.env')).toBe(tampered);
    }
    writeFileSync(join(work, 't.env'), sealed.replace(/KEYFOLD_SECRETS_MAC=(.)/, (_, c: string) => `KEYFOLD_SECRETS_MAC=${c === 'A' ? 'B' : 'A'}`));
    expect(run(['secrets', 'decrypt', 't.env']).status).toBe(3);
    writeFileSync(join(work, 't.env'), sealed);
    const wrongKey = run(['secrets', 'decrypt', 't.env'], { env: { KEYFOLD_KEK_V1: 'e5'.repeat(32) } });
    expect(wrongKey.status).toBe(3);
    expect(read('t.env')).toBe(sealed);
  });

  it('exec: the child sees the values, the parent environment does not; --pristine passes only secrets and PATH', () => {
    encryptInPlace('x.env', DOTENV);
    const script = 'console.log(JSON.stringify({ db: process.env.DB_PASSWORD, home: process.env.HOME ?? null, keys: Object.keys(process.env) }))';
    const r = run(['secrets', 'exec', 'x.env', '--', process.execPath, '-e', script], { env: { HOME: '/home/test' } });
    expect(r.status, r.stderr).toBe(0);
    const child = JSON.parse(r.out) as { db: string; home: string | null; keys: string[] };
    expect(child.db).toBe('hunter2');
    expect(child.home).toBe('/home/test');
    expect(process.env.DB_PASSWORD).toBeUndefined();
    const p = run(['secrets', 'exec', 'x.env', '--pristine', '--', process.execPath, '-e', script], { env: { HOME: '/home/test' } });
    expect(p.status, p.stderr).toBe(0);
    const pristine = JSON.parse(p.out) as { db: string; home: string | null; keys: string[] };
    expect(pristine.db).toBe('hunter2');
    expect(pristine.home).toBeNull();
    expect(pristine.keys.sort()).toEqual(['API_TOKEN', 'DB_PASSWORD', 'PATH', 'PORT']);
    expect(run(['secrets', 'exec', 'x.env', '--', process.execPath, '-e', 'process.exit(7)']).status).toBe(7);
  });

  it('edit re-encrypts what the editor wrote, keeping unchanged ciphertexts, and leaves no plaintext behind', () => {
    const before = encryptInPlace('e.env', DOTENV);
    const env = { EDITOR: `${process.execPath} ${join(work, 'editor.mjs')}`, TMPDIR: editTmp };
    const r = run(['secrets', 'edit', 'e.env'], { env });
    expect(r.status, r.stderr).toBe(0);
    const after = read('e.env');
    expect(after).not.toBe(before);
    expect(after).not.toContain('hunter3');
    const line = (text: string, name: string): string | undefined => text.split('\n').find((l) => l.includes(name));
    expect(line(after, 'API_TOKEN')).toBe(line(before, 'API_TOKEN'));
    expect(line(after, 'DB_PASSWORD')).not.toBe(line(before, 'DB_PASSWORD'));
    expect(run(['secrets', 'decrypt', 'e.env']).out).toBe(DOTENV.replace('hunter2', 'hunter3'));
    expect(readdirSync(editTmp)).toEqual([]);
  });

  it('edit: an editor exiting non-zero or an invalid result leaves the file untouched and no temp file', () => {
    writeFileSync(join(work, 'editor-fail.json'), '{"db": "hunter2"}\n');
    const before = encryptInPlace('f.json', '{"db": "hunter2"}\n');
    const editor = `${process.execPath} ${join(work, 'editor.mjs')}`;
    const failed = run(['secrets', 'edit', 'f.json'], { env: { EDITOR: editor, EDITOR_STATUS: '1', TMPDIR: editTmp } });
    expect(failed.status).toBe(1);
    expect(failed.stderr).toContain('[EDIT_FAILED]');
    expect(read('f.json')).toBe(before);
    expect(readdirSync(editTmp)).toEqual([]);
    const invalid = run(['secrets', 'edit', 'f.json'], { env: { EDITOR: editor, NEW_VALUE: 'x", oops', TMPDIR: editTmp } });
    expect(invalid.status).toBe(1);
    expect(invalid.stderr).toContain('[EDIT_FAILED]');
    expect(invalid.stderr).not.toContain('oops');
    expect(read('f.json')).toBe(before);
    expect(readdirSync(editTmp)).toEqual([]);
  });

  it('edit: SIGTERM while the editor runs wipes the temporary directory and leaves the file untouched', async () => {
    const before = encryptInPlace('g.env', DOTENV);
    writeFileSync(join(work, 'slow-editor.mjs'), "setTimeout(() => undefined, 3000);\n");
    const child = spawn(process.execPath, [BIN, 'secrets', 'edit', 'g.env'], {
      cwd: work,
      env: baseEnv({ ...KEK, KEYFOLD_DIR: join(work, 'kf'), EDITOR: `${process.execPath} ${join(work, 'slow-editor.mjs')}`, TMPDIR: editTmp }),
      stdio: 'ignore',
    });
    const deadline = Date.now() + 10_000;
    const started = (): boolean => readdirSync(editTmp).some((d) => existsSync(join(editTmp, d, 'g.env')));
    while (!started() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(started()).toBe(true);
    await new Promise((r) => setTimeout(r, 200)); // let the editor start
    const status = await new Promise<number | null>((resolvePromise) => {
      child.on('close', (code) => resolvePromise(code));
      child.kill('SIGTERM');
    });
    expect(status).toBe(143);
    expect(readdirSync(editTmp)).toEqual([]);
    expect(read('g.env')).toBe(before);
  });

  it('set (argument, --stdin, --from-file) and unset', () => {
    encryptInPlace('s.env', DOTENV);
    expect(run(['secrets', 'set', 's.env', 'DB_PASSWORD', 'new pass$']).status).toBe(0);
    expect(run(['secrets', 'set', 's.env', 'FROM_STDIN', '--stdin'], { input: 'piped\n' }).status).toBe(0);
    writeFileSync(join(work, 'value.txt'), 'from-file');
    expect(run(['secrets', 'set', 's.env', 'FROM_FILE', '--from-file', 'value.txt']).status).toBe(0);
    expect(run(['secrets', 'unset', 's.env', 'PORT']).status).toBe(0);
    const sealed = read('s.env');
    expect(sealed).not.toMatch(/new pass|piped|from-file/);
    expect(run(['secrets', 'decrypt', 's.env']).out).toBe(
      '# database\nDB_PASSWORD="new pass\\$"\nexport API_TOKEN="tok en\\n2"\nFROM_STDIN=piped\nFROM_FILE=from-file\n',
    );
    expect(run(['secrets', 'unset', 's.env', 'MISSING']).status).toBe(1);
    expect(read('s.env')).toBe(sealed);
  });

  it('set and unset on YAML keep comments and the other ciphertexts', () => {
    const sealed = encryptInPlace('sy.yaml', YAML);
    const portCipher = /port: ("ENC\[[^\]]+\]")/.exec(sealed)?.[1];
    expect(portCipher).toBeDefined();
    const s = run(['secrets', 'set', 'sy.yaml', 'services.db.password', '--stdin'], { input: 'new: pass\n' });
    expect(s.status, s.stderr).toBe(0);
    expect(run(['secrets', 'set', 'sy.yaml', 'services.cache.url', 'redis://c']).status).toBe(0);
    expect(run(['secrets', 'unset', 'sy.yaml', 'services.list']).status).toBe(0);
    const after = read('sy.yaml');
    expect(after).not.toMatch(/new: pass|redis:\/\/c/);
    expect(after).toContain('# the password');
    expect(after).toContain(`port: ${portCipher as string}`); // unchanged value, same ciphertext
    expect(run(['secrets', 'decrypt', 'sy.yaml']).out).toBe(
      'services:\n  db:\n    # the password\n    password: "new: pass" # keep\n    port: 5432\n  cache:\n    url: redis://c\n',
    );
    expect(run(['secrets', 'unset', 'sy.yaml', 'services.nope']).status).toBe(1);
    expect(run(['secrets', 'set', 'sy.yaml', 'services.db.port.x', 'v']).status).toBe(1);
    expect(read('sy.yaml')).toBe(after);
  });

  it('set and unset on TOML edit in place; changes inside arrays are refused', () => {
    const TOML = '# top\ntitle = "app"\n\n[db]\n# the password\npassword = "s3cret" # keep\nport = 5432\n\n[[srv]]\nports = [1, 2]\n';
    const sealed = encryptInPlace('st.toml', TOML);
    const titleCipher = /title = ("ENC\[[^\]]+\]")/.exec(sealed)?.[1];
    expect(titleCipher).toBeDefined();
    const s = run(['secrets', 'set', 'st.toml', 'db.password', 'new "pass"']);
    expect(s.status, s.stderr).toBe(0);
    expect(run(['secrets', 'set', 'st.toml', 'db.user', 'admin']).status).toBe(0);
    expect(run(['secrets', 'set', 'st.toml', 'cache.url', 'redis://c']).status).toBe(0);
    expect(run(['secrets', 'unset', 'st.toml', 'db.port']).status).toBe(0);
    const after = read('st.toml');
    expect(after).not.toMatch(/new "pass"|admin|redis:\/\/c/);
    expect(after).toContain(`title = ${titleCipher as string}`);
    expect(run(['secrets', 'decrypt', 'st.toml']).out).toBe(
      '# top\ntitle = "app"\n\n[db]\n# the password\npassword = "new \\"pass\\"" # keep\nuser = "admin"\n\n[[srv]]\nports = [1, 2]\n\n[cache]\nurl = "redis://c"\n',
    );
    const refused = run(['secrets', 'unset', 'st.toml', 'srv.0.ports.1']);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain('UNSUPPORTED');
    expect(run(['secrets', 'unset', 'st.toml', 'db.nope']).status).toBe(1);
    expect(read('st.toml')).toBe(after);
  });

  it('rotate changes every ciphertext; status --json lists values and providers without key access', () => {
    const before = encryptInPlace('r.env', DOTENV);
    const r = run(['secrets', 'rotate', 'r.env']);
    expect(r.status, r.stderr).toBe(0);
    const after = read('r.env');
    const enc = (text: string): string[] => text.match(/ENC\[[^\]]+\]/g) ?? [];
    expect(enc(after)).toHaveLength(3);
    for (const c of enc(after)) expect(enc(before)).not.toContain(c);
    expect(run(['secrets', 'decrypt', 'r.env']).out).toBe(DOTENV);
    // status needs no key: run it without the KEK variable and without a configuration.
    const s = keyfold(['secrets', 'status', 'r.env', '--json'], { cwd: work });
    expect(s.status, s.stderr).toBe(0);
    const info = JSON.parse(s.out) as { encrypted: string[]; plaintext: string[]; wrappedBy: { kind: string }[] };
    expect(info.encrypted).toEqual(['DB_PASSWORD', 'API_TOKEN', 'PORT']);
    expect(info.plaintext).toEqual([]);
    expect(info.wrappedBy.map((k) => k.kind)).toEqual(['env']);
    expect(s.out).not.toContain('hunter2');
  });

  it('updatekeys adds the provider of another configuration; each alone then opens the file', () => {
    const other = { KEYFOLD_OTHER_V1: 'f6'.repeat(32) };
    expect(keyfold(['init', '--provider', 'env', '--prefix', 'KEYFOLD_OTHER_V', '--dir', join(work, 'kf2')], { cwd: work, env: other }).status).toBe(0);
    encryptInPlace('u.env', DOTENV);
    const r = run(['secrets', 'updatekeys', 'u.env', '--add-provider-dir', 'kf2', '--json'], { env: other });
    expect(r.status, r.stderr).toBe(0);
    expect((JSON.parse(r.out) as { wrappedBy: unknown[] }).wrappedBy).toHaveLength(2);
    expect(run(['secrets', 'decrypt', 'u.env']).out).toBe(DOTENV);
    const second = keyfold(['secrets', 'decrypt', 'u.env', '--dir', 'kf2'], { cwd: work, env: other });
    expect(second.status, second.stderr).toBe(0);
    expect(second.out).toBe(DOTENV);
  });

  it('usage errors: unknown format, missing command for exec', () => {
    writeFileSync(join(work, 'x.txt'), 'A=1\n');
    expect(run(['secrets', 'encrypt', 'x.txt']).status).toBe(2);
    expect(run(['secrets', 'exec', 'x.env']).status).toBe(2);
    expect(existsSync(join(work, 'x.txt'))).toBe(true);
  });
});
