/**
 * Section 5: CLI cold start. Wall time of whole processes, spawned one after another and interleaved:
 * `node -e 0`, `keyfold --help`, and `keyfold encrypt` of 1 KiB (env provider: pure start-up + one seal; file
 * provider, the `init` default: includes the passphrase KDF, for information).
 * @module
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Buffer } from 'node:buffer';
import { benchKey } from '../contenders/types.js';
import { median, ratio } from '../measure.js';
import { evaluateTarget, fmtMs, fmtRatio, type SectionResult, type Table } from '../report.js';

export interface CliStartOptions {
  /** Repository root (holds apps/cli/dist/bin.js). */
  readonly root: string;
  /** Spawns per command. */
  readonly runs: number;
}

interface CmdDef {
  readonly id: string;
  readonly label: string;
  readonly args: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
}

export interface CliStartData {
  readonly bin: string;
  readonly built: boolean;
  readonly runs: number;
  readonly results: Record<string, { label: string; command: string; medianMs?: number; samplesMs?: number[]; error?: string }>;
  readonly helpVsNode: number | null;
}

function describeFailure(r: SpawnSyncReturns<Buffer>): string {
  const err = (r.stderr?.toString() ?? '').trim().split('\n').slice(0, 2).join(' / ');
  return `exit ${r.status ?? r.signal ?? '?'}${err ? `: ${err}` : ''}`;
}

export async function runCliStart(opts: CliStartOptions): Promise<SectionResult> {
  const bin = join(opts.root, 'apps', 'cli', 'dist', 'bin.js');
  const built = existsSync(bin);
  const work = await mkdtemp(join(tmpdir(), 'keyfold-bench-cli-'));
  const baseEnv: Record<string, string> = { ...(process.env as Record<string, string>), NO_COLOR: '1' };
  delete baseEnv['KEYFOLD_DIR'];
  const kekHex = Buffer.from(await benchKey('cli-kek-v1')).toString('hex');
  const results: CliStartData['results'] = {};
  const setupErrors: Record<string, string> = {};

  const cmds: CmdDef[] = [
    { id: 'node', label: 'node -e 0', args: ['-e', '0'] },
    { id: 'help', label: 'keyfold --help', args: [bin, '--help'] },
    {
      id: 'encrypt-env',
      label: 'keyfold encrypt 1 KiB (env provider)',
      args: [bin, 'encrypt', '--dir', join(work, 'env'), '--in', join(work, 'in.bin'), '--out', join(work, 'out-env.kf')],
      env: { KEYFOLD_KEK_V1: kekHex },
    },
    {
      id: 'encrypt-file',
      label: 'keyfold encrypt 1 KiB (file provider, passphrase KDF)',
      args: [bin, 'encrypt', '--dir', join(work, 'file'), '--in', join(work, 'in.bin'), '--out', join(work, 'out-file.kf')],
      env: { KEYFOLD_PASSPHRASE: 'keyfold-bench-passphrase-not-secret' },
    },
  ];

  try {
    if (built) {
      await writeFile(join(work, 'in.bin'), randomBytes(1024));
      const inits: [string, string[], Record<string, string>][] = [
        ['encrypt-env', ['init', '--provider', 'env', '--dir', join(work, 'env')], { KEYFOLD_KEK_V1: kekHex }],
        ['encrypt-file', ['init', '--dir', join(work, 'file')], { KEYFOLD_PASSPHRASE: 'keyfold-bench-passphrase-not-secret' }],
      ];
      for (const [id, args, env] of inits) {
        const r = spawnSync(process.execPath, [bin, ...args], { cwd: work, env: { ...baseEnv, ...env } });
        if (r.status !== 0) setupErrors[id] = `init failed (${describeFailure(r)})`;
      }
    }
    const active = cmds.filter((c) => c.id === 'node' || (built && !setupErrors[c.id]));
    for (const c of cmds) {
      results[c.id] = {
        label: c.label,
        command: ['node', ...c.args.map((a) => a.replace(work, '$TMP').replace(opts.root, '.'))].join(' '),
        ...(c.id !== 'node' && !built ? { error: `not built (${bin} missing; run the build first)` } : {}),
        ...(setupErrors[c.id] ? { error: setupErrors[c.id] } : {}),
      };
    }
    const samples = new Map<string, number[]>(active.map((c) => [c.id, []]));
    // One untimed run each (file cache, page cache), then interleaved timed runs.
    for (let i = -1; i < opts.runs; i++) {
      for (const c of active) {
        if (results[c.id]!.error) continue;
        const t0 = performance.now();
        const r = spawnSync(process.execPath, c.args, { cwd: work, env: { ...baseEnv, ...(c.env ?? {}) }, stdio: ['ignore', 'pipe', 'pipe'] });
        const ms = performance.now() - t0;
        if (r.status !== 0) {
          results[c.id]!.error = describeFailure(r);
          continue;
        }
        if (i >= 0) samples.get(c.id)!.push(ms);
      }
    }
    for (const [id, s] of samples) {
      if (s.length > 0 && !results[id]!.error) {
        results[id]!.medianMs = median(s);
        results[id]!.samplesMs = s;
      }
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }

  const nodeMs = results['node']?.medianMs;
  const table: Table = {
    title: `CLI cold start: median wall time of ${opts.runs} spawns each (lower is better)`,
    columns: ['command', 'median', 'vs node -e 0'],
    rows: cmds.map((c) => {
      const r = results[c.id]!;
      if (r.medianMs === undefined) return [r.label, r.error ?? 'n/a', 'n/a'];
      return [r.label, fmtMs(r.medianMs), fmtRatio(ratio(r.medianMs, nodeMs))];
    }),
  };
  const helpVsNode = ratio(results['help']?.medianMs, nodeMs);
  const data: CliStartData = { bin, built, runs: opts.runs, results, helpVsNode };
  return {
    id: 'cli-start',
    title: '5. CLI cold start',
    notes: [
      built ? `binary: ${bin}` : `NOT BUILT: ${bin} does not exist, so only node -e 0 was measured`,
      'spawned with spawnSync from this process, one untimed run each first, then interleaved; NO_COLOR=1; ' +
        'the encrypt rows use directories made by `keyfold init` in a temp dir',
    ],
    tables: [table],
    targets: [
      evaluateTarget(
        { id: 'cli.help.vs-node', description: 'keyfold --help vs node -e 0', comparator: '<=', threshold: 1.5, unit: 'x' },
        helpVsNode,
        built ? undefined : 'CLI not built',
      ),
    ],
    data,
  };
}
