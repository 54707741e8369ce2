import { readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyfold, makeTempDir, removeDir } from './helpers.js';

let tmp: string;
beforeAll(() => {
  tmp = makeTempDir('keyfold-demo-test-');
});
afterAll(() => removeDir(tmp));

describe('keyfold demo', () => {
  it('exits 0, shows the tamper and context refusals and the summary, and removes its directory', () => {
    const r = keyfold(['demo'], { env: { TMPDIR: tmp } });
    expect(r.status, r.stderr).toBe(0);
    expect(r.out).toContain('refused [DECRYPT_FAILED]');
    expect(r.out).toContain('refused [CONTEXT_MISMATCH]');
    expect(r.out).toMatch(/records sealed\s+5/);
    expect(r.out).toMatch(/records opened\s+5/);
    expect(r.out).toContain('provider calls');
    expect(r.out).toContain('cache (encrypt)');
    expect(readdirSync(tmp)).toEqual([]);
  });

  it('--json prints the summary document', () => {
    const r = keyfold(['demo', '--json'], { env: { TMPDIR: tmp } });
    expect(r.status, r.stderr).toBe(0);
    const s = JSON.parse(r.out);
    expect(s).toMatchObject({ records: 5, sealed: 5, opened: 5 });
    expect(s.refused.map((x: { code: string }) => x.code)).toEqual(['DECRYPT_FAILED', 'CONTEXT_MISMATCH']);
    expect(s.overheadBytes).toBe(s.envelopeBytes - s.plaintextBytes);
    expect(s.stats.cache.encryptHits).toBeGreaterThan(0);
    expect(readdirSync(tmp)).toEqual([]);
  });
});
