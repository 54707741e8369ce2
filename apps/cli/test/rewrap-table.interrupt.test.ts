/**
 * `keyfold rewrap --table` on a terminal: the progress bar is drawn (util-linux `script` gives the binary a
 * pseudo-terminal), and Ctrl-C typed on it once a batch is done stops the run after the batch in progress (exit 130):
 * whole batches are on the new version, the rest untouched, every row opens, the audit entry says the run was
 * interrupted, and the next run does the rest.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEnvelope, inspectEnvelope } from '@keyfold/envelope-core';
import { createEnvProvider } from '@keyfold/provider-local';
import { BIN, baseEnv, keyfold, makeTempDir, removeDir, spawnAsync } from './helpers.js';
import { plain, requireScript } from './rotate-interrupt.js';
import { envKeks } from './seed.js';

const ROWS = 20_000;
const BATCH = 100;
const keks = envKeks();

let work: string;
beforeAll(() => {
  requireScript();
  work = makeTempDir();
});
afterAll(() => removeDir(work));

const shellQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
const count = (s: string): number => Number(s.replace(/,/g, ''));

describe('Ctrl-C during keyfold rewrap --table', () => {
  it('shows progress, stops after the batch in progress (exit 130), and the next run finishes the rest', async () => {
    const dir = join(work, 'kf');
    expect(keyfold(['init', '--provider', 'env', '--dir', dir], { env: { KEYFOLD_KEK_V1: keks.KEYFOLD_KEK_V1 } }).status).toBe(0);
    // Version 2 is rolled out and made the key store's active version: the rows sealed under 1 below are stale.
    expect(keyfold(['kek', 'activate', '--kek-version', '2', '--dir', dir], { env: keks }).status).toBe(0);
    const path = join(work, 'app.db');
    const db = new Database(path);
    db.exec('CREATE TABLE documents (id INTEGER PRIMARY KEY, body BLOB)');
    const v1 = createEnvelope({ providers: [createEnvProvider({ env: { KEYFOLD_KEK_V1: keks.KEYFOLD_KEK_V1 } })] });
    const ins = db.prepare('INSERT INTO documents (id, body) VALUES (?, ?)');
    const sealed: Buffer[] = [];
    for (let i = 1; i <= ROWS; i++) sealed.push(Buffer.from(await v1.seal(randomBytes(16))));
    db.transaction(() => sealed.forEach((b, i) => ins.run(i + 1, b)))();

    const args = ['rewrap', '--table', 'documents', '--column', 'body', '--database-url', `sqlite:${path}`, '--batch-size', String(BATCH), '--dir', dir];
    const command = ['exec', ...[process.execPath, BIN, ...args].map(shellQuote)].join(' ');
    let typedAt: number | undefined;
    const r = await spawnAsync('script', ['-qfec', command, '/dev/null'], {
      cwd: work,
      env: baseEnv({ TERM: 'xterm', NO_COLOR: undefined, ...keks }),
      converse: (output, write) => {
        const m = [...plain(output).matchAll(/re-wrapping \[[#-]+\] ([\d,]+)\/([\d,]+)/g)].at(-1);
        if (typedAt === undefined && m !== undefined && count(m[1] as string) > 0) {
          expect(count(m[2] as string)).toBe(ROWS);
          typedAt = count(m[1] as string);
          write('\u0003');
        }
      },
    });
    const text = plain(r.output);
    expect(typedAt, text).toBeDefined();
    expect(typedAt).toBeLessThan(ROWS / 2);
    expect(r.status, text).toBe(130);
    expect(text).toContain('Interrupted: the batches done are written; run the command again for the rest.');
    const done = count(/re-wrapped\s+([\d,]+)/.exec(text)?.[1] ?? 'NaN');
    expect(done).toBeGreaterThanOrEqual(typedAt ?? Infinity);
    expect(done).toBeLessThan(ROWS);
    expect(done % BATCH).toBe(0);

    // Whole batches moved, the rest untouched; every row still opens with both versions available.
    const rows = db.prepare('SELECT id, body FROM documents ORDER BY id').all() as { id: number; body: Buffer }[];
    const onV2 = rows.filter((row) => inspectEnvelope(row.body).wrappedKeys[0]?.keyVersion === '2');
    expect(onV2.length).toBe(done);
    expect(rows.filter((row) => row.body.equals(sealed[row.id - 1] as Buffer)).length).toBe(ROWS - done);
    const both = createEnvelope({ providers: [createEnvProvider({ env: keks })] });
    for (const row of rows.filter((_, i) => i % 97 === 0)) (await both.open(row.body)).fill(0);

    const audit = JSON.parse(keyfold(['audit', 'list', '--event', 'envelopes.rewrap', '--json', '--dir', dir], { env: keks }).out);
    expect(audit.entries.at(-1).details).toMatchObject({ aborted: true, counts: { rewrapped: done } });

    const rest = keyfold([...args, '--json'], { env: keks });
    expect(rest.status, rest.stderr).toBe(0);
    expect(JSON.parse(rest.out)).toMatchObject({ rewrapped: ROWS - done, current: done, aborted: false });
    db.close();
  }, 300_000);
});
