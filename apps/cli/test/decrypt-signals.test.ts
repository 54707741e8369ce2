/**
 * Issue 13, item 7: a signal during `decrypt --out FILE` never leaves the temporary file of plaintext behind.
 * SIGHUP (like SIGINT and SIGTERM) removes it and exits 128 + 1 with one coded line; what SIGKILL leaves (no handler
 * runs) the next write to the same FILE removes, while temporary files of live runs, of other targets and of older
 * versions stay. The input is fed slowly (stdin held open after part of the envelope), so the run is mid-write.
 */
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, removeDir } from './helpers.js';
import { hasTempFile, installation, KEK_ENV, makeEnvelopes, oneCodedLine, runChild, tempFiles, type Envelopes } from './output-paths.js';

let work: string;
let run: ReturnType<typeof installation>;
let envelopes: Envelopes;
let partial: Buffer;
const env = (): Record<string, string> => ({ ...KEK_ENV, KEYFOLD_DIR: join(work, 'kf') });

beforeAll(() => {
  work = makeTempDir();
  run = installation(work);
  envelopes = makeEnvelopes(work, run);
  partial = readFileSync(join(work, envelopes.good)).subarray(0, 300_000);
});
afterAll(() => removeDir(work));

/** Starts `decrypt --out target` on a slow input and sends `signal` once its temporary file exists. */
function interruptDecrypt(target: string, signal: NodeJS.Signals) {
  let leftover: string[] = [];
  return runChild(['decrypt', '--out', target], {
    cwd: work,
    env: env(),
    input: partial,
    holdStdin: true,
    whenReady: {
      ready: () => hasTempFile(work),
      then: (pid) => {
        leftover = tempFiles(work);
        process.kill(pid, signal);
      },
    },
  }).then((r) => ({ ...r, seenTemp: leftover }));
}

describe('decrypt --out interrupted', () => {
  for (const [signal, status] of [['SIGHUP', 129], ['SIGINT', 130], ['SIGTERM', 143]] as const) {
    it(`${signal}: exit ${status}, one INTERRUPTED line, no temporary file, no target`, async () => {
      const r = await interruptDecrypt('hup.out', signal);
      expect(r.seenTemp.length).toBe(1);
      expect(r.signal).toBeNull();
      expect(r.status).toBe(status);
      expect(oneCodedLine(r.stderr)).toBe('INTERRUPTED');
      expect(r.stderr).toContain(signal);
      expect(tempFiles(work)).toEqual([]);
      expect(existsSync(join(work, 'hup.out'))).toBe(false);
    });
  }

  it('SIGKILL leaves a temporary file; the next write to the same target removes it, and only what it owns', async () => {
    const r = await interruptDecrypt('killed.out', 'SIGKILL');
    expect(r.signal).toBe('SIGKILL');
    const [stale] = tempFiles(work);
    expect(stale).toBeDefined();
    expect(r.seenTemp).toEqual([stale]);
    // .killed.out.<host tag>.<pid>.<random>.keyfold-tmp
    const parts = /^\.killed\.out\.([0-9a-f]{8})\.(\d+)\.([0-9a-f]{12})\.keyfold-tmp$/.exec(stale as string);
    expect(parts, stale).not.toBeNull();
    const [, tag, , random] = parts as RegExpExecArray;

    // Not leftovers of this target: a live process's file (this test process), another target's file, and a name
    // from an older version (no host or pid).
    const dead = spawnSync(process.execPath, ['-e', '0']).pid;
    const keep = [
      `.killed.out.${tag}.${process.pid}.${random}.keyfold-tmp`,
      `.other.out.${tag}.${dead}.${random}.keyfold-tmp`,
      `.killed.out.${random}.keyfold-tmp`,
    ];
    for (const name of keep) writeFileSync(join(work, name), 'not yours');
    const deadTwin = `.killed.out.${tag}.${dead}.${'0'.repeat(12)}.keyfold-tmp`;
    writeFileSync(join(work, deadTwin), 'stale too');

    const next = run(['decrypt', '--in', envelopes.good, '--out', 'killed.out']);
    expect(next.status, next.stderr).toBe(0);
    expect(readFileSync(join(work, 'killed.out')).equals(envelopes.plaintext)).toBe(true);
    expect(tempFiles(work).sort()).toEqual([...keep].sort());
  });
});
