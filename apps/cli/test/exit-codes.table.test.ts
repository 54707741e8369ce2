/**
 * The exit-code table of the README, walked row by row. The rows come from the README itself, and are checked
 * against `src/exit-codes.ts` (every error code in exactly the row of its exit status, every status with a row), so
 * neither can drift from the other; then each row's example runs through the built binary twice, with `--out FILE`
 * and with the data on stdout, and must end in that row's status and one line with one of that row's codes.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CliError, ExitCode, exitCodeFor, exitCodeForSignal, knownErrorCodes, type CliErrorCode } from '../src/exit-codes.js';
import { CLI_ROOT, makeTempDir, removeDir } from './helpers.js';
import {
  hasTempFile,
  installation,
  KEK_ENV,
  makeEnvelopes,
  oneCodedLine,
  runChild,
  tempFiles,
  type ChildResult,
  type Envelopes,
} from './output-paths.js';

interface Row {
  readonly exit: number;
  readonly meaning: string;
  readonly codes: readonly string[];
  readonly example: string;
}

/** The rows of the table under `## Exit codes` in apps/cli/README.md. */
function readmeRows(): Row[] {
  const readme = readFileSync(join(CLI_ROOT, 'README.md'), 'utf8');
  const section = readme.split(/^## Exit codes$/m)[1]?.split(/^## /m)[0];
  if (section === undefined) throw new Error('README.md has no "## Exit codes" section');
  const rows: Row[] = [];
  for (const line of section.split('\n')) {
    const cells = /^\|\s*(\d+)\s*\|(.*)\|\s*$/.exec(line);
    if (cells === null) continue;
    // Cells are separated by `|` outside code spans (an escaped `\|` stays inside a cell).
    const rest = (cells[2] as string).split(/(?<!\\)\|/).map((c) => c.trim());
    const [meaning = '', codesCell = '', example = ''] = rest;
    const codes = [...codesCell.matchAll(/`([A-Z][A-Z0-9_]*)`/g)].map((m) => m[1] as string);
    rows.push({ exit: Number(cells[1]), meaning, codes, example });
  }
  return rows;
}

const ROWS = readmeRows();
const SIGNAL_ROWS: Record<number, NodeJS.Signals> = {};
for (const row of ROWS) {
  if (row.exit > 128) {
    const signal = /\bSIG[A-Z]+\b/.exec(`${row.meaning} ${row.example}`)?.[0] as NodeJS.Signals | undefined;
    if (signal !== undefined) SIGNAL_ROWS[row.exit] = signal;
  }
}

describe('the README table matches exit-codes.ts', () => {
  it('has a row for every exit status, each with an example', () => {
    const statuses = ROWS.map((r) => r.exit);
    expect(new Set(statuses).size, 'one row per exit status').toBe(statuses.length);
    for (const status of Object.values(ExitCode)) expect(statuses).toContain(status);
    for (const row of ROWS) expect(row.example, `row ${row.exit} needs an example`).toMatch(/`keyfold /);
  });

  it('lists every error code once, in the row of the status exit-codes.ts gives it', () => {
    const listed = ROWS.filter((r) => r.exit <= 128 || r.exit === ExitCode.INTERRUPTED).flatMap((r) => r.codes.map((code) => ({ code, exit: r.exit })));
    const known = [...knownErrorCodes()].sort();
    expect(listed.map((l) => l.code).sort()).toEqual(known);
    for (const { code, exit } of listed) {
      // A CliError carries any code as is: exitCodeFor then looks it up in the CLI's or the core's table.
      expect(exitCodeFor(new CliError(code as CliErrorCode, 'x')), code).toBe(exit);
    }
  });

  it('rows above 128 are signals during a write: 128 + the signal named in the row, code INTERRUPTED', () => {
    for (const row of ROWS.filter((r) => r.exit > 128)) {
      const signal = SIGNAL_ROWS[row.exit];
      expect(signal, `row ${row.exit} must name its signal`).toBeDefined();
      expect(exitCodeForSignal(signal as NodeJS.Signals)).toBe(row.exit);
      expect(row.codes).toEqual(['INTERRUPTED']);
    }
  });
});

let work: string;
let run: ReturnType<typeof installation>;
let envelopes: Envelopes;
const env = (): Record<string, string> => ({ ...KEK_ENV, KEYFOLD_DIR: join(work, 'kf') });

beforeAll(() => {
  work = makeTempDir();
  run = installation(work);
  envelopes = makeEnvelopes(work, run);
});
afterAll(() => removeDir(work));

type Sink = 'stdout' | '--out';

/** The example of each row, as the test runs it: `decrypt` with the given input, to `sink`. */
async function example(exit: number, sink: Sink): Promise<ChildResult> {
  const outArgs = sink === '--out' ? ['--out', `row-${exit}.out`] : [];
  const child = (args: string[]) => runChild(['decrypt', ...args, ...outArgs], { cwd: work, env: env() });
  switch (exit) {
    case ExitCode.OK:
      return child(['--in', envelopes.good, '--context', 'app=billing']);
    case ExitCode.FAILURE:
      return child(['--in', envelopes.tenant]);
    case ExitCode.USAGE:
      return child(['--in', envelopes.good, '--context', 'app']);
    case ExitCode.INTEGRITY:
      return child(['--in', envelopes.flippedLastFrame]);
    default: {
      const signal = SIGNAL_ROWS[exit];
      if (signal === undefined) throw new Error(`no example for exit ${exit}: add one to this test`);
      // Mid-write: part of the envelope on stdin, which stays open; the signal comes once output has started.
      return runChild(['decrypt', ...outArgs], {
        cwd: work,
        env: env(),
        input: readFileSync(join(work, envelopes.good)).subarray(0, 300_000),
        holdStdin: true,
        whenReady: {
          ready: ({ stdoutBytes }) => (sink === '--out' ? hasTempFile(work) : stdoutBytes > 0),
          then: (pid) => process.kill(pid, signal),
        },
      });
    }
  }
}

describe('every row, through --out and through stdout', () => {
  for (const row of ROWS) {
    for (const sink of ['--out', 'stdout'] as const) {
      it(`exit ${row.exit} (${row.codes.join(', ') || 'success'}) with ${sink}`, async () => {
        const r = await example(row.exit, sink);
        expect(r.signal).toBeNull();
        expect(r.status, r.stderr).toBe(row.exit);
        if (row.exit === ExitCode.OK) {
          expect(r.stderr).toBe('');
          const plaintext = sink === '--out' ? readFileSync(join(work, `row-${row.exit}.out`)) : r.stdout;
          expect(plaintext.equals(envelopes.plaintext)).toBe(true);
        } else {
          expect(row.codes).toContain(oneCodedLine(r.stderr));
          if (sink === '--out') expect(existsSync(join(work, `row-${row.exit}.out`))).toBe(false);
        }
        expect(tempFiles(work)).toEqual([]);
      });
    }
  }
});
