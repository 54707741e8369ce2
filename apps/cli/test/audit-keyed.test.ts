/**
 * The keyed audit log through the built binary (issue 13, "The audit chain must survive an attacker with write
 * access to the store", and item 9): every attack a writer without the KEK can make on the SQLite file is caught by
 * `audit verify` (exit 3, INTEGRITY_FAILED, naming the first bad entry), while `audit list` and `audit verify
 * --unkeyed` need no key access; a store written by the previous release (schema 1) is upgraded; the audit key
 * follows rotation, blocks retirement of its version, and travels in backups.
 */
import { chmodSync, cpSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditHash, type AuditEntry } from '@keyfold/keystore';
import { CLI_ROOT, keyfold, makeTempDir, PASSPHRASE, removeDir } from './helpers.js';

const KEK = { KEYFOLD_KEK_V1: 'a1'.repeat(32) };
let work: string;
/** A pristine installation (env provider) with a few audited operations; each test works on a copy. */
let pristine: string;
/** Another installation under the same KEK. */
let neighbour: string;
let n = 0;

type Json = ReturnType<typeof JSON.parse>;
/** An audit row as stored (`mac` NULL on entries written before keying, or stripped by an attacker). */
type Row = Omit<AuditEntry, 'mac'> & { mac: string | null };

function copy(from = pristine): string {
  const dir = join(work, `copy-${++n}`);
  cpSync(from, dir, { recursive: true });
  return dir;
}

function run(dir: string, args: string[], env: Record<string, string | undefined> = KEK, input?: string) {
  return keyfold([...args, '--dir', dir], { env, ...(input === undefined ? {} : { input }) });
}

function ok(dir: string, args: string[], env: Record<string, string | undefined> = KEK): Json {
  const r = run(dir, [...args, '--json'], env);
  expect(r.status, r.stderr + r.out).toBe(0);
  return JSON.parse(r.out);
}

function sql(dir: string, fn: (db: Database.Database) => void): void {
  const db = new Database(join(dir, 'keystore.db'));
  try {
    fn(db);
  } finally {
    db.close();
  }
}

function entries(dir: string): Row[] {
  let rows: Record<string, unknown>[] = [];
  sql(dir, (db) => {
    rows = db.prepare('SELECT * FROM keyfold_audit ORDER BY seq').all() as Record<string, unknown>[];
  });
  return rows.map((r) => ({
    seq: Number(r.seq),
    time: r.time as string,
    actor: r.actor as string,
    event: r.event as string,
    subject: r.subject as string,
    details: JSON.parse(r.details as string) as AuditEntry['details'],
    prevHash: r.prev_hash as string,
    hash: r.hash as string,
    mac: r.mac as string | null,
  }));
}

/** Rewrites the log as `log` with every SHA-256 hash recomputed and the head moved to its end: a keyless re-chain. */
function rechain(dir: string, log: readonly Row[]): void {
  sql(dir, (db) => {
    db.transaction(() => {
      db.prepare('DELETE FROM keyfold_audit').run();
      let prev = '0'.repeat(64);
      for (const e of log) {
        const { mac: _mac, ...fields } = e;
        const hash = auditHash({ ...fields, prevHash: prev });
        db.prepare('INSERT INTO keyfold_audit (seq, time, actor, event, subject, details, prev_hash, hash, mac) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)').run(
          e.seq,
          e.time,
          e.actor,
          e.event,
          e.subject,
          JSON.stringify(e.details),
          prev,
          hash,
          e.mac,
        );
        prev = hash;
      }
      db.prepare('UPDATE keyfold_audit_head SET seq = ?, hash = ? WHERE id = 1').run(log[log.length - 1]?.seq ?? 0, prev);
    })();
  });
}

/** `audit verify` must fail with exit 3 naming entry #seq, on stdout (--json) and as a coded line on stderr. */
function expectCaught(dir: string, kinds: readonly string[], seq: number): void {
  const r = run(dir, ['audit', 'verify']);
  expect(r.status, r.stderr + r.out).toBe(3);
  expect(r.stderr).toMatch(/^keyfold: the audit log does not verify: .*\[INTEGRITY_FAILED\]\n$/);
  expect(r.stderr).toContain(`entry #${seq}`);
  const j = run(dir, ['audit', 'verify', '--json']);
  expect(j.status).toBe(3);
  const report = JSON.parse(j.out);
  expect(report).toMatchObject({ ok: false, keyed: true, error: { code: 'INTEGRITY_FAILED' }, problem: { seq } });
  expect(kinds).toContain(report.problem.kind);
}

beforeAll(() => {
  work = makeTempDir();
  pristine = join(work, 'kf');
  neighbour = join(work, 'neighbour');
  for (const dir of [pristine, neighbour]) {
    const r = keyfold(['init', '--provider', 'env', '--dir', dir, '--json'], { env: KEK });
    expect(r.status, r.stderr).toBe(0);
  }
  for (const t of ['acme', 'globex', 'initech']) expect(run(pristine, ['tenant', 'create', '--tenant', t]).status).toBe(0);
  expect(run(pristine, ['tenant', 'rotate', '--tenant', 'acme']).status).toBe(0);
});
afterAll(() => removeDir(work));

describe('keyed audit log', () => {
  it('init keys the log: every entry carries a MAC, audit verify checks them with the KEK', () => {
    const log = entries(pristine);
    expect(log.length).toBeGreaterThanOrEqual(6);
    for (const e of log) expect(e.mac).toMatch(/^[0-9a-f]{64}$/);
    const v = ok(pristine, ['audit', 'verify']);
    expect(v).toMatchObject({ ok: true, keyed: true, keyedFrom: 1, entries: log.length, head: { seq: log.length } });
    expect(v.installation).toMatch(/^[0-9a-f]{32}$/);
    expect(v.head.mac).toMatch(/^[0-9a-f]{64}$/);
    const text = run(pristine, ['audit', 'verify']);
    expect(text.out).toContain("verify under this installation's audit key");
  });

  it('audit list and audit verify --unkeyed need no key access (no KEK in the environment)', () => {
    const noKey = {};
    const list = ok(pristine, ['audit', 'list'], noKey);
    expect(list.entries.length).toBe(entries(pristine).length);
    const v = ok(pristine, ['audit', 'verify', '--unkeyed'], noKey);
    expect(v).toMatchObject({ ok: true, keyed: false });
    expect(run(pristine, ['audit', 'verify', '--unkeyed'], noKey).out).toContain('UNKEYED');
    // The keyed check needs the KEK: without it, it is refused, not silently downgraded.
    expect(run(pristine, ['audit', 'verify'], noKey).status).not.toBe(0);
  });

  it('an edited entry', () => {
    const dir = copy();
    sql(dir, (db) => db.prepare("UPDATE keyfold_audit SET actor = 'mallory' WHERE seq = 3").run());
    expectCaught(dir, ['edited'], 3);
  });

  it('a deleted entry', () => {
    const dir = copy();
    sql(dir, (db) => db.prepare('DELETE FROM keyfold_audit WHERE seq = 4').run());
    expectCaught(dir, ['deleted'], 4);
  });

  it('two entries swapped', () => {
    const dir = copy();
    sql(dir, (db) => {
      db.prepare('UPDATE keyfold_audit SET seq = -1 WHERE seq = 3').run();
      db.prepare('UPDATE keyfold_audit SET seq = 3 WHERE seq = 4').run();
      db.prepare('UPDATE keyfold_audit SET seq = 4 WHERE seq = -1').run();
    });
    expectCaught(dir, ['reordered'], 3);
  });

  it('an entry inserted with a valid hash, the later entries renumbered and re-chained, the head moved', () => {
    const dir = copy();
    const log = entries(dir);
    const forged: Row = { ...(log[2] as Row), subject: 'tenant:evil', mac: null };
    rechain(dir, [...log.slice(0, 3), forged, ...log.slice(3)].map((e, i) => ({ ...e, seq: i + 1 })));
    expect(ok(dir, ['audit', 'verify', '--unkeyed'], {}).ok).toBe(true); // the hash chain alone is fooled
    expectCaught(dir, ['inserted', 'edited'], 4);
  });

  it('the tail deleted and every head field moved back consistently (truncation with a moved head)', () => {
    const dir = copy();
    const log = entries(dir);
    const keep = log.length - 2;
    sql(dir, (db) => {
      db.prepare('DELETE FROM keyfold_audit WHERE seq > ?').run(keep);
      db.prepare('UPDATE keyfold_audit_head SET seq = ?, hash = ? WHERE id = 1').run(keep, (log[keep - 1] as Row).hash);
    });
    expect(ok(dir, ['audit', 'verify', '--unkeyed'], {}).ok).toBe(true);
    expectCaught(dir, ['truncated'], keep + 1);
    // Moving the head MAC of an earlier head along does not help: it was never stored for that position.
    sql(dir, (db) => db.prepare('UPDATE keyfold_audit_head SET mac = (SELECT mac FROM keyfold_audit WHERE seq = ?) WHERE id = 1').run(keep));
    expectCaught(dir, ['truncated'], keep + 1);
  });

  it('the whole log re-chained with recomputed SHA-256 hashes (an edit deep in it)', () => {
    const dir = copy();
    rechain(dir, entries(dir).map((e) => (e.seq === 2 ? { ...e, subject: 'env:KEYFOLD_KEK@9' } : e)));
    expect(ok(dir, ['audit', 'verify', '--unkeyed'], {}).ok).toBe(true);
    expectCaught(dir, ['edited'], 2);
  });

  it("the audit key row (and its log) swapped for another installation's under the same KEK", () => {
    const dir = copy();
    let row: Record<string, unknown> = {};
    sql(neighbour, (db) => {
      row = db.prepare('SELECT * FROM keyfold_audit_key WHERE id = 1').get() as Record<string, unknown>;
    });
    sql(dir, (db) => db.prepare('UPDATE keyfold_audit_key SET installation = ?, wrapped = ? WHERE id = 1').run(row.installation, row.wrapped));
    expectCaught(dir, ['edited'], 1);
    // A key row that is not a wrapped key of this KEK at all: refused when the key is opened, exit 3.
    sql(dir, (db) => db.prepare("UPDATE keyfold_audit_key SET wrapped = x'00112233' WHERE id = 1").run());
    const r = run(dir, ['audit', 'verify']);
    expect(r.status).toBe(3);
    expect(r.stderr).toMatch(/audit key .*does not unwrap.*\[INTEGRITY_FAILED\]\n$/);
  });

  it('item 9: a row whose details are not JSON is INTEGRITY_FAILED (exit 3) naming the entry, for verify and list', () => {
    const dir = copy();
    sql(dir, (db) => db.prepare("UPDATE keyfold_audit SET details = '{not json' WHERE seq = 5").run());
    expectCaught(dir, ['unreadable'], 5);
    for (const args of [['audit', 'verify', '--unkeyed'], ['audit', 'list']]) {
      const r = run(dir, args, {});
      expect(r.status, r.stderr).toBe(3);
      expect(r.stderr).toMatch(/entry #5 .*\[INTEGRITY_FAILED\]\n$/);
    }
  });

  it('writes without the key are refused: a run without the KEK adds no audit entry (backup needs key access now)', () => {
    const dir = copy();
    const before = entries(dir).length;
    const out = join(work, `nokey-${n}.backup`);
    const r = run(dir, ['backup', '--out', out], {});
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/^keyfold: .*\[[A-Z_]+\]\n$/);
    expect(existsSync(out)).toBe(false);
    expect(entries(dir)).toHaveLength(before);
  });
});

describe('a store written by the previous release (schema 1, unkeyed chain)', () => {
  const fixture = join(CLI_ROOT, 'test', 'fixtures', 'store-schema-v1');

  it('is listed without a key, upgraded and keyed by the first command with the KEK, and its old entries stay anchored', () => {
    const dir = join(work, 'old');
    cpSync(fixture, dir, { recursive: true });
    // Git keeps no modes: give the copy the ones keyfold init gave the original.
    chmodSync(dir, 0o700);
    for (const f of ['config.json', 'keystore.db']) chmodSync(join(dir, f), 0o600);
    expect(ok(dir, ['audit', 'list'], {}).entries).toHaveLength(5);
    const v = ok(dir, ['audit', 'verify']);
    expect(v).toMatchObject({ ok: true, keyed: true, keyedFrom: 6, entries: 6 });
    expect(ok(dir, ['audit', 'list', '--event', 'audit.keyed']).entries[0]).toMatchObject({ seq: 6, details: { anchoredSeq: 5 } });
    expect(run(dir, ['audit', 'verify']).out).toContain('Entries #1-#5 were written before the log was keyed');
    // The tenant keys of the old store still open its envelopes.
    const sealed = run(dir, ['decrypt', '--tenant', 'acme', '--in', join(fixture, 'acme.kf')]);
    expect(sealed.status, sealed.stderr).toBe(0);
    expect(sealed.out).toBe('sealed\n');
    // Rewriting an entry from before the keying, with the whole chain recomputed, is caught at the anchor.
    const tampered = copy(dir);
    rechain(tampered, entries(tampered).map((e) => (e.seq === 3 ? { ...e, actor: 'cli:mallory' } : e)));
    expectCaught(tampered, ['edited'], 6);
  });
});

describe('the audit key through rotation, retirement and backups', () => {
  it('kek retire is refused while the audit key is on the version; kek rotate moves it; backup/restore carry it', () => {
    const dir = join(work, 'file');
    const env = { KEYFOLD_PASSPHRASE: PASSPHRASE };
    expect(keyfold(['init', '--dir', dir, '--kdf', 'scrypt'], { env }).status).toBe(0);
    expect(ok(dir, ['kek', 'add'], env)).toMatchObject({ version: '2', recordedInStore: true });
    // No data key references version 1 any more, but the audit key is still wrapped under it.
    const refused = run(dir, ['kek', 'retire', '--kek-version', '1'], env);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/still wraps the audit key.*\[POLICY_VIOLATION\]\n$/);
    expect(ok(dir, ['kek', 'verify'], env)).toMatchObject({ ok: true, auditKey: { kek: expect.stringMatching(/@1$/), ok: true } });
    expect(ok(dir, ['kek', 'rotate'], env)).toMatchObject({ ok: true, failed: [] });
    expect(ok(dir, ['audit', 'list', '--event', 'audit.rewrap'], env).entries).toHaveLength(1);
    expect(ok(dir, ['kek', 'verify'], env)).toMatchObject({ ok: true, auditKey: { kek: expect.stringMatching(/@2$/), ok: true } });
    expect(ok(dir, ['kek', 'retire', '--kek-version', '1'], env)).toMatchObject({ ok: true, state: 'retired' });
    const before = ok(dir, ['audit', 'verify'], env);
    expect(before).toMatchObject({ ok: true, keyed: true });

    const backup = join(work, 'file.backup');
    expect(ok(dir, ['backup', '--out', backup], env).ok).toBe(true);
    const restored = join(work, 'restored');
    cpSync(dir, restored, { recursive: true });
    for (const s of ['', '-wal', '-shm']) if (existsSync(join(restored, `keystore.db${s}`))) removeDir(join(restored, `keystore.db${s}`));
    expect(ok(restored, ['restore', '--in', backup], env).ok).toBe(true);
    const after = ok(restored, ['audit', 'verify'], env);
    expect(after).toMatchObject({ ok: true, keyed: true, installation: before.installation });
    expect(after.entries).toBe(before.entries + 2); // store.backup, store.restore
  });
});
