import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';

/** 64 random hex characters: one env KEK. */
export function randomHexKey(): string {
  return randomBytes(32).toString('hex');
}

/**
 * A private temp root for one test file (mkdtemp creates it 0700), removed after the file's tests. `dir()` makes
 * fresh 0700 subdirectories in it.
 */
export function tempRoot(label: string): { dir: (name?: string) => Promise<string>; root: () => string } {
  let root: string | undefined;
  let n = 0;
  afterAll(async () => {
    if (root) await rm(root, { recursive: true, force: true });
  });
  return {
    dir: async (name) => {
      root ??= await mkdtemp(join(tmpdir(), `keyfold-${label}-`));
      const d = await mkdtemp(join(root, `${name ?? 'd'}-${n++}-`));
      await chmod(d, 0o700);
      return d;
    },
    root: () => {
      if (!root) throw new Error('no directory made yet');
      return root;
    },
  };
}

/** Bytes of a file, for "unchanged" assertions. */
export function fileBytes(path: string): Promise<Buffer> {
  return readFile(path);
}

/** Low-cost KDF for tests that do not test the KDF itself. */
export const FAST_KDF = { name: 'pbkdf2-sha256', iterations: 1000 } as const;
