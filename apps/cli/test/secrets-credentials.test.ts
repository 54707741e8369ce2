/**
 * The child processes of `keyfold secrets exec` and `secrets edit` get no Keyfold credential variable, through the
 * built CLI. The fixed names come from the CLI's one list (`src/credential-env.ts`), so a variable added there is
 * checked here too; the configured ones (an env-provider prefix, a PKCS#11 PIN variable) come from the
 * configurations of the directory, of --add-provider-dir and of the key groups of .keyfold.yaml. Children print the
 * NAMES of their variables only, never values.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CREDENTIAL_VARIABLES } from '../src/credential-env.js';
import { keyfold, makeTempDir, removeDir, type RunOptions } from './helpers.js';

let work: string;

const KEKS = {
  APPKEK_V1: 'a1'.repeat(32), // kf: the configured installation, prefix APPKEK_V
  SECOND_V2: 'b2'.repeat(32), // kf2: --add-provider-dir, prefix SECOND_V
  THIRD_V3: 'c3'.repeat(32), // kf3: a key group of .keyfold.yaml, prefix THIRD_V
} as const;

/** Set for every run: each must be missing from the child's environment. */
const CREDENTIALS: Record<string, string> = {
  ...Object.fromEntries(CREDENTIAL_VARIABLES.map((name) => [name, `value of ${name}`])),
  ...KEKS,
  APPKEK_ACTIVE: '1',
  SECOND_ACTIVE: '2',
  THIRD_ACTIVE: '3',
  // the default env provider's variables: stripped even though no configuration here uses them
  KEYFOLD_KEK_V1: 'd4'.repeat(32),
  KEYFOLD_KEK_V12: 'e5'.repeat(32),
  KEYFOLD_KEK_ACTIVE: '12',
  // kf4: a PKCS#11 key group of .keyfold.yaml whose PIN is in ORG_HSM_PIN
  ORG_HSM_PIN: '123456',
};
/** Set for every run: each must reach the child. */
const ORDINARY: Record<string, string> = {
  APP_SETTING: 'on',
  AWS_REGION: 'eu-west-1',
  KEYFOLD_SECURITY_MODE: 'production',
  APPKEK_V1_NOTE: 'not a version variable',
  KEYFOLD_KEK_VERSION_NOTE: 'not a version variable',
};

const run = (args: string[], options: RunOptions = {}) =>
  keyfold(args, { cwd: work, ...options, env: { KEYFOLD_DIR: join(work, 'kf'), ...CREDENTIALS, ...ORDINARY, ...options.env } });

/** `node -e` printing the sorted names of its environment as JSON. */
const PRINT_NAMES = [process.execPath, '-e', 'console.log(JSON.stringify(Object.keys(process.env).sort()))'];

function childNames(out: string): string[] {
  return JSON.parse(out) as string[];
}

function expectNoCredentials(names: readonly string[]): void {
  for (const name of Object.keys(CREDENTIALS)) expect(names, name).not.toContain(name);
}

beforeAll(() => {
  work = makeTempDir('keyfold-credentials-');
  const init = (dir: string, prefix: string, env: Record<string, string>): void => {
    const r = keyfold(['init', '--provider', 'env', '--prefix', prefix, '--dir', join(work, dir)], { cwd: work, env });
    expect(r.status, r.stderr).toBe(0);
  };
  init('kf', 'APPKEK_V', { APPKEK_V1: KEKS.APPKEK_V1 });
  init('kf2', 'SECOND_V', { SECOND_V2: KEKS.SECOND_V2 });
  init('kf3', 'THIRD_V', { THIRD_V3: KEKS.THIRD_V3 });
  // A PKCS#11 installation's configuration (its library is never loaded: only its pinEnv matters here).
  mkdirSync(join(work, 'kf4'), { mode: 0o700 });
  const pkcs11 = {
    version: 1,
    createdAt: new Date().toISOString(),
    provider: { kind: 'pkcs11', keyId: 'org', library: '/nonexistent/libsofthsm2.so', tokenLabel: 't', mechanism: 'AES_GCM', pinEnv: 'ORG_HSM_PIN' },
  };
  writeFileSync(join(work, 'kf4', 'config.json'), JSON.stringify(pkcs11), { mode: 0o600 });

  mkdirSync(join(work, 'app'));
  writeFileSync(join(work, 'app', '.env'), 'DB_PASSWORD=hunter2\nAPI_TOKEN=tok\n');
  const e = run(['secrets', 'encrypt', 'app/.env', '--in-place', '--add-provider-dir', 'kf2']);
  expect(e.status, e.stderr).toBe(0);
  // Written after encrypting, so the file itself is sealed under kf and kf2 only.
  writeFileSync(join(work, 'app', '.keyfold.yaml'), 'key_groups:\n  - [../kf3]\n  - [../kf4]\nshamir_threshold: 1\n');
  writeFileSync(join(work, 'names-editor.mjs'), [
    "import { writeFileSync } from 'node:fs';",
    "writeFileSync(process.env.NAMES_OUT, JSON.stringify(Object.keys(process.env).sort()));",
  ].join('\n'));
});
afterAll(() => removeDir(work));

describe('secrets exec: no Keyfold credential reaches the child', () => {
  it('strips the fixed credential variables and those of every configuration; the rest and the secrets pass', () => {
    const r = run(['secrets', 'exec', 'app/.env', '--add-provider-dir', 'kf2', '--', ...PRINT_NAMES]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const names = childNames(r.out);
    expectNoCredentials(names);
    for (const name of [...Object.keys(ORDINARY), 'DB_PASSWORD', 'API_TOKEN', 'PATH', 'HOME', 'KEYFOLD_DIR']) expect(names, name).toContain(name);
  });

  it('without --add-provider-dir: the fixed names, the default KEK variables, kf\'s own and the rules file\'s groups are stripped', () => {
    // kf2 is named nowhere in this run, so its SECOND_V<N> variables are not known to be credentials here.
    const r = run(['secrets', 'exec', 'app/.env', '--', ...PRINT_NAMES]);
    expect(r.status, r.stderr).toBe(0);
    const names = childNames(r.out);
    for (const name of Object.keys(CREDENTIALS).filter((n) => !n.startsWith('SECOND_'))) expect(names, name).not.toContain(name);
  });

  it('a key-group file (opened by any available group; kf4 is not): the variables of every group directory are stripped', () => {
    writeFileSync(join(work, 'app', 'groups.env'), 'TOKEN=abc\n');
    const e = run(['secrets', 'encrypt', 'app/groups.env', '--in-place', '--key-group', 'kf2', '--key-group', 'kf3', '--shamir-threshold', '1']);
    expect(e.status, e.stderr).toBe(0);
    const r = run(['secrets', 'exec', 'app/groups.env', '--add-provider-dir', 'kf2', '--', ...PRINT_NAMES]);
    expect(r.status, r.stderr).toBe(0);
    const names = childNames(r.out);
    expectNoCredentials(names);
    expect(names).toContain('TOKEN');
  });

  it('--pass-env NAME hands exactly the named ones on (a bad NAME exits 2); --pristine stays secrets + PATH (+ --pass-env)', () => {
    const check = `const e = process.env; console.log(JSON.stringify({ names: Object.keys(e).sort(), kek: e.APPKEK_V1 === '${KEKS.APPKEK_V1}', pg: e.PGPASSWORD === 'value of PGPASSWORD' }))`;
    const passed = run(['secrets', 'exec', 'app/.env', '--pass-env', 'APPKEK_V1', '--pass-env', 'PGPASSWORD', '--', process.execPath, '-e', check]);
    expect(passed.status, passed.stderr).toBe(0);
    const p = JSON.parse(passed.out) as { names: string[]; kek: boolean; pg: boolean };
    expect(p.kek && p.pg).toBe(true);
    const rest = p.names.filter((n) => n !== 'APPKEK_V1' && n !== 'PGPASSWORD');
    for (const name of Object.keys(CREDENTIALS).filter((n) => !n.startsWith('SECOND_') && n !== 'APPKEK_V1' && n !== 'PGPASSWORD')) {
      expect(rest, name).not.toContain(name);
    }

    const pristine = run(['secrets', 'exec', 'app/.env', '--pristine', '--', ...PRINT_NAMES]);
    expect(pristine.status, pristine.stderr).toBe(0);
    expect(childNames(pristine.out)).toEqual(['API_TOKEN', 'DB_PASSWORD', 'PATH']);
    const pristinePassed = run(['secrets', 'exec', 'app/.env', '--pristine', '--pass-env', 'KEYFOLD_DATABASE_URL', '--pass-env', 'NOT_SET_ANYWHERE', '--', ...PRINT_NAMES]);
    expect(pristinePassed.status, pristinePassed.stderr).toBe(0);
    expect(childNames(pristinePassed.out)).toEqual(['API_TOKEN', 'DB_PASSWORD', 'KEYFOLD_DATABASE_URL', 'PATH']);

    // Something that is not a variable name: a usage error (exit 2), nothing runs.
    const marker = join(work, 'ran');
    const bad = run(['secrets', 'exec', 'app/.env', '--pass-env', 'A=B', '--', process.execPath, '-e', `require('fs').writeFileSync(${JSON.stringify(marker)}, '')`]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--pass-env takes the name of an environment variable.*\[USAGE\]/);
    expect(() => readFileSync(marker)).toThrow();
  });

});

describe('secrets edit: the editor gets no Keyfold credential', () => {
  it('strips the same variables from the editor environment', () => {
    const namesOut = join(work, 'editor-names.json');
    const r = run(['secrets', 'edit', 'app/.env', '--add-provider-dir', 'kf2'], {
      env: { EDITOR: `${process.execPath} ${join(work, 'names-editor.mjs')}`, NAMES_OUT: namesOut },
    });
    expect(r.status, r.stderr).toBe(0);
    const names = JSON.parse(readFileSync(namesOut, 'utf8')) as string[];
    expectNoCredentials(names);
    for (const name of [...Object.keys(ORDINARY), 'EDITOR', 'PATH', 'HOME']) expect(names, name).toContain(name);
  });
});
