/**
 * Issue 13, item 4: values from an envelope header (wrapped-key kind, key id, version, context) never reach the
 * terminal raw, in errors (stderr), in `--json` documents or in `inspect`'s text. A crafted envelope below carries
 * ESC sequences (clear screen, window title), BEL, CR/LF and a forged `keyfold: all good` line, an 8-bit CSI (C1) and
 * a bidi override in each of those fields.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createEnvelope, type KeyProvider } from '@keyfold/envelope-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, removeDir } from './helpers.js';
import { installation, oneCodedLine, tempFiles } from './output-paths.js';

const EVIL = '\u001b[2J\u001b]0;pwned\u0007\r\nkeyfold: all good [OK]\n\u009b31m\u202eevil\u0085';

/** Every character that must never reach a terminal raw; `\n` is allowed only where the output itself breaks lines. */
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

let work: string;
let run: ReturnType<typeof installation>;

/** A provider that writes the hostile strings into the header it wraps for (the key itself is irrelevant here). */
function hostileProvider(): KeyProvider {
  return {
    kind: `kind${EVIL}`,
    keyId: `id${EVIL}`,
    protection: 'memory',
    wrapKey: (dataKey) => Promise.resolve({ kind: `kind${EVIL}`, keyId: `id${EVIL}`, keyVersion: `v${EVIL}`, ciphertext: Uint8Array.from(dataKey) }),
    unwrapKey: (wrapped) => Promise.resolve(Uint8Array.from(wrapped.ciphertext)),
    describe: () => Promise.reject(new Error('unused')),
    probe: () => Promise.reject(new Error('unused')),
    close: () => Promise.resolve(),
  };
}

beforeAll(async () => {
  work = makeTempDir();
  run = installation(work);
  const envelope = createEnvelope({ providers: [hostileProvider()], policy: { securityMode: 'development' } });
  const context = { [`key${EVIL}`]: `value${EVIL}` };
  writeFileSync(join(work, 'evil.kf'), await envelope.seal(new TextEncoder().encode('payload'), context));
  writeFileSync(join(work, 'evil.kf1'), `${await envelope.sealToString(new TextEncoder().encode('payload'), context)}\n`);
});
afterAll(() => removeDir(work));

function expectNoRawControl(text: string): void {
  expect(RAW_CONTROL.exec(text), `raw control character in ${JSON.stringify(text)}`).toBeNull();
  expect(text).not.toMatch(/^keyfold: all good/m);
}

describe('decrypt of a crafted envelope', () => {
  for (const file of ['evil.kf', 'evil.kf1']) {
    it(`${file}: stdout and --out print one escaped [NO_PROVIDER] line`, () => {
      for (const out of [[], ['--out', 'evil.out']]) {
        const r = run(['decrypt', '--in', file, ...out]);
        expect(r.status).toBe(1);
        expect(oneCodedLine(r.stderr)).toBe('NO_PROVIDER');
        expectNoRawControl(r.stderr);
        // The operator still sees what the envelope claims, escaped.
        expect(r.stderr).toContain('kind\\u001b[2J\\u001b]0;pwned\\u0007\\u000d\\u000akeyfold: all good');
        expect(r.stderr).toContain('\\u009b31m\\u202eevil\\u0085');
      }
      expect(tempFiles(work)).toEqual([]);
    });
  }

  it('wrong --context naming a hostile key: one escaped line', () => {
    const r = run(['decrypt', '--in', 'evil.kf', '--context', 'other=1']);
    expect(r.status).toBe(3);
    oneCodedLine(r.stderr);
    expectNoRawControl(r.stderr);
  });

  it('--json: one JSON document whose text has no raw control, C1 or bidi character and whose value is intact', () => {
    const r = run(['decrypt', '--in', 'evil.kf', '--out', 'evil.out', '--json']);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe('');
    expectNoRawControl(r.out.replace(/\n$/, ''));
    const doc = JSON.parse(r.out) as { error: { code: string; message: string } };
    expect(doc.error.code).toBe('NO_PROVIDER');
    expect(doc.error.message).toContain(`kind${EVIL}`);
  });
});

describe('inspect of a crafted envelope', () => {
  it('text and --json: every header value escaped, the table keeps its lines, JSON values intact', () => {
    for (const file of ['evil.kf', 'evil.kf1']) {
      const r = run(['inspect', '--in', file]);
      expect(r.status, r.stderr).toBe(0);
      expectNoRawControl(r.out);
      expect(r.out).toContain('id\\u001b[2J');
      expect(r.out.split('\n').filter((l) => l.startsWith('kind')).length).toBe(2); // table header + the one key row

      const j = run(['inspect', '--in', file, '--json']);
      expect(j.status, j.stderr).toBe(0);
      expect(RAW_CONTROL.exec(j.out)).toBeNull();
      const info = JSON.parse(j.out) as { wrappedKeys: { kind: string; keyId: string; keyVersion: string }[]; context: Record<string, string> };
      expect(info.wrappedKeys[0]).toMatchObject({ kind: `kind${EVIL}`, keyId: `id${EVIL}`, keyVersion: `v${EVIL}` });
      expect(info.context[`key${EVIL}`]).toBe(`value${EVIL}`);
    }
  });
});

describe('a configuration file with hostile values', () => {
  it('status and encrypt: every line and JSON document free of raw control, C1 and bidi characters', () => {
    const path = join(work, 'kf', 'config.json');
    const original = readFileSync(path, 'utf8');
    try {
      const config = JSON.parse(original) as { provider: { keyId: string } };
      config.provider.keyId = `KEYFOLD_KEK${EVIL}`;
      writeFileSync(path, JSON.stringify(config));
      for (const args of [['status'], ['status', '--json'], ['encrypt', '--out', 'cfg.kf'], ['encrypt', '--out', 'cfg.kf', '--json']]) {
        const r = run(args, { input: 'x' });
        expect(r.status, r.stderr).not.toBe(0);
        expectNoRawControl(r.stderr);
        expectNoRawControl(r.out.replace(/\n$/, ''));
        if (args.includes('--json')) {
          expect((JSON.parse(r.out) as { error: { message: string } }).error.message).toMatch(/KEYFOLD_KEK.*pwned.*all good/);
        } else {
          oneCodedLine(r.stderr);
        }
      }
    } finally {
      writeFileSync(path, original);
    }
  });
});
