/**
 * The KeyStore conformance suite: the rules every `@keyfold/keystore` `KeyStore` implementation obeys (DESIGN.md
 * "Key store, tenants, rotation"). Both `SqliteKeyStore` and `PostgresKeyStore` run it.
 *
 * The store is described here by the shape of the calls the checks make ({@link ConformanceKeyStore}), so this
 * package does not depend on `@keyfold/keystore` (which depends on it for its tests). The checks use fake wrapped
 * keys: a store never does cryptography, it keeps wrapped material and proves its writes are atomic,
 * compare-and-swap, leased exactly once, and audited in an unbroken hash chain. With the `keyed` hook (a real
 * KeyProvider) the `keyed audit tampering` check proves the keyed chain catches what a writer without the KEK can do.
 * @module
 */
import { randomBytes } from 'node:crypto';
import type { KeyProvider, KeyfoldErrorCode, WrappedKey } from '@keyfold/envelope-core';
import { ConformanceError, describeError, ensure, expectKeyfoldError, fail, isKeyfoldErrorLike } from './assert.js';
import type { DescribeFunction, ItFunction } from './run.js';

type Json = string | number | boolean | null | readonly Json[] | { readonly [k: string]: Json };

/** A data key as a store returns it. */
export interface ConformanceDataKey {
  readonly id: string;
  readonly owner: string;
  readonly version: number;
  readonly state: 'active' | 'retired' | 'destroyed';
  readonly wrapped: WrappedKey | undefined;
  readonly keyCheck: Uint8Array | undefined;
  readonly revision: number;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** An audit entry as a store returns it. */
export interface ConformanceAuditEntry {
  readonly seq: number;
  readonly time: string;
  readonly actor: string;
  readonly event: string;
  readonly subject: string;
  readonly details: { readonly [k: string]: Json };
  readonly prevHash: string;
  readonly hash: string;
  readonly mac?: string;
}

interface Ref {
  readonly kind: string;
  readonly keyId: string;
}
interface Kek extends Ref {
  readonly version: string;
}
interface AuditIn {
  readonly actor: string;
  readonly event: string;
  readonly subject: string;
  readonly details?: { readonly [k: string]: Json };
}
interface NewKey {
  readonly id: string;
  readonly owner: string;
  readonly version: number;
  readonly wrapped: WrappedKey;
  readonly keyCheck: Uint8Array;
}
interface Lease {
  readonly keys: readonly ConformanceDataKey[];
  commit(
    updates: readonly { readonly id: string; readonly revision: number; readonly wrapped: WrappedKey }[],
    options?: {
      readonly checkpoint?: { readonly name: string; readonly cursor: string | undefined; readonly processedDelta: number };
      readonly audit?: (applied: readonly string[]) => AuditIn | undefined;
    },
  ): Promise<{ readonly applied: readonly string[]; readonly conflicts: readonly string[] }>;
  release(): Promise<void>;
}
interface Verification {
  readonly ok: boolean;
  readonly keyed?: boolean;
  readonly entries: number;
  readonly problem?: { readonly kind: string; readonly seq: number; readonly message: string };
}

/**
 * The calls the checks make: a structural subset of `@keyfold/keystore`'s `KeyStore`.
 * @example
 * ```ts
 * const store: ConformanceKeyStore = await openSqliteKeyStore({ path });
 * ```
 */
export interface ConformanceKeyStore {
  readonly backend: string;
  readonly location: string;
  getInstallLock(): Promise<(Ref & { readonly createdAt: string }) | undefined>;
  ensureInstallLock(provider: Ref | KeyProvider, actor?: string): Promise<Ref>;
  changeInstallLock(from: Ref, to: Ref, actor: string): Promise<Ref>;
  listKekVersions(filter?: Ref): Promise<readonly (Kek & { readonly state: string })[]>;
  recordKekVersion(kek: Kek, options: { readonly activate: boolean; readonly actor: string }): Promise<Kek & { readonly state: string }>;
  retireKekVersion(kek: Kek, actor: string): Promise<Kek & { readonly state: string }>;
  getActiveKekVersion(kek: Ref): Promise<(Kek & { readonly state: string }) | undefined>;
  activateKekVersion(kek: Kek, actor: string): Promise<{ readonly from: string | undefined; readonly record: Kek & { readonly state: string }; readonly changed: boolean }>;
  insertDataKeys(keys: readonly NewKey[], audit?: AuditIn): Promise<void>;
  addDataKeyVersion(owner: string, key: Omit<NewKey, 'owner'>, audit: AuditIn): Promise<ConformanceDataKey>;
  getDataKey(id: string): Promise<ConformanceDataKey | undefined>;
  findDataKey(owner: string, version?: number): Promise<ConformanceDataKey | undefined>;
  listDataKeys(options?: { readonly owner?: string; readonly after?: string; readonly limit?: number; readonly kek?: Ref & { readonly version?: string } }): Promise<readonly ConformanceDataKey[]>;
  countDataKeys(filter?: { readonly owner?: string; readonly states?: readonly ('active' | 'retired' | 'destroyed')[]; readonly kek?: Ref & { readonly version?: string } }): Promise<number>;
  updateDataKey(id: string, expectedRevision: number, change: { readonly state?: 'active' | 'retired' | 'destroyed'; readonly wrapped?: WrappedKey | null }, audit?: AuditIn): Promise<ConformanceDataKey | undefined>;
  destroyOwner(owner: string, audit: AuditIn): Promise<number>;
  leaseForRewrap(request: { readonly target: Kek; readonly after?: string; readonly limit: number }): Promise<Lease>;
  getCheckpoint(name: string): Promise<{ readonly name: string; readonly cursor: string | undefined; readonly processed: number } | undefined>;
  saveCheckpoint(update: { readonly name: string; readonly cursor: string | undefined; readonly processedDelta: number; readonly processed?: number }): Promise<unknown>;
  deleteCheckpoint(name: string): Promise<void>;
  appendAudit(input: AuditIn): Promise<ConformanceAuditEntry>;
  listAudit(query?: { readonly after?: number; readonly limit?: number; readonly event?: string }): Promise<readonly ConformanceAuditEntry[]>;
  auditHead(): Promise<{ readonly seq: number; readonly hash: string; readonly mac?: string }>;
  verifyAudit(): Promise<Verification>;
  getAuditKey?(): Promise<{ readonly installation: string; readonly keyedFrom: number; readonly wrapped: WrappedKey } | undefined>;
  close(): Promise<void>;
}

/**
 * What a store implementation hands to the suite.
 * @example
 * ```ts
 * const target: KeyStoreConformanceTarget = { makeStore: () => openSqliteKeyStore({ path: freshPath(), create: true }) };
 * ```
 */
export interface KeyStoreConformanceTarget {
  /** Makes a new, empty store (a new file, a new schema). The suite closes it. */
  readonly makeStore: () => ConformanceKeyStore | Promise<ConformanceKeyStore>;
  /**
   * Runs one SQL statement against the store's tables, bypassing the store (as an attacker with database access
   * would). `?` marks parameters. Unlocks the `audit tampering` check.
   */
  readonly execute?: (store: ConformanceKeyStore, sql: string, params: readonly unknown[]) => Promise<void>;
  /**
   * Unlocks the `keyed audit tampering` check (which needs `execute` too): a real KEK provider to lock the store
   * with (so its audit log is keyed), and the store's entry hash function, so the check can re-chain a log with
   * valid hashes as an attacker without the KEK would.
   */
  readonly keyed?: {
    readonly makeProvider: () => KeyProvider | Promise<KeyProvider>;
    readonly auditHash: (entry: Omit<ConformanceAuditEntry, 'hash' | 'mac'>) => string;
  };
}

/**
 * Names of the checks in {@link keyStoreChecks}.
 * @example
 * ```ts
 * const name: KeyStoreCheckName = 'compare-and-swap';
 * ```
 */
export type KeyStoreCheckName =
  | 'install lock'
  | 'KEK registry'
  | 'KEK pointer'
  | 'data keys'
  | 'compare-and-swap'
  | 'key versions and destruction'
  | 'rewrap lease'
  | 'exactly once under concurrent leases'
  | 'checkpoints'
  | 'audit chain'
  | 'audit tampering'
  | 'keyed audit tampering'
  | 'close';

/**
 * One KeyStore check.
 * @example
 * ```ts
 * for (const check of keyStoreChecks) console.log(`${check.name}: ${check.rule}`);
 * ```
 */
export interface KeyStoreCheck {
  readonly name: KeyStoreCheckName;
  readonly rule: string;
  readonly requires?: 'execute' | 'keyed';
  run(target: KeyStoreConformanceTarget): Promise<void>;
}

const ACTOR = 'conformance';
const KEK_A: Kek = { kind: 'env', keyId: 'KEYFOLD_KEK', version: '1' };
const KEK_B: Kek = { kind: 'env', keyId: 'KEYFOLD_KEK', version: '2' };

function fakeWrapped(kek: Kek): WrappedKey {
  return { kind: kek.kind, keyId: kek.keyId, keyVersion: kek.version, ciphertext: new Uint8Array(randomBytes(60)) };
}

function fakeKey(id: string, owner: string, version: number, kek: Kek = KEK_A): NewKey {
  return { id, owner, version, wrapped: fakeWrapped(kek), keyCheck: new Uint8Array(randomBytes(16)) };
}

function same(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return Buffer.from(a).equals(Buffer.from(b));
}

async function withStore(target: KeyStoreConformanceTarget, fn: (store: ConformanceKeyStore) => Promise<void>): Promise<void> {
  const store = await target.makeStore();
  ensure(store !== null && typeof store === 'object' && typeof store.insertDataKeys === 'function', 'makeStore must return a KeyStore');
  try {
    await fn(store);
  } finally {
    await store.close().catch(() => undefined);
  }
}

async function expectCode(action: () => Promise<unknown>, code: KeyfoldErrorCode, what: string): Promise<Error> {
  return expectKeyfoldError(action, code, what);
}

async function expectTypeError(action: () => Promise<unknown>, what: string): Promise<void> {
  try {
    await action();
  } catch (err) {
    if (err instanceof TypeError || err instanceof RangeError) return;
    fail(`${what} must fail with TypeError or RangeError; it failed with ${describeError(err)}`, err);
  }
  fail(`${what} must fail with TypeError or RangeError; it succeeded`);
}

async function ensureVerifies(store: ConformanceKeyStore, what: string): Promise<Verification> {
  const v = await store.verifyAudit();
  ensure(v.ok, `${what}: verifyAudit must pass; it reported ${v.problem?.kind ?? '?'} at #${v.problem?.seq ?? '?'} (${v.problem?.message ?? ''})`);
  return v;
}

async function seed(store: ConformanceKeyStore, n: number, owner = 'table:users', kek: Kek = KEK_A): Promise<NewKey[]> {
  const keys = Array.from({ length: n }, (_, i) => fakeKey(`${owner}:${String(i).padStart(4, '0')}`, owner === 'table:users' ? `${owner}:${i}` : owner, owner === 'table:users' ? 1 : i + 1, kek));
  await store.insertDataKeys(keys, { actor: ACTOR, event: 'test.seed', subject: owner, details: { count: n } });
  return keys;
}

/** The rows of a store's log as an attacker with SQL access sees them. */
async function rehashFrom(
  store: ConformanceKeyStore,
  execute: NonNullable<KeyStoreConformanceTarget['execute']>,
  auditHash: NonNullable<KeyStoreConformanceTarget['keyed']>['auditHash'],
  edit: (entries: ConformanceAuditEntry[]) => ConformanceAuditEntry[],
): Promise<void> {
  const before = [...(await store.listAudit({ limit: 100_000 }))];
  const after = edit(before);
  for (const e of before) await execute(store, 'DELETE FROM keyfold_audit WHERE seq = ?', [e.seq]);
  let prev = '0'.repeat(64);
  for (const e of after) {
    const hash = auditHash({ ...e, prevHash: prev });
    await execute(store, 'INSERT INTO keyfold_audit (seq, time, actor, event, subject, details, prev_hash, hash, mac) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)', [
      e.seq,
      e.time,
      e.actor,
      e.event,
      e.subject,
      JSON.stringify(e.details),
      prev,
      hash,
      e.mac ?? null,
    ]);
    prev = hash;
  }
  const last = after[after.length - 1];
  await execute(store, 'UPDATE keyfold_audit_head SET seq = ?, hash = ? WHERE id = 1', [last?.seq ?? 0, prev]);
}

async function keyedTampering(target: KeyStoreConformanceTarget): Promise<void> {
  const { execute, keyed } = target;
  ensure(execute && keyed, 'the keyed audit tampering check needs the execute and keyed hooks');
  const provider = await keyed.makeProvider();
  const renumber = (es: ConformanceAuditEntry[]): ConformanceAuditEntry[] => es.map((e, i) => ({ ...e, seq: i + 1 }));
  const cases: { what: string; kinds: readonly string[]; seq: number; tamper: (s: ConformanceKeyStore, other: ConformanceKeyStore) => Promise<void> }[] = [
    { what: 'an edited entry', kinds: ['edited'], seq: 3, tamper: (s) => execute(s, "UPDATE keyfold_audit SET subject = 'forged' WHERE seq = ?", [3]) },
    { what: 'an edited MAC', kinds: ['edited'], seq: 4, tamper: (s) => execute(s, 'UPDATE keyfold_audit SET mac = ? WHERE seq = ?', ['0'.repeat(64), 4]) },
    { what: 'a deleted entry', kinds: ['deleted'], seq: 3, tamper: (s) => execute(s, 'DELETE FROM keyfold_audit WHERE seq = ?', [3]) },
    {
      what: 'two swapped entries',
      kinds: ['reordered'],
      seq: 2,
      tamper: async (s) => {
        await execute(s, 'UPDATE keyfold_audit SET seq = ? WHERE seq = ?', [-1, 2]);
        await execute(s, 'UPDATE keyfold_audit SET seq = ? WHERE seq = ?', [2, 3]);
        await execute(s, 'UPDATE keyfold_audit SET seq = ? WHERE seq = ?', [3, -1]);
      },
    },
    {
      what: 'an entry appended with a valid hash and the head moved to it',
      kinds: ['inserted'],
      seq: 7,
      tamper: (s) =>
        rehashFrom(s, execute, keyed.auditHash, (es) => {
          const { seq, time, actor, event, details, prevHash, hash } = es[es.length - 1] as ConformanceAuditEntry;
          return [...es, { seq: seq + 1, time, actor, event, subject: 'tenant:evil', details, prevHash, hash }];
        }),
    },
    {
      what: 'a truncated tail with the head moved back',
      kinds: ['truncated'],
      seq: 5,
      tamper: async (s) => {
        const last = (await s.listAudit()).find((e) => e.seq === 4) as ConformanceAuditEntry;
        await execute(s, 'DELETE FROM keyfold_audit WHERE seq > ?', [4]);
        await execute(s, 'UPDATE keyfold_audit_head SET seq = ?, hash = ? WHERE id = 1', [4, last.hash]);
      },
    },
    {
      what: 'an edited entry with every hash after it recomputed',
      kinds: ['edited'],
      seq: 3,
      tamper: (s) => rehashFrom(s, execute, keyed.auditHash, (es) => es.map((e) => (e.seq === 3 ? { ...e, subject: 'forged' } : e))),
    },
    {
      what: 'a deleted entry, the rest renumbered and re-chained',
      kinds: ['edited', 'deleted'],
      seq: 3,
      tamper: (s) => rehashFrom(s, execute, keyed.auditHash, (es) => renumber(es.filter((e) => e.seq !== 3))),
    },
    {
      what: "the audit key row replaced by another installation's (same KEK)",
      kinds: ['key'],
      seq: 1,
      tamper: async (s, other) => {
        const k = await other.getAuditKey?.();
        ensure(k, 'a store locked by a KeyProvider must have an audit key (getAuditKey)');
        await execute(s, 'UPDATE keyfold_audit_key SET installation = ?, kek_version = ?, wrapped = ? WHERE id = 1', [k.installation, k.wrapped.keyVersion, Buffer.from(k.wrapped.ciphertext)]);
      },
    },
  ];
  try {
    for (const c of cases) {
      await withStore(target, (other) =>
        withStore(target, async (store) => {
          await other.ensureInstallLock(provider, ACTOR);
          await store.ensureInstallLock(provider, ACTOR);
          for (let i = 1; i <= 5; i++) await store.appendAudit({ actor: ACTOR, event: 'test.entry', subject: `s${i}` });
          const entries = await store.listAudit();
          ensure(entries.length === 6 && entries.every((e) => typeof e.mac === 'string' && /^[0-9a-f]{64}$/.test(e.mac)), 'every entry of a keyed log must carry a MAC (64 hex digits)');
          const v0 = await ensureVerifies(store, 'before tampering');
          ensure(v0.keyed === true, 'verifyAudit of a store locked by a KeyProvider must be keyed');
          await c.tamper(store, other);
          const v = await store.verifyAudit();
          ensure(!v.ok, `verifyAudit with the audit key must detect ${c.what}`);
          ensure(
            v.problem !== undefined && c.kinds.includes(v.problem.kind) && v.problem.seq === c.seq,
            `verifyAudit must report ${c.what} as ${c.kinds.join(' or ')} at #${c.seq}; it reported ${v.problem?.kind ?? 'nothing'} at #${v.problem?.seq ?? '?'} (${v.problem?.message ?? ''})`,
          );
        }),
      );
    }
  } finally {
    await provider.close();
  }
}

/**
 * The KeyStore checks, in the order they run.
 * @example
 * ```ts
 * await keyStoreChecks[0].run({ makeStore });
 * ```
 */
export const keyStoreChecks: readonly KeyStoreCheck[] = [
  {
    name: 'install lock',
    rule: 'the first provider is recorded (audited); another provider is refused with PROVIDER_MISMATCH naming both; only a migration with no keys left moves it',
    run: (target) =>
      withStore(target, async (store) => {
        ensure((await store.getInstallLock()) === undefined, 'a new store must have no install lock');
        const a = { kind: 'file', keyId: 'file-aaaa' };
        const b = { kind: 'aws-kms', keyId: 'arn:aws:kms:eu-west-1:111122223333:key/abc' };
        await store.ensureInstallLock(a, ACTOR);
        const lock = await store.getInstallLock();
        ensure(lock?.kind === 'file' && lock.keyId === 'file-aaaa', 'ensureInstallLock must record the provider');
        await store.ensureInstallLock(a, ACTOR);
        const err = await expectCode(() => store.ensureInstallLock(b, ACTOR), 'PROVIDER_MISMATCH', 'opening with another provider');
        ensure(err.message.includes('file-aaaa') && err.message.includes(b.keyId), 'PROVIDER_MISMATCH must name both providers');
        const events = (await store.listAudit({ event: 'install.lock' })).length;
        ensure(events === 1, `exactly one install.lock audit entry must exist; found ${events}`);
        await store.insertDataKeys([fakeKey('k1', 'o1', 1, { ...a, version: '1' })]);
        await expectCode(() => store.changeInstallLock(a, b, ACTOR), 'POLICY_VIOLATION', 'migrating the lock while keys remain under the old provider');
        ensure((await store.getInstallLock())?.kind === 'file', 'a refused migration must leave the lock unchanged');
        const k = await store.getDataKey('k1');
        ensure(k, 'k1 must exist');
        await store.updateDataKey('k1', k.revision, { wrapped: fakeWrapped({ ...b, version: '1' }) });
        await store.changeInstallLock(a, b, ACTOR);
        ensure((await store.getInstallLock())?.kind === 'aws-kms', 'changeInstallLock must move the lock once no key is under the old provider');
        await expectCode(() => store.ensureInstallLock(a, ACTOR), 'PROVIDER_MISMATCH', 'the old provider after a migration');
        ensure((await store.listAudit({ event: 'install.migrate' })).length === 1, 'the migration must be audited');
        await ensureVerifies(store, 'after install lock changes');
      }),
  },
  {
    name: 'KEK registry',
    rule: 'one active version per KEK; a version that still wraps keys, or is active, cannot be retired; a retired version cannot come back',
    run: (target) =>
      withStore(target, async (store) => {
        const v1 = await store.recordKekVersion(KEK_A, { activate: true, actor: ACTOR });
        ensure(v1.state === 'active', 'an activated version must be active');
        await store.recordKekVersion(KEK_A, { activate: true, actor: ACTOR });
        const before = (await store.listAudit()).length;
        await store.recordKekVersion(KEK_A, { activate: true, actor: ACTOR });
        ensure((await store.listAudit()).length === before, 'recording an unchanged version must not add an audit entry');
        await store.recordKekVersion(KEK_B, { activate: true, actor: ACTOR });
        const all = await store.listKekVersions({ kind: KEK_A.kind, keyId: KEK_A.keyId });
        ensure(all.length === 2, `two versions must be registered; found ${all.length}`);
        ensure(all.filter((v) => v.state === 'active').length === 1 && all.find((v) => v.state === 'active')?.version === '2', 'exactly one version (2) must be active');
        await expectCode(() => store.retireKekVersion(KEK_B, ACTOR), 'POLICY_VIOLATION', 'retiring the active version');
        await store.insertDataKeys([fakeKey('k1', 'o1', 1, KEK_A)]);
        const err = await expectCode(() => store.retireKekVersion(KEK_A, ACTOR), 'POLICY_VIOLATION', 'retiring a version that still wraps a key');
        ensure(/\b1 data key/.test(err.message), 'the refusal must say how many keys still reference the version');
        const k = await store.getDataKey('k1');
        await store.updateDataKey('k1', k?.revision ?? 0, { wrapped: fakeWrapped(KEK_B) });
        const retired = await store.retireKekVersion(KEK_A, ACTOR);
        ensure(retired.state === 'retired', 'a version nothing references must retire');
        await expectCode(() => store.recordKekVersion(KEK_A, { activate: true, actor: ACTOR }), 'KEY_VERSION_RETIRED', 'activating a retired version');
        await expectCode(
          () => store.retireKekVersion({ ...KEK_A, version: '99' }, ACTOR),
          'KEY_NOT_FOUND',
          'retiring an unknown version',
        );
        ensure((await store.listAudit({ event: 'kek.retire' })).length === 1, 'retirement must be audited');
      }),
  },
  {
    name: 'KEK pointer',
    rule:
      'activateKekVersion moves the one active version to a registered version, newer or older (rollback), audited kek.activate ' +
      'with from and to; an unknown or retired version is refused and leaves the pointer where it was',
    run: (target) =>
      withStore(target, async (store) => {
        const ref = { kind: KEK_A.kind, keyId: KEK_A.keyId };
        ensure((await store.getActiveKekVersion(ref)) === undefined, 'a KEK with no registered version has no active version');
        await store.recordKekVersion(KEK_A, { activate: true, actor: ACTOR });
        const kekC: Kek = { ...KEK_A, version: '3' };
        await store.recordKekVersion(KEK_B, { activate: false, actor: ACTOR });
        await store.recordKekVersion(kekC, { activate: false, actor: ACTOR });
        ensure((await store.getActiveKekVersion(ref))?.version === '1', 'registering without activate must leave the pointer at 1');
        const up = await store.activateKekVersion(kekC, ACTOR);
        ensure(up.changed && up.from === '1' && up.record.version === '3' && up.record.state === 'active', 'activating 3 must move the pointer from 1 to 3');
        ensure((await store.getActiveKekVersion(ref))?.version === '3', 'the active version must be 3 after activating it');
        const back = await store.activateKekVersion(KEK_B, ACTOR);
        ensure(back.changed && back.from === '3' && back.record.version === '2', 'activating an older version (rollback) must move the pointer from 3 to 2');
        const states = new Map((await store.listKekVersions(ref)).map((v) => [v.version, v.state]));
        ensure(states.get('1') === 'available' && states.get('2') === 'active' && states.get('3') === 'available', 'exactly one version (2) must be active after the rollback');
        const same = await store.activateKekVersion(KEK_B, ACTOR);
        ensure(!same.changed && same.from === '2', 'activating the active version must change nothing');
        const audit = await store.listAudit({ event: 'kek.activate' });
        const moves = audit.map((e) => `${JSON.stringify(e.details.from ?? null)}->${JSON.stringify(e.details.to ?? null)}`);
        ensure(moves.join(',') === 'null->"1","1"->"3","3"->"2"', `every pointer move must be audited kek.activate with from and to; got ${moves.join(',')}`);
        await expectCode(() => store.activateKekVersion({ ...KEK_A, version: '99' }, ACTOR), 'KEY_NOT_FOUND', 'activating an unregistered version');
        await store.retireKekVersion(kekC, ACTOR);
        await expectCode(() => store.activateKekVersion(kekC, ACTOR), 'KEY_VERSION_RETIRED', 'activating a retired version');
        ensure((await store.getActiveKekVersion(ref))?.version === '2', 'a refused activation must leave the pointer at 2');
        ensure((await store.listAudit({ event: 'kek.activate' })).length === 3, 'a refused activation must not be audited');
        await expectTypeError(() => store.activateKekVersion({ ...KEK_A, version: '' }, ACTOR), 'an empty version');
      }),
  },
  {
    name: 'data keys',
    rule: 'keys are stored and listed in id order with keyset pagination; a batch with a duplicate writes nothing (ALREADY_EXISTS); bytes come back equal and owned',
    run: (target) =>
      withStore(target, async (store) => {
        const keys = await seed(store, 25);
        const first = keys[0] as NewKey;
        const got = await store.getDataKey(first.id);
        ensure(got, 'an inserted key must be found by id');
        ensure(got.revision === 1 && got.state === 'active' && got.version === 1, 'a new key has revision 1, state active');
        ensure(same(got.wrapped?.ciphertext, first.wrapped.ciphertext) && same(got.keyCheck, first.keyCheck), 'stored bytes must come back unchanged');
        ensure(got.wrapped?.ciphertext.byteOffset === 0 && got.wrapped.ciphertext.buffer.byteLength === got.wrapped.ciphertext.length, 'returned ciphertext must own its memory');
        ensure((await store.getDataKey('nope')) === undefined, 'an unknown id must return undefined');
        const seen: string[] = [];
        for (let after: string | undefined; ; ) {
          const page = await store.listDataKeys({ limit: 7, ...(after === undefined ? {} : { after }) });
          seen.push(...page.map((k) => k.id));
          if (page.length < 7) break;
          after = page[page.length - 1]?.id;
        }
        const expected = keys.map((k) => k.id).sort();
        ensure(seen.join(',') === expected.join(','), 'keyset pagination must return every key once, in id order');
        ensure((await store.countDataKeys()) === 25, 'countDataKeys must count every key');
        ensure((await store.countDataKeys({ kek: { kind: KEK_A.kind, keyId: KEK_A.keyId, version: '1' } })) === 25, 'the kek filter must match');
        await expectCode(
          () => store.insertDataKeys([fakeKey('fresh', 'x', 1), fakeKey(first.id, 'y', 1)]),
          'ALREADY_EXISTS',
          'inserting a batch with a duplicate id',
        );
        ensure((await store.getDataKey('fresh')) === undefined, 'a refused batch must write nothing');
        await expectCode(() => store.insertDataKeys([fakeKey('other-id', first.owner, first.version)]), 'ALREADY_EXISTS', 'a duplicate owner + version');
        await expectTypeError(() => store.insertDataKeys([{ ...fakeKey('bad', 'o', 1), keyCheck: new Uint8Array(3) }]), 'a malformed key check value');
        await expectTypeError(() => store.listDataKeys({ limit: 0 }), 'limit 0');
      }),
  },
  {
    name: 'compare-and-swap',
    rule: 'an update applies only at the expected revision and bumps it; a stale revision changes nothing',
    run: (target) =>
      withStore(target, async (store) => {
        const [k] = await seed(store, 1);
        const id = (k as NewKey).id;
        const w2 = fakeWrapped(KEK_B);
        const updated = await store.updateDataKey(id, 1, { wrapped: w2 }, { actor: ACTOR, event: 'test.update', subject: id });
        ensure(updated?.revision === 2 && updated.wrapped?.keyVersion === '2', 'an update at the right revision must apply and bump the revision');
        ensure(same(updated.keyCheck, (k as NewKey).keyCheck), 'a re-wrap must keep the key check value');
        const stale = await store.updateDataKey(id, 1, { wrapped: fakeWrapped(KEK_A) });
        ensure(stale === undefined, 'an update at a stale revision must return undefined');
        const now = await store.getDataKey(id);
        ensure(now?.revision === 2 && same(now.wrapped?.ciphertext, w2.ciphertext), 'a stale update must change nothing');
        await expectTypeError(() => store.updateDataKey(id, 2, { wrapped: null }), 'deleting wrapped material without destroying');
      }),
  },
  {
    name: 'key versions and destruction',
    rule: 'a new version retires the previous one atomically; destroying an owner deletes every wrapped version (audited) and nothing can be added after',
    run: (target) =>
      withStore(target, async (store) => {
        await store.insertDataKeys([fakeKey('tenant:acme:1', 'tenant:acme', 1)]);
        const v2 = await store.addDataKeyVersion('tenant:acme', { ...fakeKey('tenant:acme:2', 'tenant:acme', 2) }, { actor: ACTOR, event: 'tenant.rotate', subject: 'tenant:acme' });
        ensure(v2.version === 2 && v2.state === 'active', 'the new version must be active');
        ensure((await store.findDataKey('tenant:acme'))?.version === 2, 'findDataKey without version must return the active version');
        ensure((await store.findDataKey('tenant:acme', 1))?.state === 'retired', 'the previous version must be retired');
        await expectCode(
          () => store.addDataKeyVersion('tenant:acme', fakeKey('tenant:acme:9', 'tenant:acme', 9), { actor: ACTOR, event: 'tenant.rotate', subject: 'tenant:acme' }),
          'UNAVAILABLE',
          'adding a version with the wrong number',
        );
        ensure((await store.countDataKeys({ owner: 'tenant:acme' })) === 2, 'a refused version must write nothing');
        const n = await store.destroyOwner('tenant:acme', { actor: ACTOR, event: 'tenant.shred', subject: 'tenant:acme' });
        ensure(n === 2, `destroyOwner must destroy both versions; it reported ${n}`);
        for (const v of [1, 2]) {
          const k = await store.findDataKey('tenant:acme', v);
          ensure(k?.state === 'destroyed' && k.wrapped === undefined && k.keyCheck === undefined, `version ${v} must be destroyed with its wrapped material deleted`);
        }
        ensure((await store.findDataKey('tenant:acme')) === undefined, 'a destroyed owner has no active key');
        await expectCode(
          () => store.addDataKeyVersion('tenant:acme', fakeKey('tenant:acme:3', 'tenant:acme', 3), { actor: ACTOR, event: 'tenant.rotate', subject: 'tenant:acme' }),
          'KEY_NOT_FOUND',
          'adding a version to a destroyed owner',
        );
        await expectCode(() => store.destroyOwner('tenant:nobody', { actor: ACTOR, event: 'tenant.shred', subject: 'x' }), 'KEY_NOT_FOUND', 'destroying an unknown owner');
        ensure((await store.listAudit({ event: 'tenant.shred' })).length === 1, 'destruction must be audited');
        await ensureVerifies(store, 'after destruction');
      }),
  },
  {
    name: 'rewrap lease',
    rule: 'a lease holds only keys not under the target (never destroyed ones), in id order after the cursor; commit writes updates, checkpoint and audit entry together; release writes nothing',
    run: (target) =>
      withStore(target, async (store) => {
        const keys = await seed(store, 10);
        const ids = keys.map((k) => k.id).sort();
        await store.updateDataKey(ids[3] as string, 1, { wrapped: fakeWrapped(KEK_B) });
        await store.insertDataKeys([fakeKey('zz-gone', 'gone', 1)]);
        await store.destroyOwner('gone', { actor: ACTOR, event: 'tenant.shred', subject: 'gone' });
        const lease = await store.leaseForRewrap({ target: KEK_B, limit: 4 });
        const leased = lease.keys.map((k) => k.id);
        ensure(leased.join(',') === [ids[0], ids[1], ids[2], ids[4]].join(','), `the lease must hold the first 4 keys not under the target, in id order; got ${leased.join(',')}`);
        await lease.release();
        ensure((await store.countDataKeys({ kek: { ...KEK_B } })) === 1, 'release must write nothing');
        const l2 = await store.leaseForRewrap({ target: KEK_B, limit: 3, after: ids[4] as string });
        ensure(l2.keys.map((k) => k.id).join(',') === [ids[5], ids[6], ids[7]].join(','), 'after must skip keys up to the cursor');
        const headBefore = await store.auditHead();
        const result = await l2.commit(
          l2.keys.map((k) => ({ id: k.id, revision: k.revision, wrapped: fakeWrapped(KEK_B) })),
          {
            checkpoint: { name: 'rotate:test', cursor: ids[7], processedDelta: 3 },
            audit: (applied) => ({ actor: ACTOR, event: 'kek.rewrap', subject: 'env:KEYFOLD_KEK@2', details: { ids: [...applied] } }),
          },
        );
        ensure(result.applied.length === 3 && result.conflicts.length === 0, 'commit must apply every update at its revision');
        for (const k of l2.keys) {
          const now = await store.getDataKey(k.id);
          ensure(now?.wrapped?.keyVersion === '2' && now.revision === k.revision + 1, `${k.id} must be re-wrapped with its revision bumped`);
        }
        const cp = await store.getCheckpoint('rotate:test');
        ensure(cp !== undefined && cp.cursor === ids[7] && cp.processed === 3, 'the checkpoint must be written with the commit');
        const entries = await store.listAudit({ after: headBefore.seq });
        ensure(entries.length === 1 && entries[0]?.event === 'kek.rewrap', 'exactly one audit entry must be written with the commit');
        ensure(JSON.stringify(entries[0]?.details.ids) === JSON.stringify(result.applied), 'the audit entry must name the keys applied');
        await expectTypeError(() => l2.commit([]), 'committing a lease twice');
        const l3 = await store.leaseForRewrap({ target: KEK_B, limit: 100 });
        ensure(!l3.keys.some((k) => k.state === 'destroyed' || k.wrapped?.keyVersion === '2'), 'destroyed keys and keys on target are never leased');
        await l3.release();
      }),
  },
  {
    name: 'exactly once under concurrent leases',
    rule: 'two concurrent leases never both re-wrap one key: each key is applied by exactly one commit (locks or compare-and-swap)',
    run: (target) =>
      withStore(target, async (store) => {
        const keys = await seed(store, 30);
        const [a, b] = await Promise.all([store.leaseForRewrap({ target: KEK_B, limit: 20 }), store.leaseForRewrap({ target: KEK_B, limit: 20 })]);
        const upd = (l: Lease): { id: string; revision: number; wrapped: WrappedKey }[] =>
          l.keys.map((k) => ({ id: k.id, revision: k.revision, wrapped: fakeWrapped(KEK_B) }));
        const ra = await a.commit(upd(a));
        const rb = await b.commit(upd(b));
        const applied = [...ra.applied, ...rb.applied];
        ensure(new Set(applied).size === applied.length, 'a key must never be applied by two leases');
        const c = await store.leaseForRewrap({ target: KEK_B, limit: 100 });
        const rc = await c.commit(upd(c));
        const total = applied.length + rc.applied.length;
        ensure(total === keys.length, `every key must be re-wrapped exactly once; ${total} of ${keys.length} were`);
        for (const k of keys) {
          const now = await store.getDataKey(k.id);
          ensure(now?.revision === 2, `${k.id} must have been written exactly once (revision 2); it has revision ${now?.revision ?? '?'}`);
        }
      }),
  },
  {
    name: 'checkpoints',
    rule: 'checkpoints are saved, accumulated, listed and deleted',
    run: (target) =>
      withStore(target, async (store) => {
        ensure((await store.getCheckpoint('rotate:x')) === undefined, 'an unknown checkpoint is undefined');
        await store.saveCheckpoint({ name: 'rotate:x', cursor: 'a', processedDelta: 5 });
        await store.saveCheckpoint({ name: 'rotate:x', cursor: 'b', processedDelta: 7 });
        const cp = await store.getCheckpoint('rotate:x');
        ensure(cp?.cursor === 'b' && cp.processed === 12, 'processedDelta must accumulate and the cursor move');
        await store.saveCheckpoint({ name: 'rotate:x', cursor: undefined, processedDelta: 0, processed: 0 });
        ensure((await store.getCheckpoint('rotate:x'))?.processed === 0, 'processed may be reset');
        await store.deleteCheckpoint('rotate:x');
        ensure((await store.getCheckpoint('rotate:x')) === undefined, 'a deleted checkpoint is gone');
      }),
  },
  {
    name: 'audit chain',
    rule: 'entries are numbered without gaps, each hash-chained to the one before, the head tracks the newest, and details refuse binary data',
    run: (target) =>
      withStore(target, async (store) => {
        const e1 = await store.appendAudit({ actor: ACTOR, event: 'test.one', subject: 's', details: { n: 1, list: ['a', 'b'], nested: { ok: true } } });
        const e2 = await store.appendAudit({ actor: ACTOR, event: 'test.two', subject: 's' });
        ensure(e1.seq === 1 && e2.seq === 2, 'entries must be numbered 1, 2, ...');
        ensure(e1.prevHash === '0'.repeat(64) && e2.prevHash === e1.hash && /^[0-9a-f]{64}$/.test(e2.hash), 'each entry must chain to the previous hash (SHA-256 hex)');
        const head = await store.auditHead();
        ensure(head.seq === 2 && head.hash === e2.hash, 'the head must name the newest entry');
        const listed = await store.listAudit({ event: 'test.one' });
        ensure(listed.length === 1 && JSON.stringify(listed[0]?.details) === JSON.stringify(e1.details), 'details must round-trip');
        await Promise.all(Array.from({ length: 10 }, (_, i) => store.appendAudit({ actor: ACTOR, event: 'test.many', subject: String(i) })));
        const v = await ensureVerifies(store, 'after concurrent appends');
        ensure(v.entries === 12, `verifyAudit must check every entry; it checked ${v.entries}`);
        await expectTypeError(() => store.appendAudit({ actor: ACTOR, event: 'x', subject: 's', details: { key: new Uint8Array(32) as unknown as Json } }), 'bytes in details');
        await expectTypeError(() => store.appendAudit({ actor: '', event: 'x', subject: 's' }), 'an empty actor');
      }),
  },
  {
    name: 'audit tampering',
    requires: 'execute',
    rule: 'verifyAudit names an edited, deleted, reordered, inserted or unreadable entry; listing an unreadable one is INTEGRITY_FAILED',
    run: async (target) => {
      const execute = target.execute;
      ensure(execute, 'the target has no execute hook');
      const cases: { kind: string; seq: number; sql: (s: ConformanceKeyStore) => Promise<void> }[] = [
        { kind: 'edited', seq: 3, sql: (s) => execute(s, "UPDATE keyfold_audit SET subject = 'forged' WHERE seq = ?", [3]) },
        { kind: 'deleted', seq: 3, sql: (s) => execute(s, 'DELETE FROM keyfold_audit WHERE seq = ?', [3]) },
        { kind: 'deleted', seq: 5, sql: (s) => execute(s, 'DELETE FROM keyfold_audit WHERE seq = ?', [5]) },
        {
          kind: 'reordered',
          seq: 2,
          sql: async (s) => {
            await execute(s, 'UPDATE keyfold_audit SET seq = ? WHERE seq = ?', [-1, 2]);
            await execute(s, 'UPDATE keyfold_audit SET seq = ? WHERE seq = ?', [2, 3]);
            await execute(s, 'UPDATE keyfold_audit SET seq = ? WHERE seq = ?', [3, -1]);
          },
        },
        {
          kind: 'inserted',
          seq: 6,
          sql: (s) =>
            execute(s, 'INSERT INTO keyfold_audit (seq, time, actor, event, subject, details, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)', [
              6,
              new Date().toISOString(),
              'intruder',
              'tenant.create',
              'tenant:evil',
              '{}',
              '0'.repeat(64),
              'f'.repeat(64),
            ]),
        },
        { kind: 'unreadable', seq: 4, sql: (s) => execute(s, "UPDATE keyfold_audit SET details = 'not json {' WHERE seq = ?", [4]) },
      ];
      for (const c of cases) {
        await withStore(target, async (store) => {
          for (let i = 1; i <= 5; i++) await store.appendAudit({ actor: ACTOR, event: 'test.entry', subject: `s${i}` });
          await ensureVerifies(store, 'before tampering');
          await c.sql(store);
          const v = await store.verifyAudit();
          ensure(!v.ok, `verifyAudit must detect a ${c.kind} entry`);
          ensure(
            v.problem?.kind === c.kind && v.problem.seq === c.seq,
            `verifyAudit must report ${c.kind} at #${c.seq}; it reported ${v.problem?.kind ?? 'nothing'} at #${v.problem?.seq ?? '?'}`,
          );
          if (c.kind === 'unreadable') {
            const err = await expectCode(() => store.listAudit(), 'INTEGRITY_FAILED', 'listing an unreadable audit row');
            ensure(err.message.includes(`#${c.seq}`), `the error for an unreadable audit row must name entry #${c.seq}; it said: ${err.message}`);
          }
        });
      }
    },
  },
  {
    name: 'keyed audit tampering',
    requires: 'keyed',
    rule:
      'a store locked by a KeyProvider keys its audit log; with the audit key, verifyAudit catches an edit, a deletion, a reordering, an insertion, ' +
      'a truncation with the head moved, a log re-chained with valid hashes, and a replaced audit key row, each naming the first bad entry',
    run: (target) => keyedTampering(target),
  },
  {
    name: 'close',
    rule: 'close is idempotent and later calls fail with PROVIDER_CLOSED',
    run: async (target) => {
      const store = await target.makeStore();
      await store.close();
      await store.close();
      try {
        await store.countDataKeys();
      } catch (err) {
        if (isKeyfoldErrorLike(err) && err.code === 'PROVIDER_CLOSED') return;
        throw new ConformanceError(`a call after close must fail with PROVIDER_CLOSED; it failed with ${describeError(err)}`, { cause: err });
      }
      fail('a call after close must fail with PROVIDER_CLOSED; it succeeded');
    },
  },
];

/**
 * Options of {@link runKeyStoreConformance}.
 * @example
 * ```ts
 * const options: KeyStoreConformanceOptions = { name: 'sqlite', makeStore, execute, describe, it };
 * ```
 */
export interface KeyStoreConformanceOptions extends KeyStoreConformanceTarget {
  /** Shown in the suite title: `KeyStore conformance: <name>`. */
  readonly name: string;
  readonly describe: DescribeFunction;
  readonly it: ItFunction;
  /** Timeout per check in ms. */
  readonly timeoutMs?: number;
}

/**
 * Registers the KeyStore conformance suite: one `describe` block with one test per applicable check
 * (`audit tampering` needs the `execute` hook, `keyed audit tampering` the `execute` and `keyed` hooks).
 * @returns the names of the checks registered.
 * @throws TypeError when `name`, `makeStore`, `describe` or `it` is missing.
 * @example
 * ```ts
 * import { describe, it } from 'vitest';
 * import { runKeyStoreConformance } from '@keyfold/conformance';
 * import { openSqliteKeyStore } from '@keyfold/keystore';
 *
 * runKeyStoreConformance({ name: 'sqlite', makeStore: () => openSqliteKeyStore({ path: freshPath(), create: true }), describe, it });
 * ```
 */
export function runKeyStoreConformance(options: KeyStoreConformanceOptions): KeyStoreCheckName[] {
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  if (typeof options.name !== 'string' || options.name.length === 0) throw new TypeError('name must be a non-empty string');
  for (const f of ['makeStore', 'describe', 'it'] as const) {
    if (typeof options[f] !== 'function') throw new TypeError(`${f} must be a function`);
  }
  if (options.execute !== undefined && typeof options.execute !== 'function') throw new TypeError('execute must be a function');
  if (options.keyed !== undefined && (typeof options.keyed?.makeProvider !== 'function' || typeof options.keyed.auditHash !== 'function')) {
    throw new TypeError('keyed must be { makeProvider, auditHash }');
  }
  const target: KeyStoreConformanceTarget = {
    makeStore: options.makeStore,
    ...(options.execute ? { execute: options.execute } : {}),
    ...(options.keyed ? { keyed: options.keyed } : {}),
  };
  const registered: KeyStoreCheckName[] = [];
  options.describe(`KeyStore conformance: ${options.name}`, () => {
    for (const check of keyStoreChecks) {
      if (check.requires !== undefined && target[check.requires] === undefined) continue;
      options.it(`${check.name}: ${check.rule}`, () => check.run(target), options.timeoutMs);
      registered.push(check.name);
    }
  });
  return registered;
}

/**
 * Runs one KeyStore check by name, outside a test framework.
 * @throws ConformanceError when the store breaks the rule; TypeError for an unknown name or a missing hook.
 * @example
 * ```ts
 * await runKeyStoreCheck('compare-and-swap', { makeStore });
 * ```
 */
export async function runKeyStoreCheck(name: KeyStoreCheckName, target: KeyStoreConformanceTarget): Promise<void> {
  const check = keyStoreChecks.find((c) => c.name === name);
  if (!check) throw new TypeError(`unknown KeyStore check "${String(name)}"`);
  if (check.requires !== undefined && target[check.requires] === undefined) throw new TypeError(`the "${name}" check needs the ${check.requires} hook`);
  await check.run(target);
}
