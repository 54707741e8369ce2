/**
 * Issue 13, item 6: input decoded in memory is bounded. Armor (`decrypt`, `inspect`) at most 64 MiB, `encrypt
 * --armor` at most 47 MiB of plaintext, `secrets` files and values at most 16 MiB: one byte more is LIMIT_EXCEEDED,
 * exit 1, with the limit in the message, from a file (refused from its size) and from stdin (refused while reading).
 * The inputs are generated here, one byte over each bound.
 */
import { closeSync, openSync, writeSync, ftruncateSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, removeDir } from './helpers.js';
import { installation, oneCodedLine, tempFiles } from './output-paths.js';

const MiB = 1024 * 1024;
const ARMOR_LIMIT = 64 * MiB;
const ARMOR_PLAINTEXT_LIMIT = 47 * MiB;
const SECRETS_LIMIT = 16 * MiB;

let work: string;
let run: ReturnType<typeof installation>;

/** `bytes` of armor-looking text: `kf1.` then base64url characters (not a valid envelope, never parsed that far). */
function armorOf(bytes: number): Buffer {
  const buf = Buffer.alloc(bytes, 'A');
  buf.write('kf1.', 0, 'latin1');
  return buf;
}

/** A file of `bytes` whose content starts with `head` (the rest: a sparse run of zeros, cheap to create). */
function fileOf(name: string, bytes: number, head: string): string {
  const fd = openSync(join(work, name), 'w');
  try {
    writeSync(fd, head);
    ftruncateSync(fd, bytes);
  } finally {
    closeSync(fd);
  }
  return name;
}

beforeAll(() => {
  work = makeTempDir();
  run = installation(work);
});
afterAll(() => removeDir(work));

function expectLimit(r: { status: number | null; stderr: string }, limit: number): void {
  expect(oneCodedLine(r.stderr)).toBe('LIMIT_EXCEEDED');
  expect(r.stderr).toContain(limit.toLocaleString('en-US'));
  expect(r.status).toBe(1);
}

describe('armored input is bounded at 64 MiB', () => {
  it('decrypt and inspect from stdin: one byte over the bound is LIMIT_EXCEEDED (exit 1), stdout and --out', () => {
    const input = armorOf(ARMOR_LIMIT + 1);
    expectLimit(run(['decrypt'], { input }), ARMOR_LIMIT);
    expectLimit(run(['decrypt', '--out', 'armor.out'], { input }), ARMOR_LIMIT);
    expectLimit(run(['inspect'], { input }), ARMOR_LIMIT);
    expect(tempFiles(work)).toEqual([]);
  });

  it('decrypt and inspect of a file one byte over: refused from its size', () => {
    const file = fileOf('big.kf1', ARMOR_LIMIT + 1, 'kf1.');
    expectLimit(run(['decrypt', '--in', file]), ARMOR_LIMIT);
    expectLimit(run(['decrypt', '--in', file, '--out', 'armor.out']), ARMOR_LIMIT);
    expectLimit(run(['inspect', '--in', file]), ARMOR_LIMIT);
    expect(tempFiles(work)).toEqual([]);
  });

  it('encrypt --armor refuses more than 47 MiB of plaintext (its armor would exceed what decrypt reads)', () => {
    const file = fileOf('big.plain', ARMOR_PLAINTEXT_LIMIT + 1, 'x');
    expectLimit(run(['encrypt', '--armor', '--in', file]), ARMOR_PLAINTEXT_LIMIT);
    expectLimit(run(['encrypt', '--armor', '--in', file, '--out', 'big.kf1']), ARMOR_PLAINTEXT_LIMIT);
    expect(tempFiles(work)).toEqual([]);
  });
});

describe('secrets files are bounded at 16 MiB', () => {
  it('decrypt, encrypt and status of a file one byte over: LIMIT_EXCEEDED, file untouched', () => {
    const file = fileOf('huge.env', SECRETS_LIMIT + 1, 'A=b\n#');
    for (const args of [['secrets', 'decrypt', file], ['secrets', 'encrypt', file], ['secrets', 'encrypt', file, '--in-place'], ['secrets', 'status', file]]) {
      expectLimit(run(args), SECRETS_LIMIT);
    }
    expect(tempFiles(work)).toEqual([]);
  });

  it('secrets set --stdin with a value over the bound: LIMIT_EXCEEDED', () => {
    const small = 'A=b\n';
    const r0 = run(['secrets', 'encrypt', fileOf('small.env', small.length, small), '--in-place']);
    expect(r0.status, r0.stderr).toBe(0);
    expectLimit(run(['secrets', 'set', 'small.env', 'A', '--stdin'], { input: Buffer.alloc(SECRETS_LIMIT + 1, 'v') }), SECRETS_LIMIT);
  });
});
