/**
 * Backups of a key store: wrapped material only (never a plaintext key, the audit key included), as one NDJSON file
 * (mode 0600) that ends with a SHA-256 digest of everything before it. `restoreStore` refuses a file whose digest does
 * not match, and a backup whose audit chain does not verify (with the KEK provider: its MACs too, so a backup whose
 * log was re-chained or truncated by someone without the KEK is refused), before writing anything.
 *
 * A backup is as sensitive as the store: it holds wrapped keys, which the KEK can open. Keep it with the same care;
 * it is useless without the KEK provider the install lock names.
 * @module
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, unlink, type FileHandle } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { ConfigError, FormatError, KeyfoldError, PolicyError, UnsupportedFormatError, fromBase64Url, toBase64Url, type KeyProvider } from '@keyfold/envelope-core';
import { verifyAuditChain, verifyAuditMacs } from './audit.js';
import { AuditKey, auditKeyNotOpen, isKeyProvider } from './audit-key.js';
import { IntegrityError } from './errors.js';
import { assertName, kekName, sameProvider } from './records.js';
import type { AuditEntry, AuditHead, AuditKeyRecord, AuditVerification, DataKeyRecord, InstallLock, KekVersionRecord, KeyStore, StoreRecords } from './types.js';

/** `format` of the first line of a backup file. */
export const BACKUP_FORMAT = 'keyfold-store-backup';
/** Backup format version this build writes (2: the keyed audit log; version 1 files are still read). */
export const BACKUP_VERSION = 2;

const PAGE = 5000;

/**
 * What {@link backupStore} and {@link restoreStore} report.
 * @example
 * ```ts
 * const { dataKeys, auditEntries, auditHead } = await backupStore({ store, path: 'store.backup' });
 * ```
 */
export interface BackupSummary {
  readonly path: string;
  readonly dataKeys: number;
  readonly kekVersions: number;
  readonly auditEntries: number;
  readonly auditHead: AuditHead;
  /** SHA-256 of the file's content before its last line (hex). */
  readonly digest: string;
}

/**
 * Options of {@link backupStore}.
 * @example
 * ```ts
 * const options: BackupOptions = { store, path: '/backups/keyfold-2024-06-01.ndjson', actor: 'cli:alice' };
 * ```
 */
export interface BackupOptions {
  store: KeyStore;
  /** The file to write; it must not exist (never overwritten). Written with mode 0600. */
  path: string;
  /** Audit actor of the `store.backup` entry. Default `keyfold`. */
  actor?: string;
}

function encodeKey(k: DataKeyRecord): Record<string, unknown> {
  return {
    t: 'key',
    id: k.id,
    owner: k.owner,
    version: k.version,
    state: k.state,
    wrapped: k.wrapped
      ? { kind: k.wrapped.kind, keyId: k.wrapped.keyId, keyVersion: k.wrapped.keyVersion, ciphertext: toBase64Url(k.wrapped.ciphertext) }
      : null,
    keyCheck: k.keyCheck ? toBase64Url(k.keyCheck) : null,
    revision: k.revision,
    createdAt: k.createdAt,
    updatedAt: k.updatedAt,
  };
}

/**
 * Writes a backup of `store` to `options.path`: install lock, KEK versions, every data key (wrapped), and the audit
 * log up to its head, after appending a `store.backup` entry. The audit chain is verified first: a tampered log is
 * not backed up.
 * @returns what was written.
 * @throws IntegrityError `INTEGRITY_FAILED` when the store's audit chain does not verify (with the audit key open,
 *   its MACs too); PolicyError `POLICY_VIOLATION` when the log is keyed and the store has not opened its audit key
 *   (open the store with its KEK provider first); KeyfoldError
 *   `ALREADY_EXISTS` when the file exists; ConfigError when it cannot be written. A partial file is removed.
 * @example
 * ```ts
 * import { backupStore } from '@keyfold/keystore';
 *
 * const summary = await backupStore({ store, path: './keyfold.backup' });
 * console.log(`${summary.dataKeys} keys, audit head #${summary.auditHead.seq}`);
 * ```
 */
export async function backupStore(options: BackupOptions): Promise<BackupSummary> {
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  const { store, path } = options;
  assertName(path, 'path', 4096);
  const actor = options.actor ?? 'keyfold';
  assertName(actor, 'actor');
  const verification = await store.verifyAudit();
  if (!verification.keyed && (await store.getAuditKey()) !== undefined) throw auditKeyNotOpen(store.location);
  if (!verification.ok) {
    throw new IntegrityError(`refusing to back up ${store.location}: its audit log does not verify (${verification.problem?.message ?? 'unknown'})`);
  }
  let fh: FileHandle | undefined;
  try {
    fh = await open(path, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new KeyfoldError('ALREADY_EXISTS', `${path} already exists; a backup never overwrites a file`, { cause: err });
    }
    throw new ConfigError(`cannot create ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, { cause: err });
  }
  const hash = createHash('sha256');
  let chunk = '';
  const file: FileHandle = fh;
  const write = async (obj: unknown): Promise<void> => {
    const line = `${JSON.stringify(obj)}\n`;
    hash.update(line);
    chunk += line;
    if (chunk.length > 1 << 20) {
      await file.write(chunk);
      chunk = '';
    }
  };
  try {
    const total = await store.countDataKeys();
    await store.appendAudit({ actor, event: 'store.backup', subject: store.location, details: { path, dataKeys: total } });
    const head = await store.auditHead();
    await write({ format: BACKUP_FORMAT, version: BACKUP_VERSION, createdAt: new Date().toISOString(), schemaVersion: store.schemaVersion, source: store.backend });
    const lock = await store.getInstallLock();
    if (lock) await write({ t: 'lock', ...lock });
    const auditKey = await store.getAuditKey();
    if (auditKey) {
      const w = auditKey.wrapped;
      await write({
        t: 'auditkey',
        installation: auditKey.installation,
        keyedFrom: auditKey.keyedFrom,
        wrapped: { kind: w.kind, keyId: w.keyId, keyVersion: w.keyVersion, ciphertext: toBase64Url(w.ciphertext) },
        createdAt: auditKey.createdAt,
        updatedAt: auditKey.updatedAt,
      });
    }
    const keks = await store.listKekVersions();
    for (const k of keks) await write({ t: 'kek', ...k, activatedAt: k.activatedAt ?? null, retiredAt: k.retiredAt ?? null });
    let keys = 0;
    for (let after: string | undefined; ; ) {
      const page = await store.listDataKeys({ limit: PAGE, ...(after === undefined ? {} : { after }) });
      for (const k of page) await write(encodeKey(k));
      keys += page.length;
      if (page.length < PAGE) break;
      after = (page[page.length - 1] as DataKeyRecord).id;
    }
    let entries = 0;
    for (let after = 0; after < head.seq; ) {
      const page = await store.listAudit({ after, limit: Math.min(PAGE, head.seq - after) });
      if (page.length === 0) break;
      for (const e of page) await write({ t: 'audit', ...e });
      entries += page.length;
      after = (page[page.length - 1] as AuditEntry).seq;
    }
    await write({ t: 'head', seq: head.seq, hash: head.hash, ...(head.mac === undefined ? {} : { mac: head.mac }) });
    const digest = hash.digest('hex');
    const end = `${JSON.stringify({ t: 'end', dataKeys: keys, kekVersions: keks.length, auditEntries: entries, digest })}\n`;
    chunk += end;
    await file.write(chunk);
    await file.sync();
    await file.close();
    fh = undefined;
    return { path, dataKeys: keys, kekVersions: keks.length, auditEntries: entries, auditHead: head, digest };
  } catch (err) {
    await fh?.close().catch(() => undefined);
    await unlink(path).catch(() => undefined);
    throw err;
  }
}

function bad(path: string, what: string): FormatError {
  return new FormatError(`${path} is not a valid Keyfold store backup: ${what}`);
}

function str(v: unknown, path: string, what: string): string {
  if (typeof v !== 'string') throw bad(path, `${what} must be a string`);
  return v;
}

function optStr(v: unknown, path: string, what: string): string | undefined {
  return v === null || v === undefined ? undefined : str(v, path, what);
}

function int(v: unknown, path: string, what: string): number {
  if (!Number.isSafeInteger(v) || (v as number) < 0) throw bad(path, `${what} must be a non-negative integer`);
  return v as number;
}

function bytes(v: unknown, path: string, what: string): Uint8Array {
  const b = typeof v === 'string' ? fromBase64Url(v) : undefined;
  if (!b) throw bad(path, `${what} must be base64url`);
  return b;
}

/** Parses and checks a backup file: digest, structure. */
async function readBackup(path: string): Promise<StoreRecords & { digest: string }> {
  const hash = createHash('sha256');
  let header: Record<string, unknown> | undefined;
  let end: Record<string, unknown> | undefined;
  let lock: InstallLock | undefined;
  let head: AuditHead | undefined;
  let auditKey: AuditKeyRecord | undefined;
  const keks: KekVersionRecord[] = [];
  const keys: DataKeyRecord[] = [];
  const audit: AuditEntry[] = [];
  const input = createReadStream(path, { encoding: 'utf8' });
  const lines = createInterface({ input, crlfDelay: Infinity });
  try {
    for await (const line of lines) {
      if (end) throw bad(path, 'content after the end line');
      let obj: Record<string, unknown>;
      try {
        obj = JSON.parse(line) as Record<string, unknown>;
      } catch {
        throw new IntegrityError(`${path} is damaged: a line is not JSON (the file was truncated or modified)`);
      }
      if (obj === null || typeof obj !== 'object') throw bad(path, 'a line is not an object');
      if (obj.t === 'end') {
        end = obj;
        continue;
      }
      hash.update(`${line}\n`);
      if (!header) {
        if (obj.format !== BACKUP_FORMAT) throw bad(path, 'the first line does not name the backup format');
        if (obj.version !== BACKUP_VERSION && obj.version !== 1) {
          throw new UnsupportedFormatError(`${path} is backup format version ${String(obj.version)}; this build reads version ${BACKUP_VERSION}`);
        }
        header = obj;
        continue;
      }
      switch (obj.t) {
        case 'lock':
          lock = { kind: str(obj.kind, path, 'lock.kind'), keyId: str(obj.keyId, path, 'lock.keyId'), createdAt: str(obj.createdAt, path, 'lock.createdAt'), updatedAt: str(obj.updatedAt, path, 'lock.updatedAt') };
          break;
        case 'auditkey': {
          const w = obj.wrapped as Record<string, unknown> | null;
          if (w === null || typeof w !== 'object') throw bad(path, 'auditkey.wrapped must be an object');
          auditKey = {
            installation: str(obj.installation, path, 'auditkey.installation'),
            keyedFrom: int(obj.keyedFrom, path, 'auditkey.keyedFrom'),
            wrapped: {
              kind: str(w.kind, path, 'auditkey.wrapped.kind'),
              keyId: str(w.keyId, path, 'auditkey.wrapped.keyId'),
              keyVersion: str(w.keyVersion, path, 'auditkey.wrapped.keyVersion'),
              ciphertext: bytes(w.ciphertext, path, 'auditkey.wrapped.ciphertext'),
            },
            createdAt: str(obj.createdAt, path, 'auditkey.createdAt'),
            updatedAt: str(obj.updatedAt, path, 'auditkey.updatedAt'),
          };
          break;
        }
        case 'kek': {
          const state = obj.state;
          if (state !== 'active' && state !== 'available' && state !== 'retired') throw bad(path, 'kek.state is unknown');
          keks.push({
            kind: str(obj.kind, path, 'kek.kind'),
            keyId: str(obj.keyId, path, 'kek.keyId'),
            version: str(obj.version, path, 'kek.version'),
            state,
            createdAt: str(obj.createdAt, path, 'kek.createdAt'),
            activatedAt: optStr(obj.activatedAt, path, 'kek.activatedAt'),
            retiredAt: optStr(obj.retiredAt, path, 'kek.retiredAt'),
          });
          break;
        }
        case 'key': {
          const state = obj.state;
          if (state !== 'active' && state !== 'retired' && state !== 'destroyed') throw bad(path, 'key.state is unknown');
          const w = obj.wrapped as Record<string, unknown> | null;
          keys.push({
            id: str(obj.id, path, 'key.id'),
            owner: str(obj.owner, path, 'key.owner'),
            version: int(obj.version, path, 'key.version'),
            state,
            wrapped:
              w === null || w === undefined
                ? undefined
                : {
                    kind: str(w.kind, path, 'key.wrapped.kind'),
                    keyId: str(w.keyId, path, 'key.wrapped.keyId'),
                    keyVersion: str(w.keyVersion, path, 'key.wrapped.keyVersion'),
                    ciphertext: bytes(w.ciphertext, path, 'key.wrapped.ciphertext'),
                  },
            keyCheck: obj.keyCheck === null ? undefined : bytes(obj.keyCheck, path, 'key.keyCheck'),
            revision: int(obj.revision, path, 'key.revision'),
            createdAt: str(obj.createdAt, path, 'key.createdAt'),
            updatedAt: str(obj.updatedAt, path, 'key.updatedAt'),
          });
          break;
        }
        case 'audit': {
          const details = obj.details;
          if (details === null || typeof details !== 'object' || Array.isArray(details)) throw bad(path, 'audit.details must be an object');
          const mac = optStr(obj.mac, path, 'audit.mac');
          audit.push({
            seq: int(obj.seq, path, 'audit.seq'),
            time: str(obj.time, path, 'audit.time'),
            actor: str(obj.actor, path, 'audit.actor'),
            event: str(obj.event, path, 'audit.event'),
            subject: str(obj.subject, path, 'audit.subject'),
            details: details as AuditEntry['details'],
            prevHash: str(obj.prevHash, path, 'audit.prevHash'),
            hash: str(obj.hash, path, 'audit.hash'),
            ...(mac === undefined ? {} : { mac }),
          });
          break;
        }
        case 'head':
          {
            const mac = optStr(obj.mac, path, 'head.mac');
            head = { seq: int(obj.seq, path, 'head.seq'), hash: str(obj.hash, path, 'head.hash'), ...(mac === undefined ? {} : { mac }) };
          }
          break;
        default:
          throw bad(path, `unknown record type ${JSON.stringify(obj.t)}`);
      }
    }
  } catch (err) {
    if (err instanceof KeyfoldError) throw err;
    throw new ConfigError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  } finally {
    lines.close();
    input.destroy();
  }
  if (!header) throw bad(path, 'the file is empty');
  if (!end) throw new IntegrityError(`${path} is incomplete: it has no end line (the backup was truncated)`);
  const digest = hash.digest('hex');
  if (end.digest !== digest) throw new IntegrityError(`${path} was modified after it was written: its digest does not match`);
  if (!head) throw bad(path, 'no audit head');
  return { installLock: lock, kekVersions: keks, dataKeys: keys, audit, auditHead: head, auditKey, digest };
}

/**
 * Options of {@link restoreStore}.
 * @example
 * ```ts
 * const options: RestoreOptions = { store: emptyStore, path: './keyfold.backup', actor: 'cli:alice' };
 * ```
 */
export interface RestoreOptions {
  /** An empty store (new file or schema). */
  store: KeyStore;
  path: string;
  actor?: string;
  /**
   * The installation's KEK provider. Required for a backup whose audit log is keyed: its audit key is unwrapped to
   * verify every MAC before anything is written, and opened on the restored store for the `store.restore` entry.
   * Given for an unkeyed backup, the restored log is keyed (an `audit.keyed` entry anchors it).
   */
  provider?: KeyProvider;
}

/**
 * Restores a backup written by {@link backupStore} into an empty store: checks the file's digest, verifies its audit
 * chain against its head, writes everything verbatim in one transaction, then appends a `store.restore` entry. The
 * restored chain continues the original one.
 * @returns what was restored.
 * @throws IntegrityError `INTEGRITY_FAILED` (nothing written) when the file was truncated or modified, or its audit
 *   chain does not verify (the message names the first bad entry); FormatError / UnsupportedFormatError for a file
 *   that is not a backup this build reads; KeyfoldError `ALREADY_EXISTS` when the store is not empty.
 * @example
 * ```ts
 * import { openSqliteKeyStore, restoreStore } from '@keyfold/keystore';
 *
 * const store = await openSqliteKeyStore({ path: './restored.db' });
 * await restoreStore({ store, path: './keyfold.backup' });
 * ```
 */
export async function restoreStore(options: RestoreOptions): Promise<BackupSummary> {
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  const { store, path } = options;
  assertName(path, 'path', 4096);
  const actor = options.actor ?? 'keyfold';
  assertName(actor, 'actor');
  if (options.provider !== undefined && !isKeyProvider(options.provider)) throw new TypeError('provider must be a KeyProvider');
  const records = await readBackup(path);
  // Another installation's backup: refused before its audit key is even tried (it would not unwrap here anyway).
  const lock = records.installLock;
  if (options.provider && lock && !sameProvider(lock, options.provider)) {
    throw new PolicyError(
      'PROVIDER_MISMATCH',
      `${path} is a backup of another installation: its install lock is ${kekName(lock)} but this installation's provider is ` +
        `${kekName(options.provider)}; restore it with that installation's provider. Nothing was written.`,
    );
  }
  let verification: AuditVerification;
  if (records.auditKey) {
    if (!options.provider) {
      throw new ConfigError(`the audit log in ${path} is keyed: restore it with the installation's KEK provider (options.provider), which verifies its MACs`);
    }
    const key = await AuditKey.open(records.auditKey, [options.provider], path);
    try {
      verification = verifyAuditMacs(records.audit, records.auditHead, key);
    } finally {
      key.wipe();
    }
  } else {
    verification = verifyAuditChain(records.audit, records.auditHead);
  }
  if (!verification.ok) {
    throw new IntegrityError(
      `refusing to restore ${path}: its audit log does not verify (${verification.problem?.kind ?? 'problem'} at entry #${verification.problem?.seq ?? '?'}: ${verification.problem?.message ?? ''}); nothing was written`,
    );
  }
  if (!(await store.isEmpty())) throw new KeyfoldError('ALREADY_EXISTS', `the key store ${store.location} is not empty; restore only into a new store`);
  await store.importRecords(records);
  if (options.provider) await store.openAuditKey(options.provider, { actor });
  await store.appendAudit({
    actor,
    event: 'store.restore',
    subject: store.location,
    details: { path, dataKeys: records.dataKeys.length, restoredHead: records.auditHead.seq, digest: records.digest },
  });
  return {
    path,
    dataKeys: records.dataKeys.length,
    kekVersions: records.kekVersions.length,
    auditEntries: records.audit.length,
    auditHead: records.auditHead,
    digest: records.digest,
  };
}
