/**
 * `npm run bench` -> `node tooling/bench/dist/run.js [--quick] [--only SECTION[,SECTION]] [--json PATH]`
 *
 * Prints the tables and writes the JSON report (default tooling/bench/results/latest.json).
 * @module
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadReport, renderComparison } from './compare.js';
import { getGc } from './measure.js';
import { buildReport, machineInfo, renderReport, SECTION_IDS, writeJson, type SectionId, type SectionResult } from './report.js';
import { runCliStart } from './sections/cli-start.js';
import { runGcpAzure } from './sections/gcp-azure.js';
import { runKmsProviders } from './sections/kms-providers.js';
import { runPkcs11Section } from './sections/pkcs11.js';
import { runRotation } from './sections/rotation.js';
import { runOverhead } from './sections/overhead.js';
import { runProviderCalls } from './sections/provider-calls.js';
import { ROUNDTRIP_CONTENDERS, runRoundtrip } from './sections/roundtrip.js';
import { runStreaming, STREAM_SPECS, streamSpecId } from './sections/streaming.js';

const here = dirname(fileURLToPath(import.meta.url));
const benchDir = resolve(here, '..');
const root = resolve(benchDir, '..', '..');

const USAGE = `usage: node tooling/bench/dist/run.js [--quick] [--only SECTION[,SECTION...]] [--json PATH] [--compare BASE.json [--with NEW.json]]

  --quick        short time budgets, 64 MiB streams, 10,000 seals scaled (finishes in under a minute)
  --only LIST    run only these sections: ${SECTION_IDS.join(', ')}
  --json PATH    where to write the JSON report (default: tooling/bench/results/latest.json)
  --compare BASE.json
                 after the run, print its ratios beside those of a saved run (base, this, this / base)
  --with NEW.json
                 with --compare: run nothing, compare two saved runs (BASE.json and NEW.json)
  --contenders LIST
                 roundtrip and streaming: only these contender ids (e.g. raw,keyfold to profile them);
                 roundtrip ids: ${ROUNDTRIP_CONTENDERS.map((c) => c.id).join(', ')}
                 streaming ids: ${STREAM_SPECS.map(streamSpecId).join(', ')}
`;

interface Args {
  quick: boolean;
  only: SectionId[];
  json: string;
  contenders?: string[];
  compare?: string;
  with?: string;
}

function parse(argv: string[]): Args {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string', multiple: true },
      json: { type: 'string' },
      contenders: { type: 'string', multiple: true },
      compare: { type: 'string' },
      with: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const only = (values.only ?? []).flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean);
  for (const s of only) {
    if (!(SECTION_IDS as readonly string[]).includes(s)) throw new RangeError(`--only: unknown section "${s}"; one of ${SECTION_IDS.join(', ')}`);
  }
  const contenders = (values.contenders ?? []).flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean);
  const known = new Set([...ROUNDTRIP_CONTENDERS.map((c) => c.id), ...STREAM_SPECS.map(streamSpecId)]);
  for (const c of contenders) {
    if (!known.has(c)) throw new RangeError(`--contenders: unknown contender "${c}"; one of ${[...known].join(', ')}`);
  }
  if (values.with !== undefined && values.compare === undefined) throw new RangeError('--with needs --compare BASE.json');
  return {
    ...(values.compare !== undefined ? { compare: resolve(values.compare) } : {}),
    ...(values.with !== undefined ? { with: resolve(values.with) } : {}),
    quick: values.quick,
    only: only.length > 0 ? (only as SectionId[]) : [...SECTION_IDS],
    json: values.json ? resolve(values.json) : join(benchDir, 'results', 'latest.json'),
    ...(contenders.length > 0 ? { contenders } : {}),
  };
}

async function main(): Promise<void> {
  let args: Args;
  try {
    args = parse(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n\n${USAGE}`);
    process.exit(2);
  }
  const base = args.compare !== undefined ? loadReport(args.compare) : undefined;
  if (base && args.with !== undefined) {
    process.stdout.write(renderComparison(base, loadReport(args.with), args.compare!, args.with));
    return;
  }
  const { quick } = args;
  const startedAt = new Date();
  // The machine (and its load average) as the run starts, not as it ends.
  const machine = machineInfo();
  const childEntry = join(here, 'stream-child.js');
  const gc = await getGc();
  const runners: Record<SectionId, () => Promise<SectionResult>> = {
    roundtrip: () =>
      runRoundtrip({
        ...(quick ? { warmupMs: 50, sliceMs: 30, rounds: 5 } : { warmupMs: 300, sliceMs: 120, rounds: 15 }),
        ...(gc ? { gc } : {}),
        ...(args.contenders ? { contenders: args.contenders } : {}),
      }),
    streaming: () =>
      runStreaming({
        bytes: quick ? 64 * 2 ** 20 : 2 ** 30,
        warmupBytes: quick ? 8 * 2 ** 20 : 32 * 2 ** 20,
        passes: quick ? 1 : 3,
        ...(existsSync(childEntry) ? { childEntry } : {}),
        ...(args.contenders ? { specs: STREAM_SPECS.filter((s) => args.contenders!.includes(streamSpecId(s))) } : {}),
      }),
    overhead: () => runOverhead(),
    'provider-calls': () => runProviderCalls({ messages: quick ? 10_000 : 100_000 }),
    'cli-start': () => runCliStart({ root, runs: quick ? 5 : 15 }),
    'kms-providers': () => runKmsProviders({ quick }),
    'gcp-azure': () => runGcpAzure(quick ? { warmupMs: 100, sliceMs: 300, rounds: 1 } : { warmupMs: 300, sliceMs: 1000, rounds: 3 }),
    pkcs11: () =>
      runPkcs11Section(quick ? { warmupMs: 100, sliceMs: 100, rounds: 3 } : { warmupMs: 500, sliceMs: 400, rounds: 7 }),
    rotation: () => runRotation({ keys: quick ? 100_000 : 1_000_000, quick }),
  };
  const sections: SectionResult[] = [];
  for (const id of args.only) {
    const t0 = Date.now();
    process.stderr.write(`bench: ${id}${quick ? ' (quick)' : ''} ...`);
    sections.push(await runners[id]());
    process.stderr.write(` ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  }
  const report = buildReport(quick ? 'quick' : 'full', startedAt, sections, machine);
  process.stdout.write(`\n${renderReport(report)}`);
  await writeJson(args.json, report);
  process.stdout.write(`JSON report: ${args.json}\n`);
  if (base) process.stdout.write(`\n${renderComparison(base, report, args.compare!, args.json)}`);
}

main().catch((err: unknown) => {
  process.stderr.write(`\nbench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
