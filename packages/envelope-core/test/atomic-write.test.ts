/**
 * The atomic writer against real failures (no mocks): a full file system (a 64 KiB tmpfs), a read-only directory
 * (a read-only bind mount), a directory in the way of the rename. After each, the old file is untouched and no
 * temporary file remains. Needs root for `mount` (the test machines run as root); skipped nowhere silently.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ATOMIC_TEMP_SUFFIX, syncDirectory, writeFileAtomic } from '../src/index.js';

const root = mkdtempSync(join(tmpdir(), 'keyfold-atomic-'));
const small = join(root, 'small'); // tmpfs, 64 KiB
const rwDir = join(root, 'rw');
const roDir = join(root, 'ro'); // read-only bind mount of rwDir
const mounted: string[] = [];

function mount(...args: string[]): void {
  execFileSync('mount', args, { stdio: 'pipe' });
  mounted.push(args[args.length - 1] as string);
}

beforeAll(() => {
  mkdirSync(small);
  mkdirSync(rwDir);
  mkdirSync(roDir);
  mount('-t', 'tmpfs', '-o', 'size=64k,mode=0700', 'tmpfs', small);
  mount('--bind', rwDir, roDir);
  execFileSync('mount', ['-o', 'remount,bind,ro', roDir], { stdio: 'pipe' });
});

afterAll(() => {
  for (const dir of mounted.reverse()) {
    try {
      execFileSync('umount', [dir], { stdio: 'pipe' });
    } catch {
      // already gone
    }
  }
  rmSync(root, { recursive: true, force: true });
});

function temps(dir: string): string[] {
  return readdirSync(dir).filter((name) => name.endsWith(ATOMIC_TEMP_SUFFIX));
}

describe('writeFileAtomic', () => {
  it('creates a new file with mode 0600 by default, or the mode given, and leaves no temporary file', async () => {
    const a = join(rwDir, 'a.json');
    await writeFileAtomic(a, '{"v":1}\n');
    expect(readFileSync(a, 'utf8')).toBe('{"v":1}\n');
    expect(statSync(a).mode & 0o777).toBe(0o600);
    const b = join(rwDir, 'b.bin');
    await writeFileAtomic(b, new Uint8Array([1, 2, 3]), { mode: 0o640 });
    expect([...readFileSync(b)]).toEqual([1, 2, 3]);
    expect(statSync(b).mode & 0o777).toBe(0o640 & ~process.umask());
    expect(temps(rwDir)).toEqual([]);
  });

  it('replaces an existing file whole', async () => {
    const path = join(rwDir, 'replace.txt');
    writeFileSync(path, 'old content that is longer than the new one');
    await writeFileAtomic(path, 'new');
    expect(readFileSync(path, 'utf8')).toBe('new');
    expect(temps(rwDir)).toEqual([]);
  });

  it('on a full file system (ENOSPC) keeps the old file and removes the temporary file', async () => {
    const path = join(small, 'keyring.json');
    writeFileSync(path, 'old');
    const big = new Uint8Array(256 * 1024).fill(7);
    await expect(writeFileAtomic(path, big)).rejects.toMatchObject({ code: 'ENOSPC' });
    expect(readFileSync(path, 'utf8')).toBe('old');
    expect(readdirSync(small)).toEqual(['keyring.json']);
  });

  it('in a read-only directory (EROFS) fails and creates nothing', async () => {
    writeFileSync(join(rwDir, 'ro.txt'), 'old');
    await expect(writeFileAtomic(join(roDir, 'ro.txt'), 'new')).rejects.toMatchObject({ code: 'EROFS' });
    expect(readFileSync(join(roDir, 'ro.txt'), 'utf8')).toBe('old');
    expect(temps(rwDir)).toEqual([]);
  });

  it('when the rename fails (a directory at the target) removes the temporary file', async () => {
    const target = join(rwDir, 'is-a-dir');
    mkdirSync(target);
    await expect(writeFileAtomic(target, 'x')).rejects.toMatchObject({ code: 'EISDIR' });
    expect(statSync(target).isDirectory()).toBe(true);
    expect(temps(rwDir)).toEqual([]);
  });

  it('never uses or removes a file that already sits at the temporary name', async () => {
    const path = join(rwDir, 'c.txt');
    const tempPath = join(rwDir, `.c.txt.taken${ATOMIC_TEMP_SUFFIX}`);
    writeFileSync(tempPath, 'someone else');
    await expect(writeFileAtomic(path, 'x', { tempPath })).rejects.toMatchObject({ code: 'EEXIST' });
    expect(readFileSync(tempPath, 'utf8')).toBe('someone else');
    rmSync(tempPath);
  });

  it('refuses a temporary path outside the target directory (caller mistake)', async () => {
    await expect(writeFileAtomic(join(rwDir, 'd.txt'), 'x', { tempPath: join(small, 'd.tmp') })).rejects.toThrow(RangeError);
  });
});

describe('syncDirectory', () => {
  it('flushes a directory, also a read-only one, and reports a missing one', async () => {
    await expect(syncDirectory(rwDir)).resolves.toBeUndefined();
    await expect(syncDirectory(roDir)).resolves.toBeUndefined();
    await expect(syncDirectory(join(root, 'missing'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
