/**
 * `keyfold restore` checks what it is handed before it becomes the store: a backup of another installation (its
 * install lock names another provider) is refused with PROVIDER_MISMATCH (exit 3) and nothing is written, through
 * the built CLI on the embedded SQLite store.
 */
import { existsSync, readdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyfold, makeTempDir, removeDir, type RunOptions } from './helpers.js';

let work: string;
const KEKS = { KEYFOLD_KEK_V1: 'a1'.repeat(32), OTHER_V1: 'b2'.repeat(32) };
const run = (args: string[], options: RunOptions = {}) => keyfold(args, { cwd: work, ...options, env: { ...KEKS, ...options.env } });

beforeAll(() => {
  work = makeTempDir('keyfold-restore-');
  for (const [dir, prefix] of [['mine', 'KEYFOLD_KEK_V'], ['theirs', 'OTHER_V']] as const) {
    const r = run(['init', '--provider', 'env', '--prefix', prefix, '--dir', join(work, dir)]);
    expect(r.status, r.stderr).toBe(0);
  }
  for (const dir of ['mine', 'theirs']) {
    const t = run(['tenant', 'create', '--tenant', 'acme', '--dir', join(work, dir)]);
    expect(t.status, t.stderr).toBe(0);
    const b = run(['backup', '--out', join(work, `${dir}.backup`), '--dir', join(work, dir)]);
    expect(b.status, b.stderr).toBe(0);
  }
  // The installation lost its store: restore is what the operator runs next.
  renameSync(join(work, 'mine', 'keystore.db'), join(work, 'lost-keystore.db'));
});
afterAll(() => removeDir(work));

describe('keyfold restore', () => {
  it("a backup of another installation is refused: exit 3, PROVIDER_MISMATCH naming both, no store and no temporary file", () => {
    const before = readdirSync(join(work, 'mine')).sort();
    const r = run(['restore', '--in', join(work, 'theirs.backup'), '--dir', join(work, 'mine')]);
    expect(r.status).toBe(3);
    expect(r.stderr).toMatch(/^keyfold: .*theirs\.backup is a backup of another installation: its install lock is env:OTHER but .*env:KEYFOLD_KEK.*\[PROVIDER_MISMATCH\]\n$/);
    expect(existsSync(join(work, 'mine', 'keystore.db'))).toBe(false);
    expect(readdirSync(join(work, 'mine')).sort()).toEqual(before);
    const j = run(['restore', '--in', join(work, 'theirs.backup'), '--dir', join(work, 'mine'), '--json']);
    expect(j.status).toBe(3);
    expect(JSON.parse(j.out)).toMatchObject({ error: { code: 'PROVIDER_MISMATCH' } });
    expect(readdirSync(join(work, 'mine')).sort()).toEqual(before);
  });

  it("the installation's own backup restores, and its tenant key opens again", () => {
    const r = run(['restore', '--in', join(work, 'mine.backup'), '--dir', join(work, 'mine')]);
    expect(r.status, r.stderr).toBe(0);
    expect(existsSync(join(work, 'mine', 'keystore.db'))).toBe(true);
    const list = run(['tenant', 'list', '--dir', join(work, 'mine'), '--json']);
    expect(list.status, list.stderr).toBe(0);
    expect(list.out).toContain('acme');
    const verify = run(['kek', 'verify', '--dir', join(work, 'mine')]);
    expect(verify.status, verify.stderr).toBe(0);
  });
});
