/**
 * What every published package ships: packs each non-private workspace package under `packages/` and `apps/`
 * (`npm pack --dry-run --json`, the file list npm would upload) and checks the tarball carries the Apache-2.0
 * LICENSE (the repository's own text) and the manifest names the repository (with its directory), the homepage,
 * where to report bugs, keywords, and the Node.js lines `.ci/run` tests.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const REPOSITORY_URL = 'git+https://github.com/keyfold/keyfold.git';

/** The Node.js lines `.ci/run` tests (20 on the machine's Node, 22 and 24 from the registry). */
const TESTED_ENGINES = '^20.19.0 || ^22.12.0 || >=24.0.0';

/**
 * Packages whose dependencies need Node.js 22 (the Azure SDK's core packages say `engines: >=22.0.0`): they claim
 * only the lines their dependencies accept, though their tests also pass on 20.
 */
const NODE_22_PACKAGES: Readonly<Record<string, string>> = {
  'packages/provider-azure': '^22.12.0 || >=24.0.0',
  'apps/cli': '^22.12.0 || >=24.0.0',
};

interface Manifest {
  name: string;
  private?: boolean;
  license?: string;
  keywords?: unknown;
  homepage?: unknown;
  bugs?: { url?: unknown };
  repository?: { type?: unknown; url?: unknown; directory?: unknown };
  engines?: { node?: unknown };
}

interface PackResult {
  files: { path: string }[];
}

/** Directories (relative to the root) of every workspace package that is published. */
function publishedPackageDirs(): string[] {
  const dirs: string[] = [];
  for (const group of ['packages', 'apps']) {
    for (const entry of readdirSync(join(root, group), { withFileTypes: true })) {
      const dir = `${group}/${entry.name}`;
      if (!entry.isDirectory() || !existsSync(join(root, dir, 'package.json'))) continue;
      const manifest = JSON.parse(readFileSync(join(root, dir, 'package.json'), 'utf8')) as Manifest;
      if (manifest.private !== true) dirs.push(dir);
    }
  }
  return dirs;
}

const dirs = publishedPackageDirs();
const rootLicense = readFileSync(join(root, 'LICENSE'), 'utf8');

describe('published packages', () => {
  it('finds every published package', () => {
    expect(dirs).toContain('packages/envelope-core');
    expect(dirs).toContain('apps/cli');
    expect(dirs.length).toBeGreaterThanOrEqual(14);
  });

  it('the root LICENSE is the Apache License 2.0', () => {
    expect(rootLicense).toMatch(/^\s*Apache License\s+Version 2\.0, January 2004/);
    expect(rootLicense).toContain('TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION');
    expect(rootLicense).toContain('END OF TERMS AND CONDITIONS');
  });

  for (const dir of dirs) {
    describe(dir, () => {
      const manifest = JSON.parse(readFileSync(join(root, dir, 'package.json'), 'utf8')) as Manifest;

      it('packs a LICENSE that is the repository LICENSE', () => {
        const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
          cwd: join(root, dir),
          encoding: 'utf8',
          env: { ...process.env, npm_config_loglevel: 'silent' },
        });
        const [packed] = JSON.parse(out) as PackResult[];
        const files = (packed?.files ?? []).map((f) => f.path);
        expect(files).toContain('LICENSE');
        expect(files).toContain('package.json');
        expect(readFileSync(join(root, dir, 'LICENSE'), 'utf8')).toBe(rootLicense);
      });

      it('names the license, repository with directory, homepage, bugs and keywords', () => {
        expect(manifest.license).toBe('Apache-2.0');
        expect(manifest.repository).toEqual({ type: 'git', url: REPOSITORY_URL, directory: dir });
        expect(manifest.homepage).toBe(`https://github.com/keyfold/keyfold/tree/main/${dir}#readme`);
        expect(manifest.bugs?.url).toBe('https://github.com/keyfold/keyfold/issues');
        expect(Array.isArray(manifest.keywords)).toBe(true);
        const keywords = manifest.keywords as unknown[];
        expect(keywords).toContain('keyfold');
        expect(keywords.length).toBeGreaterThanOrEqual(3);
        for (const k of keywords) expect(k).toMatch(/^[a-z0-9][a-z0-9.-]*$/);
      });

      it('engines names the Node.js lines CI tests', () => {
        expect(manifest.engines?.node).toBe(NODE_22_PACKAGES[dir] ?? TESTED_ENGINES);
      });
    });
  }
});
