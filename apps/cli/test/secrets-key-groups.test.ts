/**
 * `keyfold secrets` with k-of-n key groups, through the built CLI: four env-provider configurations (kf-a .. kf-d,
 * each its own KEK variable), so "a group is available" means "its KEK variable is set for this run".
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyfold, makeTempDir, PASSPHRASE, removeDir, type RunOptions, type RunResult } from './helpers.js';

let work: string;
const KEKS = {
  KEYFOLD_KEK_V1: 'd4'.repeat(32), // the configured installation (kf): in no group
  KEYFOLD_A_V1: 'a1'.repeat(32),
  KEYFOLD_B_V1: 'b2'.repeat(32),
  KEYFOLD_C_V1: 'c3'.repeat(32),
  KEYFOLD_D_V1: 'e4'.repeat(32),
} as const;
type Group = 'A' | 'B' | 'C' | 'D';
/** The environment with only the KEKs of `groups` (plus the configured installation's). */
const only = (...groups: Group[]): Record<string, string> => {
  const env: Record<string, string> = { KEYFOLD_KEK_V1: KEKS.KEYFOLD_KEK_V1 };
  for (const g of groups) env[`KEYFOLD_${g}_V1`] = KEKS[`KEYFOLD_${g}_V1`];
  return env;
};
const ALL = only('A', 'B', 'C', 'D');
const ADD_ALL = ['--add-provider-dir', 'kf-a', '--add-provider-dir', 'kf-b', '--add-provider-dir', 'kf-c', '--add-provider-dir', 'kf-d'];

/** Runs keyfold in `work` with exactly the KEK variables in `env`. */
const run = (args: string[], env: Record<string, string>, options: RunOptions = {}): RunResult => {
  const r = keyfold(args, { cwd: work, ...options, env: { KEYFOLD_DIR: join(work, 'kf'), ...env } });
  for (const hex of Object.values(KEKS)) {
    expect(r.out).not.toContain(hex);
    expect(r.stderr).not.toContain(hex);
  }
  return r;
};
const read = (name: string): string => readFileSync(join(work, name), 'utf8');

const DOTENV = '# database\nDB_PASSWORD=hunter2\nAPI_TOKEN=tok\nPORT=5432 # port\n';
const YAML = 'db:\n  password: s3cret # keep\n  port: 5432\n';
const enc = (text: string): string[] => text.match(/ENC\[[^\]]+\]/g) ?? [];

interface Status {
  wrappedBy: { kind: string; keyId: string }[];
  keyGroups?: { threshold: number; groups: { kind: string; keyId: string }[][] };
}
/** `secrets status --json` with no KEK and no configuration at all: metadata only. */
function status(name: string): Status {
  const r = keyfold(['secrets', 'status', name, '--json'], { cwd: work });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.out) as Status;
}
const groupIds = (s: Status): string[][] | undefined => s.keyGroups?.groups.map((g) => g.map((k) => k.keyId));

function encryptGroups(name: string, content: string, groups: string[][], threshold?: number): string {
  writeFileSync(join(work, name), content);
  const args = ['secrets', 'encrypt', name, '--in-place', ...groups.flatMap((g) => ['--key-group', g.join(',')])];
  const r = run(threshold === undefined ? args : [...args, '--shamir-threshold', String(threshold)], ALL);
  expect(r.status, r.stderr).toBe(0);
  return read(name);
}

beforeAll(() => {
  work = makeTempDir();
  const init = (dir: string, prefix: string): void => {
    const r = keyfold(['init', '--provider', 'env', '--prefix', prefix, '--dir', join(work, dir)], { cwd: work, env: { ...KEKS } });
    expect(r.status, r.stderr).toBe(0);
  };
  init('kf', 'KEYFOLD_KEK_V');
  for (const g of ['a', 'b', 'c', 'd']) init(`kf-${g}`, `KEYFOLD_${g.toUpperCase()}_V`);
  init('kf-a-again', 'KEYFOLD_A_V'); // another configuration of the same key as kf-a
});
afterAll(() => removeDir(work));

describe('keyfold secrets with key groups', () => {
  it('encrypt --key-group x3 --shamir-threshold 2: any two groups decrypt, one group is refused with THRESHOLD_NOT_MET', () => {
    const sealed = encryptGroups('g.env', DOTENV, [['kf-a'], ['kf-b'], ['kf-c']], 2);
    expect(sealed).toMatch(/^KEYFOLD_SECRETS_DATA_KEY=sss1~2~/m);
    expect(sealed).not.toContain('hunter2');
    expect(enc(sealed)).toHaveLength(3);
    expect(groupIds(status('g.env'))).toEqual([['KEYFOLD_A'], ['KEYFOLD_B'], ['KEYFOLD_C']]);
    expect(status('g.env').keyGroups?.threshold).toBe(2);

    for (const pair of [['A', 'B'], ['A', 'C'], ['B', 'C']] as Group[][]) {
      const r = run(['secrets', 'decrypt', 'g.env', ...ADD_ALL], only(...pair));
      expect(r.status, `${pair.join('+')}: ${r.stderr}`).toBe(0);
      expect(r.out).toBe(DOTENV);
    }
    const extract = run(['secrets', 'decrypt', 'g.env', '--extract', 'DB_PASSWORD', ...ADD_ALL], only('C', 'A'));
    expect(extract.status, extract.stderr).toBe(0);
    expect(extract.out).toBe('hunter2\n');
    const exec = run(['secrets', 'exec', 'g.env', ...ADD_ALL, '--', process.execPath, '-e', 'process.stdout.write(process.env.API_TOKEN ?? "")'], only('B', 'C'));
    expect(exec.status, exec.stderr).toBe(0);
    expect(exec.out).toBe('tok');

    for (const args of [['secrets', 'decrypt', 'g.env'], ['secrets', 'decrypt', 'g.env', '--in-place'], ['secrets', 'set', 'g.env', 'X', 'y']]) {
      const one = run([...args, ...ADD_ALL], only('B'));
      expect(one.status, `${args.join(' ')}: ${one.stderr}`).toBe(3);
      expect(one.stderr).toContain('[THRESHOLD_NOT_MET]');
      expect(one.stderr).toContain('needs 2 of its 3 key groups');
      expect(one.stderr).toContain('open 1 (group 2)');
      expect(one.stderr).toMatch(/kf-a: .*\[CONFIG_INVALID\]/);
      expect(one.out).toBe('');
      expect(read('g.env')).toBe(sealed);
    }
    const none = run(['secrets', 'decrypt', 'g.env', ...ADD_ALL], only());
    expect(none.status).toBe(3);
    expect(none.stderr).toContain('open 0 (none)');
    // Without being told where the other groups' configurations are, the configured provider alone opens nothing.
    const unnamed = run(['secrets', 'decrypt', 'g.env'], ALL);
    expect(unnamed.status).toBe(3);
    expect(unnamed.stderr).toContain('[THRESHOLD_NOT_MET]');
    expect(readdirSync(work).filter((f) => f.startsWith('g.env'))).toEqual(['g.env']);
  });

  it('a tampered share is still the one DECRYPT_FAILED, not THRESHOLD_NOT_MET', () => {
    const sealed = encryptGroups('t.env', DOTENV, [['kf-a'], ['kf-b'], ['kf-c']], 2);
    // Flip one character inside the first share (after "sss1~2~kf1."), keeping the metadata parseable.
    const tampered = sealed.replace(/(KEYFOLD_SECRETS_DATA_KEY=sss1~2~kf1\.[A-Za-z0-9_-]{40})(.)/, (_, head: string, c: string) => `${head}${c === 'A' ? 'B' : 'A'}`);
    expect(tampered).not.toBe(sealed);
    writeFileSync(join(work, 't.env'), tampered);
    // Groups 1 and 2 available: enough by the metadata, but share 1 does not open.
    const r = run(['secrets', 'decrypt', 't.env', ...ADD_ALL], only('A', 'B'));
    expect(r.status).toBe(3);
    expect(r.stderr).toContain('decryption failed [DECRYPT_FAILED]');
    expect(r.out).toBe('');
    // k of n: with all three groups, the two intact shares still open the file.
    const all = run(['secrets', 'decrypt', 't.env', ...ADD_ALL], ALL);
    expect(all.status, all.stderr).toBe(0);
    expect(all.out).toBe(DOTENV);
  });

  it('.keyfold.yaml key_groups/shamir_threshold: used by encrypt, found again by decrypt; flags override them', () => {
    mkdirSync(join(work, 'proj'));
    writeFileSync(join(work, 'proj', '.keyfold.yaml'), 'key_groups:\n  - [../kf-a]\n  - [../kf-b, ../kf-d]\n  - [../kf-c]\nshamir_threshold: 2\n');
    writeFileSync(join(work, 'proj', 's.yaml'), YAML);
    const e = run(['secrets', 'encrypt', 'proj/s.yaml', '--in-place', '--json'], ALL);
    expect(e.status, e.stderr).toBe(0);
    expect((JSON.parse(e.out) as Status).keyGroups?.threshold).toBe(2);
    const sealed = read('proj/s.yaml');
    expect(sealed).not.toContain('s3cret');
    const s = status('proj/s.yaml');
    expect(groupIds(s)).toEqual([['KEYFOLD_A'], ['KEYFOLD_B', 'KEYFOLD_D'], ['KEYFOLD_C']]);

    // No --add-provider-dir: the rules file names the groups' configurations.
    const two = run(['secrets', 'decrypt', 'proj/s.yaml'], only('D', 'C'));
    expect(two.status, two.stderr).toBe(0);
    expect(two.out).toBe(YAML);
    const one = run(['secrets', 'decrypt', 'proj/s.yaml'], only('B', 'D'));
    expect(one.status).toBe(3);
    expect(one.stderr).toContain('[THRESHOLD_NOT_MET]');
    expect(one.stderr).toContain('open 1 (group 2)');

    // set keeps the data key and its groups; the text status shows them.
    const set = run(['secrets', 'set', 'proj/s.yaml', 'db.user', 'admin'], only('A', 'C'));
    expect(set.status, set.stderr).toBe(0);
    expect(groupIds(status('proj/s.yaml'))).toEqual([['KEYFOLD_A'], ['KEYFOLD_B', 'KEYFOLD_D'], ['KEYFOLD_C']]);
    expect(run(['secrets', 'decrypt', 'proj/s.yaml'], only('A', 'B')).out).toBe(`${YAML}  user: admin\n`);
    const text = keyfold(['secrets', 'status', 'proj/s.yaml'], { cwd: work });
    expect(text.status, text.stderr).toBe(0);
    expect(text.out).toMatch(/key groups +any 2 of 3 open the file/);
    expect(text.out).toMatch(/group 2 +env:KEYFOLD_B#1, env:KEYFOLD_D#1/);

    // Flags override the rules file: groups (threshold then defaults to all of them), or the threshold alone.
    writeFileSync(join(work, 'proj', 'o.env'), DOTENV);
    const o = run(['secrets', 'encrypt', 'proj/o.env', '--in-place', '--key-group', 'kf-c', '--key-group', 'kf-d'], ALL);
    expect(o.status, o.stderr).toBe(0);
    expect(status('proj/o.env').keyGroups?.threshold).toBe(2);
    expect(groupIds(status('proj/o.env'))).toEqual([['KEYFOLD_C'], ['KEYFOLD_D']]);
    writeFileSync(join(work, 'proj', 't1.env'), DOTENV);
    const t1 = run(['secrets', 'encrypt', 'proj/t1.env', '--in-place', '--shamir-threshold', '1'], ALL);
    expect(t1.status, t1.stderr).toBe(0);
    expect(status('proj/t1.env').keyGroups?.threshold).toBe(1);
    expect(status('proj/t1.env').keyGroups?.groups).toHaveLength(3);
    const byC = run(['secrets', 'decrypt', 'proj/t1.env'], only('C'));
    expect(byC.status, byC.stderr).toBe(0);
    expect(byC.out).toBe(DOTENV);
  });

  it('bad key groups are refused with a coded error before anything is written', () => {
    writeFileSync(join(work, 'bad.env'), DOTENV);
    mkdirSync(join(work, 'badrules'));
    writeFileSync(join(work, 'badrules', 'x.env'), DOTENV);
    const before = readdirSync(work).sort();
    const cases: [string[], Record<string, string>, number, string, RegExp][] = [
      [['--key-group', 'kf-a', '--key-group', 'kf-b', '--shamir-threshold', '3'], ALL, 2, 'USAGE', /--shamir-threshold must be from 1 to 2/],
      [['--key-group', 'kf-a', '--key-group', 'kf-b', '--shamir-threshold', '0'], ALL, 2, 'USAGE', /--shamir-threshold must be from 1 to 2/],
      [['--key-group', 'kf-a', '--shamir-threshold=-1'], ALL, 2, 'USAGE', /--shamir-threshold must be a whole number/],
      [['--key-group', 'kf-a', '--shamir-threshold', 'two'], ALL, 2, 'USAGE', /--shamir-threshold must be a whole number/],
      [['--key-group', 'kf-a', '--key-group', ''], ALL, 2, 'USAGE', /--key-group #2 .* has an empty entry/],
      [['--key-group', 'kf-a,', '--key-group', 'kf-b'], ALL, 2, 'USAGE', /--key-group #1 .* has an empty entry/],
      [['--shamir-threshold', '1'], ALL, 2, 'USAGE', /--shamir-threshold needs key groups/],
      [['--key-group', 'kf-a', '--key-group', 'kf-b,kf-a'], ALL, 2, 'USAGE', /named in key group 1 and in key group 2/],
      [['--key-group', 'kf-a', '--key-group', 'kf-a-again'], ALL, 2, 'USAGE', /the same key \(env:KEYFOLD_A\)/],
      [['--key-group', 'kf-a', '--key-group', 'no-such-dir'], ALL, 1, 'NOT_INITIALIZED', /key group 2 \(.*no-such-dir\): no Keyfold configuration/],
      // Every provider of every group must open to seal: a group nobody can open would be a lost share.
      [['--key-group', 'kf-a', '--key-group', 'kf-b'], only('A'), 1, 'CONFIG_INVALID', /key group 2 \(.*kf-b\): no KEK found/],
    ];
    for (const [flags, env, exit, code, message] of cases) {
      for (const args of [['secrets', 'encrypt', 'bad.env', '--in-place', ...flags], ['secrets', 'encrypt', 'bad.env', ...flags]]) {
        const r = run(args, env);
        expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(exit);
        expect(r.stderr).toContain(`[${code}]`);
        expect(r.stderr).toMatch(message);
        expect(r.out).toBe('');
        expect(read('bad.env')).toBe(DOTENV);
      }
    }
    // The same mistakes in .keyfold.yaml: CONFIG_INVALID (exit 1).
    for (const [rules, message] of [
      ['key_groups:\n  - [../kf-a]\n  - [../kf-b]\nshamir_threshold: 3\n', /shamir_threshold must be a whole number from 1 to 2/],
      ['key_groups:\n  - [../kf-a]\n  - []\nshamir_threshold: 1\n', /key_groups\[1\] is empty/],
      ['key_groups:\n  - [../kf-a]\nshamir_threshold: 0\n', /shamir_threshold must be a whole number from 1 to 1/],
    ] as const) {
      writeFileSync(join(work, 'badrules', '.keyfold.yaml'), rules);
      const r = run(['secrets', 'encrypt', 'badrules/x.env', '--in-place'], ALL);
      expect(r.status, r.stderr).toBe(1);
      expect(r.stderr).toContain('[CONFIG_INVALID]');
      expect(r.stderr).toMatch(message);
      expect(read('badrules/x.env')).toBe(DOTENV);
    }
    writeFileSync(join(work, 'badrules', '.keyfold.yaml'), 'key_groups:\n  - [../kf-a]\n  - [../nowhere]\n');
    const unknown = run(['secrets', 'encrypt', 'badrules/x.env', '--in-place'], ALL);
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toContain('[NOT_INITIALIZED]');
    expect(read('badrules/x.env')).toBe(DOTENV);
    expect(readdirSync(join(work, 'badrules')).sort()).toEqual(['.keyfold.yaml', 'x.env']);
    expect(readdirSync(work).sort()).toEqual(before);

    // Key groups cannot be changed by re-encrypting (the data key is kept): that is what rotate is for.
    encryptGroups('again.env', DOTENV, [['kf-a'], ['kf-b']], 1);
    const sealed = read('again.env');
    const again = run(['secrets', 'encrypt', 'again.env', '--in-place', '--key-group', 'kf-c', ...ADD_ALL], ALL);
    expect(again.status).toBe(2);
    expect(again.stderr).toMatch(/already encrypted.*secrets rotate FILE --key-group/);
    expect(read('again.env')).toBe(sealed);
  });

  it('rotate --key-group changes the groups (new data key, every ciphertext new); old groups no longer open it', () => {
    const before = encryptGroups('r.env', DOTENV, [['kf-a'], ['kf-b'], ['kf-c']], 2);
    // A key-group file needs groups to rotate to: refused, untouched.
    const noGroups = run(['secrets', 'rotate', 'r.env', ...ADD_ALL], ALL);
    expect(noGroups.status).toBe(2);
    expect(noGroups.stderr).toContain('uses key groups (2 of 3)');
    expect(read('r.env')).toBe(before);
    // A new group whose provider cannot open: refused before anything is written.
    const unavailable = run(['secrets', 'rotate', 'r.env', '--key-group', 'kf-c,kf-d', '--key-group', 'kf-a', '--shamir-threshold', '1'], only('A', 'C'));
    expect(unavailable.status).toBe(1);
    expect(unavailable.stderr).toMatch(/key group 1 \(.*kf-d\): no KEK found.*\[CONFIG_INVALID\]/);
    expect(read('r.env')).toBe(before);

    // Opened with groups A and C (found among the --key-group directories), re-split 1 of 2 over [C, D] and [A].
    const r = run(['secrets', 'rotate', 'r.env', '--key-group', 'kf-c,kf-d', '--key-group', 'kf-a', '--shamir-threshold', '1', '--json'], only('A', 'C', 'D'));
    expect(r.status, r.stderr).toBe(0);
    expect((JSON.parse(r.out) as Status).keyGroups?.threshold).toBe(1);
    const after = read('r.env');
    expect(after).toMatch(/^KEYFOLD_SECRETS_DATA_KEY=sss1~1~/m);
    expect(enc(after)).toHaveLength(3);
    for (const c of enc(after)) expect(enc(before)).not.toContain(c);
    expect(groupIds(status('r.env'))).toEqual([['KEYFOLD_C', 'KEYFOLD_D'], ['KEYFOLD_A']]);
    const byD = run(['secrets', 'decrypt', 'r.env', '--add-provider-dir', 'kf-d'], only('D'));
    expect(byD.status, byD.stderr).toBe(0);
    expect(byD.out).toBe(DOTENV);
    const byB = run(['secrets', 'decrypt', 'r.env', '--add-provider-dir', 'kf-b'], only('B'));
    expect(byB.status).toBe(3);
    expect(byB.stderr).toContain('needs 1 of its 2 key groups');

    // A file with one data key rotates into key groups too.
    writeFileSync(join(work, 'p.env'), DOTENV);
    expect(run(['secrets', 'encrypt', 'p.env', '--in-place'], ALL).status).toBe(0);
    expect(status('p.env').keyGroups).toBeUndefined();
    const toGroups = run(['secrets', 'rotate', 'p.env', '--key-group', 'kf-a', '--key-group', 'kf-b'], ALL);
    expect(toGroups.status, toGroups.stderr).toBe(0);
    expect(toGroups.out).toContain('2 of 2 key groups');
    expect(groupIds(status('p.env'))).toEqual([['KEYFOLD_A'], ['KEYFOLD_B']]);
    expect(run(['secrets', 'decrypt', 'p.env', ...ADD_ALL], only('A', 'B')).out).toBe(DOTENV);
  });

  it('groups mix provider kinds: a passphrase-sealed file keyring is one group, env KEKs the others', () => {
    const init = keyfold(['init', '--kdf', 'scrypt', '--dir', join(work, 'kf-file')], { cwd: work, env: { KEYFOLD_PASSPHRASE: PASSPHRASE } });
    expect(init.status, init.stderr).toBe(0);
    writeFileSync(join(work, 'm.json'), '{"db": {"password": "hunter2"}}\n');
    const e = run(['secrets', 'encrypt', 'm.json', '--in-place', '--key-group', 'kf-file', '--key-group', 'kf-a', '--key-group', 'kf-b', '--shamir-threshold', '2'], { ...ALL, KEYFOLD_PASSPHRASE: PASSPHRASE });
    expect(e.status, e.stderr).toBe(0);
    const sealed = read('m.json');
    expect(status('m.json').keyGroups?.groups.map((g) => g.map((k) => k.kind))).toEqual([['file'], ['env'], ['env']]);
    const dirs = ['--add-provider-dir', 'kf-file', '--add-provider-dir', 'kf-a', '--add-provider-dir', 'kf-b'];
    const ok = run(['secrets', 'decrypt', 'm.json', ...dirs], { ...only('B'), KEYFOLD_PASSPHRASE: PASSPHRASE });
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.out).toBe('{"db": {"password": "hunter2"}}\n');
    // A wrong passphrase makes the file group unavailable: one group left, and the error says why.
    const wrong = run(['secrets', 'decrypt', 'm.json', '--in-place', ...dirs], { ...only('B'), KEYFOLD_PASSPHRASE: 'not it' });
    expect(wrong.status).toBe(3);
    expect(wrong.stderr).toContain('[THRESHOLD_NOT_MET]');
    expect(wrong.stderr).toMatch(/kf-file: .*\[WRONG_PASSPHRASE\]/);
    expect(wrong.stderr).not.toContain('not it');
    expect(read('m.json')).toBe(sealed);
  });

  it('updatekeys on a key-group file is refused (UNSUPPORTED, exit 1) pointing to rotate --key-group', () => {
    const sealed = encryptGroups('u.env', DOTENV, [['kf-a'], ['kf-b']], 2);
    const r = run(['secrets', 'updatekeys', 'u.env', '--add-provider-dir', 'kf-c'], ALL);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('[UNSUPPORTED]');
    expect(r.stderr).toContain('uses key groups (2 of 2)');
    expect(r.stderr).toContain('keyfold secrets rotate FILE --key-group DIR[,DIR...]');
    expect(r.out).toBe('');
    expect(read('u.env')).toBe(sealed);
  });
});
