/**
 * Store helpers the keystore and rotation tests share: private temporary directories removed after the test file,
 * fresh SQLite store paths, the run's PostgreSQL URL (started by tooling/postgres-global-setup.ts, read with
 * `inject('pgUrl')`) and a unique schema per store. The openers are passed in, so the keystore's tests open its
 * sources and the rotation tests the built package.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, inject } from 'vitest';

declare module 'vitest' {
  export interface ProvidedContext {
    pgUrl: string;
  }
}

export interface StoreOpeners<S, P> {
  sqlite(options: { path: string; create: true; securityMode: 'production' }): Promise<S>;
  postgres(options: { connectionString: string; schema: string; create: true }): Promise<P>;
}

export interface TestStores<S, P> {
  /** A private temporary directory (mode 0700), removed after the file's tests. */
  readonly tempDir: () => string;
  /** A fresh store file path in a fresh directory. */
  readonly freshPath: () => string;
  readonly sqliteStore: (path?: string) => Promise<S>;
  readonly pgUrl: () => string;
  /** A unique schema name for one store: `<prefix>_<pid>_<n>_<random>`. */
  readonly freshSchema: () => string;
  readonly pgStore: (schema?: string) => Promise<P>;
}

export function testStores<S, P>(prefix: string, open: StoreOpeners<S, P>): TestStores<S, P> {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  let n = 0;
  const tempDir = (): string => {
    const d = mkdtempSync(join(tmpdir(), `keyfold-${prefix}-`));
    dirs.push(d);
    return d;
  };
  const freshPath = (): string => join(tempDir(), `store-${++n}.db`);
  const pgUrl = (): string => inject('pgUrl');
  const freshSchema = (): string => `${prefix}_${process.pid}_${++n}_${randomBytes(3).toString('hex')}`;
  return {
    tempDir,
    freshPath,
    sqliteStore: (path = freshPath()) => open.sqlite({ path, create: true, securityMode: 'production' }),
    pgUrl,
    freshSchema,
    pgStore: (schema = freshSchema()) => open.postgres({ connectionString: pgUrl(), schema, create: true }),
  };
}
