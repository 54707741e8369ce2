/**
 * `keyfold rotate --if-due` with the env provider under a non-default prefix (issue 14, section 5): when a new
 * version is due, the message names the variable of THIS installation (`<configured prefix><next>`), never the
 * default `KEYFOLD_KEK_V<n>`, on the human and the --json path; after the operator sets it, the re-wrap runs.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyfold, makeTempDir, removeDir } from './helpers.js';

let work: string;
let dir: string;
const v1 = { MYAPP_KEK_V1: 'a1'.repeat(32) };
// A stray default-prefix variable on the host: must neither be named nor counted.
const stray = { KEYFOLD_KEK_V7: 'b2'.repeat(32) };

beforeAll(() => {
  work = makeTempDir();
  dir = join(work, 'kf');
  const r = keyfold(['init', '--dir', dir, '--provider', 'env', '--prefix', 'MYAPP_KEK_V', '--json'], { env: v1 });
  expect(r.status, r.stderr).toBe(0);
  expect(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')).provider).toMatchObject({ kind: 'env', prefix: 'MYAPP_KEK_V' });
  expect(keyfold(['tenant', 'create', '--tenant', 'acme', '--dir', dir], { env: v1 }).status).toBe(0);
});
afterAll(() => removeDir(work));

describe('rotate --if-due with the env provider', () => {
  it('a due version names <configured prefix><next> on stderr, with CONFIG_INVALID and exit 1', () => {
    const r = keyfold(['rotate', '--if-due', '--max-age', '0.000001', '--dir', dir], { env: { ...v1, ...stray } });
    expect(r.status, r.stderr).toBe(1);
    expect(r.out).toBe('');
    expect(r.stderr).toMatch(/^keyfold: .*set MYAPP_KEK_V2 to 64 hex characters.* \[CONFIG_INVALID\]\n$/);
    expect(r.stderr).not.toMatch(/KEYFOLD_KEK_V/);
    expect(r.stderr).not.toContain('a1'.repeat(32));
  });

  it('the same on the --json path', () => {
    const r = keyfold(['rotate', '--if-due', '--max-age', '0.000001', '--dir', dir, '--json'], { env: v1 });
    expect(r.status, r.stderr).toBe(1);
    const doc = JSON.parse(r.out) as { error: { code: string; message: string } };
    expect(doc.error.code).toBe('CONFIG_INVALID');
    expect(doc.error.message).toContain('set MYAPP_KEK_V2 ');
    expect(doc.error.message).toContain('env:MYAPP_KEK');
    expect(r.out + r.stderr).not.toMatch(/KEYFOLD_KEK_V/);
  });

  it('once the named variable is set, the next run re-wraps to it', () => {
    const v2 = { ...v1, MYAPP_KEK_V2: 'c3'.repeat(32) };
    // Set but not active: a due run says to activate it; the key store decides.
    const due = keyfold(['rotate', '--if-due', '--max-age', '0.000001', '--dir', dir], { env: v2 });
    expect(due.status, due.stderr).toBe(1);
    expect(due.stderr).toContain("MYAPP_KEK_V2 is set here: once it is set wherever this installation runs, make it the key store's active version with 'keyfold kek activate --kek-version 2'");
    expect(keyfold(['kek', 'activate', '--kek-version', '2', '--dir', dir], { env: v2 }).status).toBe(0);
    const r = keyfold(['rotate', '--if-due', '--grace-period', '0', '--dir', dir, '--json'], { env: v2 });
    expect(r.status, r.stderr + r.out).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ action: 'rewrapped', report: { rewrapped: 1 }, active: { keyId: 'MYAPP_KEK', version: '2' } });
    // And the next due version is V3, named with the prefix.
    const again = keyfold(['rotate', '--if-due', '--max-age', '0.000001', '--dir', dir], { env: v2 });
    expect(again.status, again.stderr).toBe(1);
    expect(again.stderr).toContain('set MYAPP_KEK_V3 ');
  });
});
