/**
 * One streaming contender, one message: pattern source -> seal -> open -> verifying sink. Meant to run alone in
 * a child process (see `stream-child.ts`) so its RSS is its own.
 * @module
 */
import { performance } from 'node:perf_hooks';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createEsdkStreamPair, type EsdkSuite } from './contenders/esdk.js';
import { createKeyfoldStreamPair } from './contenders/keyfold.js';
import { createRawStreamPair } from './contenders/raw.js';
import type { StreamPair } from './contenders/types.js';
import { makePattern, patternSource, verifyingSink } from './pattern.js';

export type StreamSpec =
  | { readonly kind: 'raw' }
  | { readonly kind: 'keyfold' }
  | { readonly kind: 'esdk'; readonly suite: EsdkSuite; readonly frameLength?: number; readonly slow?: boolean };

export interface StreamCaseResult {
  readonly id: string;
  readonly label: string;
  /** Plaintext bytes through seal -> open in the timed run. */
  readonly bytes: number;
  readonly ms: number;
  /** Plaintext MB/s (10^6 bytes per second) of the whole seal -> open round trip. */
  readonly mbPerSec: number;
  /** CPU time of the child (user + system, all threads) during the timed run, ms. */
  readonly cpuMs: number;
  /** Plaintext MB per CPU-second: insensitive to other processes on a busy machine. */
  readonly mbPerCpuSec: number;
  /** RSS after warm-up and a GC, before the timed run. */
  readonly baselineRss: number;
  /** Highest sampled RSS during the timed run. */
  readonly peakRss: number;
  /** peakRss - baselineRss. */
  readonly rssGrowth: number;
  /** Every output byte was compared with the input and matched. */
  readonly verified: boolean;
}

export function makeStreamPair(spec: StreamSpec): Promise<StreamPair> {
  switch (spec.kind) {
    case 'raw':
      return createRawStreamPair();
    case 'keyfold':
      return createKeyfoldStreamPair({ cache: false });
    case 'esdk':
      return createEsdkStreamPair({
        suite: spec.suite,
        cache: false,
        ...(spec.frameLength !== undefined ? { frameLength: spec.frameLength } : {}),
      });
  }
}

async function once(pair: StreamPair, pattern: Buffer, bytes: number, onChunk?: () => void): Promise<void> {
  const { seal, open } = pair.pair();
  await pipeline(patternSource(bytes, pattern), seal, open, verifyingSink(pattern, bytes, onChunk));
}

/** Full GCs with turns of the event loop between them, so freed buffers' memory is really released. */
async function settle(): Promise<void> {
  const g = (globalThis as { gc?: () => void }).gc;
  for (let i = 0; i < 3; i++) {
    g?.();
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Runs one warm-up message of `warmupBytes`, then times one message of `bytes`, sampling RSS throughout. */
export async function runStreamCase(spec: StreamSpec, bytes: number, warmupBytes: number): Promise<StreamCaseResult> {
  const pair = await makeStreamPair(spec);
  const pattern = makePattern();
  try {
    if (warmupBytes > 0) await once(pair, pattern, warmupBytes);
    await settle();
    const baselineRss = process.memoryUsage.rss();
    let peakRss = baselineRss;
    const sample = (): void => {
      const r = process.memoryUsage.rss();
      if (r > peakRss) peakRss = r;
    };
    let chunks = 0;
    const timer = setInterval(sample, 10);
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    try {
      await once(pair, pattern, bytes, () => {
        if ((++chunks & 31) === 0) sample();
      });
    } finally {
      clearInterval(timer);
    }
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const cpuMs = (cpu.user + cpu.system) / 1000;
    sample();
    return {
      id: pair.id,
      label: pair.label,
      bytes,
      ms,
      mbPerSec: bytes / 1e6 / (ms / 1000),
      cpuMs,
      mbPerCpuSec: bytes / 1e6 / (cpuMs / 1000),
      baselineRss,
      peakRss,
      rssGrowth: peakRss - baselineRss,
      verified: true,
    };
  } finally {
    await pair.close();
  }
}

/** Seal-only and open-only figures of one contender (each direction alone on the thread). */
export interface StreamPhaseResult {
  readonly id: string;
  readonly label: string;
  /** Plaintext bytes sealed in the timed seal-only run. */
  readonly sealBytes: number;
  readonly sealMbPerSec: number;
  readonly sealMbPerCpuSec: number;
  /** Plaintext bytes opened in the timed open-only run (the sealed message is held in memory, so capped). */
  readonly openBytes: number;
  readonly openMbPerSec: number;
  readonly openMbPerCpuSec: number;
  /** The open-only output was compared byte for byte with the input and matched. */
  readonly verified: boolean;
}

/** The open-only message is sealed into memory first; at most this many plaintext bytes. */
export const OPEN_ONLY_MAX_BYTES = 256 * 2 ** 20;

/** A sink that only counts (the seal-only run's output goes nowhere). */
function countingSink(): Writable & { readonly count: () => number } {
  let n = 0;
  const w = new Writable({
    write(chunk: Buffer, _enc, cb) {
      n += chunk.length;
      cb();
    },
  });
  return Object.assign(w, { count: () => n });
}

async function timed(fn: () => Promise<void>): Promise<{ ms: number; cpuMs: number }> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await fn();
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { ms, cpuMs: (cpu.user + cpu.system) / 1000 };
}

/**
 * Seal-only: pattern source -> seal -> counting sink, `bytes` of plaintext. Open-only: a message of
 * min(bytes, {@link OPEN_ONLY_MAX_BYTES}) sealed (untimed) into memory, then fed to the open side -> verifying sink.
 * A warm-up message of `warmupBytes` through both first.
 */
export async function runStreamPhases(spec: StreamSpec, bytes: number, warmupBytes: number): Promise<StreamPhaseResult> {
  const pair = await makeStreamPair(spec);
  const pattern = makePattern();
  try {
    if (warmupBytes > 0) await once(pair, pattern, warmupBytes);
    await settle();
    const sealSink = countingSink();
    const seal = await timed(() => pipeline(patternSource(bytes, pattern), pair.pair().seal, sealSink));
    await settle();
    const openBytes = Math.min(bytes, OPEN_ONLY_MAX_BYTES);
    const { seal: sealer, open } = pair.pair();
    const sealed: Buffer[] = [];
    await pipeline(
      patternSource(openBytes, pattern),
      sealer,
      new Writable({
        write(chunk: Buffer, _enc, cb) {
          sealed.push(chunk);
          cb();
        },
      }),
    );
    await settle();
    const sink = verifyingSink(pattern, openBytes);
    const opened = await timed(() => pipeline(Readable.from(sealed), open, sink));
    return {
      id: pair.id,
      label: pair.label,
      sealBytes: bytes,
      sealMbPerSec: bytes / 1e6 / (seal.ms / 1000),
      sealMbPerCpuSec: bytes / 1e6 / (seal.cpuMs / 1000),
      openBytes,
      openMbPerSec: openBytes / 1e6 / (opened.ms / 1000),
      openMbPerCpuSec: openBytes / 1e6 / (opened.cpuMs / 1000),
      verified: sink.received() === openBytes,
    };
  } finally {
    await pair.close();
  }
}
