/**
 * The CLI README's "Rotating in a fleet" walkthrough, run as written: its `sh` blocks are read from the README and
 * run in order by bash (`-e -o pipefail`) with `keyfold` on PATH (the built binary), on an env-provider installation
 * with envelopes sealed under version 1, a tenant key, and one long-running application registered in the key
 * store's process registry (`fixtures/registered-app.mjs`, through `openTenantKeys`). The prose step between the
 * blocks ("roll it out: ... restart its processes") is what the test does between them: it restarts the application
 * with `KEYFOLD_KEK_V2` set.
 *
 * First the application is left stale (version 1 only): the second block must stop at `kek verify --target 2` with
 * `NOT_READY` and change nothing. After the restart the block runs through, and then everything opens with version 1
 * gone from the environment.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, CLI_ROOT, baseEnv, keyfold, makeTempDir, removeDir } from './helpers.js';

const README = readFileSync(join(CLI_ROOT, 'README.md'), 'utf8');

/** The `sh` blocks of one README section (from its heading to the next heading of the same or a higher level). */
function shellBlocks(markdown: string, heading: string): string[] {
  const start = markdown.indexOf(`\n${heading}\n`);
  if (start < 0) throw new Error(`the README has no section "${heading}"`);
  const level = /^#+/.exec(heading)![0].length;
  const rest = markdown.slice(start + heading.length + 2);
  const next = new RegExp(`\\n#{1,${level}} `).exec(rest);
  const section = next === null ? rest : rest.slice(0, next.index);
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

const V1 = randomBytes(32).toString('hex');
const PAYLOADS = ['invoice 1', 'invoice 2', 'payroll'];

let work: string;
let dir: string;
let shims: string;
let app: ChildProcess | undefined;

/** The environment every host has before the rollout. */
function hostEnv(extra: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return { KEYFOLD_DIR: dir, KEYFOLD_KEK_V1: V1, ...extra };
}

/** Runs one README block with bash in the working directory, `keyfold` on PATH. */
function runBlock(block: string, extra: Record<string, string | undefined> = {}): { status: number | null; stdout: string; stderr: string } {
  const env = baseEnv({ ...hostEnv(extra), PATH: `${shims}:${process.env.PATH ?? ''}` });
  const r = spawnSync('bash', ['-e', '-o', 'pipefail', '-c', block], { cwd: work, env, encoding: 'utf8' });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Starts the registered application with the given KEK variables; resolves once it is registered. */
async function startApp(extra: Record<string, string | undefined>): Promise<{ child: ChildProcess; versions: string }> {
  const child = spawn(process.execPath, [fileURLToPath(new URL('./fixtures/registered-app.mjs', import.meta.url))], {
    env: baseEnv({ ...hostEnv(extra), KF_DIR: dir, KF_REFRESH_MS: '200', KF_TTL_MS: '3000' }),
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const versions = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (line) => {
      const m = /^registered \S+ (\S*)$/.exec(line);
      if (m) resolve(m[1]!);
    });
    child.on('exit', (code) => reject(new Error(`the application exited (${String(code)})`)));
  });
  return { child, versions };
}

/** A restart, as the walkthrough asks: SIGTERM (the application removes its record), then wait for it to exit. */
async function stopApp(): Promise<void> {
  const child = app;
  app = undefined;
  if (child === undefined || child.exitCode !== null) return;
  await new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

function kekVersions(): { version: string; state: string; keys: { active: number } }[] {
  const r = keyfold(['kek', 'list', '--json'], { env: hostEnv() });
  expect(r.status, r.stderr).toBe(0);
  return (JSON.parse(r.out) as { versions: { version: string; state: string; keys: { active: number } }[] }).versions;
}

beforeAll(() => {
  work = makeTempDir('keyfold-fleet-');
  dir = join(work, '.keyfold');
  shims = join(work, 'bin');
  mkdirSync(shims);
  writeFileSync(join(shims, 'keyfold'), `#!/bin/sh\nexec "${process.execPath}" "${BIN}" "$@"\n`);
  chmodSync(join(shims, 'keyfold'), 0o755);

  const init = keyfold(['init', '--provider', 'env'], { env: hostEnv() });
  expect(init.status, init.stderr).toBe(0);
  mkdirSync(join(work, 'sealed'));
  PAYLOADS.forEach((text, i) => {
    const r = keyfold(['encrypt', '--out', join(work, 'sealed', `doc${i}.kf`), ...(i === 2 ? ['--armor'] : [])], { env: hostEnv(), input: text });
    expect(r.status, r.stderr).toBe(0);
  });
  const tenant = keyfold(['tenant', 'create', '--tenant', 'acme'], { env: hostEnv() });
  expect(tenant.status, tenant.stderr).toBe(0);
  const sealed = keyfold(['encrypt', '--tenant', 'acme', '--out', join(work, 'acme.kf')], { env: hostEnv(), input: 'acme data' });
  expect(sealed.status, sealed.stderr).toBe(0);
});

afterAll(async () => {
  await stopApp();
  if (work !== undefined) removeDir(work);
});

describe('the CLI README walkthrough "Rotating in a fleet", run as written', () => {
  const blocks = shellBlocks(README, '### Rotating in a fleet');

  it('has the two blocks the test runs: make version 2, then verify, activate, rotate, rewrap, retire', () => {
    expect(blocks).toHaveLength(2);
    for (const step of ['kek verify --target 2', 'kek activate --kek-version 2', 'kek rotate', 'rewrap --recursive', 'rewrap --check', 'kek retire --kek-version 1']) {
      expect(blocks[1]).toContain(`keyfold ${step}`);
    }
  });

  it('with one process still on version 1, the second block stops at kek verify --target 2 (NOT_READY) and changes nothing', async () => {
    const made = runBlock(blocks[0]!);
    expect(made.status, made.stderr).toBe(0);
    expect(readFileSync(join(work, 'kek-v2.hex'), 'utf8').trim()).toMatch(/^[0-9a-f]{64}$/);

    app = (await startApp({})).child; // the stale process: never restarted, version 1 only
    const before = readFileSync(join(work, 'sealed', 'doc0.kf'));
    const r = runBlock(blocks[1]!);
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/\[NOT_READY\]/);
    expect(r.stdout + r.stderr).toContain(String(app.pid));
    expect(kekVersions().filter((v) => v.state === 'active').map((v) => v.version)).toEqual(['1']);
    expect(readFileSync(join(work, 'sealed', 'doc0.kf')).equals(before)).toBe(true);
  });

  it('after the rollout (the process restarted with KEYFOLD_KEK_V2) the block runs through, and everything opens without version 1', async () => {
    const v2 = readFileSync(join(work, 'kek-v2.hex'), 'utf8').trim();
    await stopApp();
    const restarted = await startApp({ KEYFOLD_KEK_V2: v2 });
    app = restarted.child;
    expect(restarted.versions.split(',').sort()).toEqual(['1', '2']);

    const r = runBlock(blocks[1]!);
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);

    const versions = kekVersions();
    expect(versions.find((v) => v.version === '1')?.state).toBe('retired');
    expect(versions.find((v) => v.version === '2')?.state).toBe('active');

    // Every envelope and the tenant key now need only version 2: open them with version 1 removed.
    const onlyV2 = { KEYFOLD_DIR: dir, KEYFOLD_KEK_V1: undefined, KEYFOLD_KEK_V2: v2 };
    PAYLOADS.forEach((text, i) => {
      const opened = keyfold(['decrypt', '--in', join(work, 'sealed', `doc${i}.kf`)], { env: onlyV2 });
      expect(opened.status, opened.stderr).toBe(0);
      expect(opened.out).toBe(text);
    });
    const tenant = keyfold(['decrypt', '--tenant', 'acme', '--in', join(work, 'acme.kf')], { env: onlyV2 });
    expect(tenant.status, tenant.stderr).toBe(0);
    expect(tenant.out).toBe('acme data');
    const audit = keyfold(['audit', 'verify'], { env: onlyV2 });
    expect(audit.status, audit.stderr).toBe(0);
  });
});
