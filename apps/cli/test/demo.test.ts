import { readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyfold, makeTempDir, removeDir } from './helpers.js';

let tmp: string;
beforeAll(() => {
  tmp = makeTempDir('keyfold-demo-test-');
});
afterAll(() => removeDir(tmp));

describe('keyfold demo', () => {
  it('exits 0: 10,000 records, KEK rotation, shredded-tenant refusals, audit, summary; removes its directory', () => {
    const r = keyfold(['demo'], { env: { TMPDIR: tmp } });
    expect(r.status, r.stderr).toBe(0);
    expect(r.out).toContain('10,000 records');
    expect(r.out).toMatch(/initech: every key version destroyed; 3,333 of its records refused \[KEY_NOT_FOUND\]/);
    expect(r.out).toMatch(/opened after KEK rotation\s+10,000 of 10,000/);
    expect(r.out).toContain('refused [DECRYPT_FAILED]');
    expect(r.out).toContain('refused [CONTEXT_MISMATCH]');
    expect(r.out).toMatch(/audit log\s+\d+ entries, chain verified/);
    expect(r.out).toContain('keys/s');
    expect(r.out).toContain('KEK provider calls');
    expect(readdirSync(tmp)).toEqual([]);
  });

  it('--json prints the summary document', () => {
    const r = keyfold(['demo', '--json', '--records', '300'], { env: { TMPDIR: tmp } });
    expect(r.status, r.stderr).toBe(0);
    const s = JSON.parse(r.out);
    expect(s).toMatchObject({
      records: 300,
      sealed: 300,
      openedAfterRotation: 300,
      kekRotation: { rewrapped: 3, verified: 3 },
      tenantRotation: { tenant: 'globex', activeVersion: 2, oldRecordsOpen: true },
      shred: { tenant: 'initech', refused: 100, code: 'KEY_NOT_FOUND', othersOpen: 200 },
      audit: { ok: true },
    });
    expect(s.refused.map((x: { code: string }) => x.code)).toEqual(['DECRYPT_FAILED', 'CONTEXT_MISMATCH']);
    expect(s.tenants.find((t: { id: string }) => t.id === 'initech').shredded).toBe(true);
    expect(readdirSync(tmp)).toEqual([]);
  });

  it('--records out of range is a usage error', () => {
    expect(keyfold(['demo', '--records', '5']).status).toBe(2);
  });
});
