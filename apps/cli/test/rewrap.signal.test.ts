/**
 * `keyfold rewrap` killed while it writes the replacement (SIGTERM, then SIGINT): the temporary file is removed, the
 * envelope file is byte-for-byte the old one, and it still opens. The envelope is large (96 MiB) so that the window
 * in which the temporary file exists is long enough to hit: the test watches the directory and signals the child as
 * soon as the temporary file appears.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, baseEnv, keyfold, makeTempDir, removeDir } from './helpers.js';
import { envKeks } from './seed.js';

const keks = envKeks();
const V1 = { KEYFOLD_KEK_V1: keks.KEYFOLD_KEK_V1 };
const V12 = { ...keks };

let work: string;
let dir: string;
let data: string;
let file: string;

const statSize = (path: string): number => {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
};
const digest = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');

/** Runs rewrap on `file`, sends `signal` once a temporary file shows up next to it; resolves with what happened. */
function rewrapAndSignal(signal: NodeJS.Signals): Promise<{ status: number | null; sawTemp: boolean; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'rewrap', file, '--dir', dir], { env: baseEnv(V12), stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let sawTemp = false;
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    child.stdout.resume();
    // Signalled once the temporary file has data: the write is under way (a file that exists but is still empty
    // may be in the instant between its creation and the handler that removes it being installed).
    const watch = setInterval(() => {
      if (sawTemp) return;
      const temp = readdirSync(data).find((n) => n.endsWith('.keyfold-tmp'));
      if (temp !== undefined && statSize(join(data, temp)) > 0) {
        sawTemp = true;
        child.kill(signal);
      }
    }, 1);
    child.on('error', reject);
    child.on('close', (status, killedBy) => {
      clearInterval(watch);
      resolve({ status, sawTemp, stderr: `${stderr}${killedBy === null ? '' : ` (killed by ${killedBy})`}` });
    });
  });
}

beforeAll(() => {
  work = makeTempDir();
  dir = join(work, 'kf');
  data = join(work, 'data');
  expect(keyfold(['init', '--provider', 'env', '--dir', dir], { env: V1 }).status).toBe(0);
  writeFileSync(join(work, 'plain.bin'), randomBytes(96 * 1024 * 1024));
  // A directory of its own, so that the only temporary file there can be rewrap's.
  mkdirSync(data);
  file = join(data, 'big.kf');
  const r = keyfold(['encrypt', '--dir', dir, '--in', join(work, 'plain.bin'), '--out', file], { env: V1 });
  expect(r.status, r.stderr).toBe(0);
  // Version 2 becomes the key store's active version: the file above is stale.
  expect(keyfold(['kek', 'activate', '--kek-version', '2', '--dir', dir], { env: V12 }).status).toBe(0);
}, 120_000);
afterAll(() => removeDir(work));

describe('keyfold rewrap interrupted by a signal while writing', () => {
  for (const [signal, exit] of [
    ['SIGTERM', 143],
    ['SIGINT', 130],
  ] as const) {
    it(`${signal}: exit ${exit}, no temporary file, the old envelope untouched and still opening`, async () => {
      const before = digest(file);
      const r = await rewrapAndSignal(signal);
      expect(r.sawTemp, `the temporary file never appeared: ${r.stderr}`).toBe(true);
      expect(r.status, r.stderr).toBe(exit);
      expect(readdirSync(data)).toEqual(['big.kf']);
      expect(digest(file)).toBe(before);
    }, 120_000);
  }

  it('afterwards a run without a signal re-wraps it', () => {
    const r = keyfold(['rewrap', file, '--dir', dir, '--json'], { env: V12 });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.out).counts.rewrapped).toBe(1);
    expect(readdirSync(data)).toEqual(['big.kf']);
    const d = keyfold(['decrypt', '--dir', dir, '--in', file, '--out', join(work, 'plain.out')], { env: { KEYFOLD_KEK_V2: keks.KEYFOLD_KEK_V2 } });
    expect(d.status, d.stderr).toBe(0);
    expect(digest(join(work, 'plain.out'))).toBe(digest(join(work, 'plain.bin')));
  }, 120_000);
});
