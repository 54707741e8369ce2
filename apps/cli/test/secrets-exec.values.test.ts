/**
 * `keyfold secrets exec` refuses values it cannot pass as they are, before running anything and without quoting
 * them: a NUL character (Node's own error would print the secret), two paths mapping to one variable name (the
 * child would silently get one of them), an empty name. Through the built CLI, on stderr and with --json.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyfold, makeTempDir, removeDir } from './helpers.js';

let work: string;
const KEK = { KEYFOLD_KEK_V1: 'd4'.repeat(32) };
const run = (args: string[]) => keyfold(args, { cwd: work, env: { ...KEK, KEYFOLD_DIR: join(work, 'kf') } });

function encrypted(name: string, json: string): string {
  writeFileSync(join(work, name), json);
  const r = run(['secrets', 'encrypt', name, '--in-place']);
  expect(r.status, r.stderr).toBe(0);
  return name;
}

beforeAll(() => {
  work = makeTempDir('keyfold-exec-values-');
  const r = keyfold(['init', '--provider', 'env', '--dir', join(work, 'kf')], { cwd: work, env: KEK });
  expect(r.status, r.stderr).toBe(0);
});
afterAll(() => removeDir(work));

/** Every value of the files below: none may appear in any output. */
const VALUES = ['sup3r', 'one-secret', 'two-secret', 'lonely-secret'];

describe('secrets exec: values that cannot be environment variables', () => {
  const marker = (): string => join(work, 'ran');
  const child = (): string[] => [process.execPath, '-e', `require('fs').writeFileSync(${JSON.stringify(marker())}, '')`];

  for (const [name, json, message] of [
    ['nul.json', '{"token": "sup3r\\u0000secret", "ok": "1"}\n', /the value of token contains a NUL character, which an environment variable cannot hold; nothing was run \[UNSUPPORTED\]/],
    ['clash.json', '{"db.password": "one-secret", "db_password": "two-secret"}\n', /db\.password and db_password would both be the environment variable db_password; rename one\. Nothing was run \[UNSUPPORTED\]/],
    ['empty.json', '{"": "lonely-secret"}\n', /a value of the file has an empty name: it cannot be an environment variable; nothing was run \[UNSUPPORTED\]/],
  ] as const) {
    it(`${name}: exit 1, UNSUPPORTED naming the path (never the value), nothing run`, () => {
      encrypted(name, json);
      const r = run(['secrets', 'exec', name, '--', ...child()]);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`^keyfold: ${message.source}\\n$`));
      for (const value of VALUES) expect(r.stderr).not.toContain(value);
      expect(existsSync(marker())).toBe(false);
      const j = run(['secrets', 'exec', name, '--json', '--', ...child()]);
      expect(j.status).toBe(1);
      for (const value of VALUES) expect(j.out).not.toContain(value);
      expect(JSON.parse(j.out)).toMatchObject({ error: { code: 'UNSUPPORTED' } });
      expect(existsSync(marker())).toBe(false);
    });
  }
});
