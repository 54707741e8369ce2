/**
 * Command table entries of the key store commands (`kek list|verify|rotate|retire`, `tenant ...`, `migrate`,
 * `audit ...`, `rotate --if-due`, `backup`, `restore`). Data only, like `table.ts`: each command module is
 * imported when the command runs, and `@keyfold/keystore` / `@keyfold/rotation` only inside those modules.
 * @module
 */
import type { CommandModule } from '../command.js';
import type { CommandSpec, OptionSpec } from './table.js';

const TENANT: OptionSpec = { type: 'string', short: 't', valueName: 'ID', description: 'tenant id (1-64 of A-Z a-z 0-9 . _ -)' };
const BATCH: OptionSpec = { type: 'string', valueName: 'N', description: 'keys per transaction (default 500)' };
const CONCURRENCY: OptionSpec = {
  type: 'string',
  valueName: 'N',
  description: 'keys unwrapped/wrapped at once (default 1 for file/env, 16 for key services and HSMs)',
};

export const kekList: CommandSpec = {
  name: 'kek list',
  summary: 'list the KEK versions the key store knows, with how many keys each holds',
  usage: 'keyfold kek list [--dir DIR] [--json]',
  description: ['Reads the key store only: no passphrase or provider access.'],
  options: {},
  examples: ['keyfold kek list', 'keyfold kek list --json | jq ".versions[] | select(.state==\\"active\\")"'],
  load: () => import('../commands/kek-list.js'),
};

export const kekVerify: CommandSpec = {
  name: 'kek verify',
  summary: 'prove every stored key still unwraps; with --target, that a KEK version is ready for a rotation',
  usage: 'keyfold kek verify [--kek-version V | --target N] [--dir DIR] [--json]',
  description: [
    'Unwraps every live data key with the configured provider and compares its key check value. Exit 3 ' +
      '(INTEGRITY_FAILED) when any key fails, listing the ids and error codes. A progress bar is shown on a terminal. ' +
      'With --kek-version V only the keys under V are checked; when none is, the result says 0 keys were checked and ' +
      'that nothing about V was verified.',
    '--target N is the check before a rotation to N: N must work here (a throwaway key wrapped under N and unwrapped ' +
      "when N is the version this provider writes with; otherwise N must be among the provider's loaded versions and a " +
      'stored key under N, if any, must unwrap) and every live process registered in the key store must have loaded ' +
      'N. Otherwise the processes that have not (host, pid, start time, versions loaded) are listed and it exits 1 ' +
      '(NOT_READY). Processes register themselves while they have the store open with the provider (every keyfold ' +
      "command that uses the KEK, and applications through openTenantKeys); 'keyfold status' lists them.",
  ],
  options: {
    'kek-version': { type: 'string', valueName: 'V', description: 'only keys under this KEK version' },
    target: { type: 'string', valueName: 'N', description: 'readiness of version N for a rotation (probe here + every live process has loaded it)' },
    concurrency: CONCURRENCY,
  },
  examples: ['keyfold kek verify', 'keyfold kek verify --kek-version 1 --json', 'keyfold kek verify --target 2'],
  load: () => import('../commands/kek-verify.js'),
};

export const kekRotate: CommandSpec = {
  name: 'kek rotate',
  summary: "re-wrap stored keys under the provider's active KEK version",
  usage:
    'keyfold kek rotate [--from-version N] [--to-version M] [--force] [--dry-run] [--batch-size N] [--concurrency N] [--lock-wait S] [--dir DIR] [--json]',
  description: [
    "Run 'keyfold kek add' (or add the version in your key service) first. Only data keys are re-wrapped, never " +
      'data. Each key is verified to unwrap to the same key before it is written; batches commit with a checkpoint, ' +
      'so Ctrl-C (or a crash) stops cleanly and the next run resumes. A second run re-wraps nothing. Exit 3 when ' +
      'some keys failed (they are left as they were and listed). On PostgreSQL, keys another transaction holds ' +
      'locked are waited for (--lock-wait) and, if still locked, listed as LOCKED with exit 1: run it again.',
    "Before writing anything the target must be ready, as 'keyfold kek verify --target' checks: when a live " +
      'registered process has not loaded it (or it does not work here) the processes are listed and it exits 1 ' +
      '(NOT_READY) with nothing written. --force rotates anyway; the kek.rotate audit entry records it, with the ' +
      'processes that were not ready. The audit entry records --from-version and the target version too.',
    'A run holds its checkpoint under a lease it renews while it works (30 s): a second run of the same rotation ' +
      'is refused (UNAVAILABLE) while the lease lives, and takes the rotation over from its checkpoint once it ' +
      'expired (at once when the first run was a process of this machine that no longer runs).',
  ],
  options: {
    'from-version': { type: 'string', valueName: 'N', description: 'only the keys under version N (default: every version but the target)' },
    'to-version': {
      type: 'string',
      valueName: 'M',
      description: "the target: must be the key store's active version and the one the provider writes with (default: that one)",
    },
    force: { type: 'boolean', description: 'rotate even when the target is not ready (recorded in the audit entry)' },
    'dry-run': { type: 'boolean', description: 'check every key unwraps and count what would change; write nothing' },
    'batch-size': BATCH,
    concurrency: CONCURRENCY,
    'lock-wait': { type: 'string', valueName: 'S', description: 'seconds to wait for keys locked by another transaction (PostgreSQL; default 30, 0: do not wait)' },
  },
  examples: [
    'keyfold kek add && keyfold kek verify --target 2 && keyfold kek rotate',
    'keyfold kek rotate --from-version 1 --to-version 2',
    'keyfold kek rotate --json | jq .rewrapped',
  ],
  load: () => import('../commands/kek-rotate.js'),
};

export const kekActivate: CommandSpec = {
  name: 'kek activate',
  summary: 'move the key store\'s active KEK version (the version every process seals under)',
  usage: 'keyfold kek activate --kek-version V [--dir DIR] [--json]',
  description: [
    'The key store, not each host, decides which KEK version new envelopes and keys use. Activate a new version once ' +
      'every host has it, or an older version that is not retired (rollback). Prints from → to; audited (kek.activate).',
    'A version the store does not know yet is registered when this host has loaded it (and it round-trips here). ' +
      'Refused (exit 1) for a version neither registered nor loaded here (KEY_NOT_FOUND) and for a retired one ' +
      '(KEY_VERSION_RETIRED); nothing changes then. Hosts that lack the active version refuse to seal (KEY_NOT_FOUND, ' +
      'naming the variable, label or KEK file version to add) and still open what they have.',
  ],
  options: { 'kek-version': { type: 'string', valueName: 'V', description: 'the version to make active' } },
  examples: ['keyfold kek activate --kek-version 3', 'keyfold kek activate --kek-version 2 --json | jq .from'],
  load: () => import('../commands/kek-activate.js'),
};

export const kekRetire: CommandSpec = {
  name: 'kek retire',
  summary: 'retire a KEK version nothing references any more',
  usage: 'keyfold kek retire --kek-version V [--dir DIR] [--json]',
  description: [
    "Refused (exit 1, POLICY_VIOLATION) while any key is wrapped under the version or it is the active one: run 'keyfold " +
      "kek rotate' first. After retiring, remove the version from the provider at your own pace.",
  ],
  options: { 'kek-version': { type: 'string', valueName: 'V', description: 'the version to retire' } },
  examples: ['keyfold kek retire --kek-version 1'],
  load: () => import('../commands/kek-retire.js'),
};

const tenantLoad = (): Promise<CommandModule> => import('../commands/tenant.js');

export const tenantCreate: CommandSpec = {
  name: 'tenant create',
  summary: "create a tenant and its key (wrapped under the installation's KEK)",
  usage: 'keyfold tenant create --tenant ID [--dir DIR] [--json]',
  options: { tenant: TENANT },
  examples: ['keyfold tenant create --tenant acme', 'keyfold encrypt --tenant acme --in a.pdf --out a.pdf.kf'],
  load: tenantLoad,
};

export const tenantList: CommandSpec = {
  name: 'tenant list',
  summary: 'list tenants, their key versions and whether they were shredded',
  usage: 'keyfold tenant list [--dir DIR] [--json]',
  description: ['Reads the key store only: no passphrase or provider access.'],
  options: {},
  load: tenantLoad,
};

export const tenantRotate: CommandSpec = {
  name: 'tenant rotate',
  summary: "add a new version of a tenant's key (older versions keep opening); --reencrypt: move its envelopes and destroy the old one",
  usage:
    'keyfold tenant rotate --tenant ID [--dir DIR] [--json]\n' +
    '       keyfold tenant rotate --tenant ID --reencrypt FILE... | DIR... --recursive | --stdin-list\n' +
    '                             [--table T --column C [--id-column ID] --database-url URL] [--settle S] [--dir DIR] [--json]',
  description: [
    'Without --reencrypt: new envelopes of the tenant use the new version; the older versions keep opening what ' +
      'they sealed.',
    "--reencrypt is a per-user vault's \"rotate my key\" with shredding: after the rotation every envelope of the " +
      'tenant in the files (binary or kf1. armor; directories with --recursive, links not followed) and in the table ' +
      "column given (as for 'keyfold rewrap') is re-wrapped under the new version: its data key is wrapped again, " +
      'the body bytes are not touched and the key commitment is kept (the data key itself does not change). Each ' +
      'new envelope is opened before it replaces the old one; files are replaced atomically, rows by ' +
      'compare-and-swap. Envelopes of other tenants or under the KEK are left as they are.',
    'Only when no envelope failed and a last header-only pass finds none of the tenant still under an old version ' +
      'are the old versions destroyed (audited tenant.shred-version): what only they opened elsewhere can never be ' +
      'opened again. Otherwise they are kept, each failed file or row is listed with its code (exit 3 for a ' +
      'tampered envelope, DECRYPT_FAILED; 1 for I/O errors or envelopes left behind), and running the same command ' +
      'again resumes: it does not rotate again and re-wraps only what is left.',
    'Other processes use the old active version from their cache for up to a minute: the run first waits until the ' +
      'new version is --settle seconds old (default 60; 0 when no other process seals for the tenant).',
  ],
  options: {
    tenant: TENANT,
    reencrypt: { type: 'boolean', description: "re-wrap the tenant's envelopes under the new version, then destroy the old version(s)" },
    recursive: { type: 'boolean', short: 'r', description: 'walk directories (symbolic links are not followed)' },
    'stdin-list': { type: 'boolean', description: 'read the file paths from stdin, one a line' },
    table: { type: 'string', valueName: 'T', description: 'a table holding envelopes (schema.table for PostgreSQL)' },
    column: { type: 'string', valueName: 'C', description: 'the envelope column of --table' },
    'id-column': { type: 'string', valueName: 'ID', description: 'the unique, ordered row id column of --table (default id)' },
    'database-url': { type: 'string', valueName: 'URL', description: 'postgres://user@host:port/db (password from the URL or $PGPASSWORD) or sqlite:PATH' },
    settle: { type: 'string', valueName: 'S', description: 'seconds the new version must be active before envelopes are read (default 60)' },
    'batch-size': { type: 'string', valueName: 'N', description: '--table: rows per batch (default 500)' },
    concurrency: { type: 'string', valueName: 'N', description: 'envelopes re-wrapped at once (default 1)' },
  },
  positionals: true,
  examples: [
    'keyfold tenant rotate --tenant acme',
    'keyfold tenant rotate --tenant alice --reencrypt -r /srv/vault/alice',
    'keyfold tenant rotate --tenant alice --reencrypt --table items --column secret --database-url sqlite:./vault.db',
  ],
  load: tenantLoad,
};

export const tenantShred: CommandSpec = {
  name: 'tenant shred',
  summary: "destroy every version of a tenant's key (its data can never be opened again), or one old version",
  usage: 'keyfold tenant shred --tenant ID [--key-version N] --yes [--dir DIR] [--json]',
  description: [
    'Irreversible (crypto-shredding, e.g. for erasure requests): every envelope sealed for the tenant fails to open ' +
      'from then on (decrypt exits 3, KEY_DESTROYED). Audited. Copies of the store made earlier (backups) still hold ' +
      'the wrapped key: destroy those too.',
    'With --key-version N only that version is destroyed (audited tenant.shred-version): envelopes still sealed ' +
      'under it can never be opened again (decrypt exits 3, KEY_DESTROYED), the other versions keep working. Refused for the active version (exit 1, ' +
      "POLICY_VIOLATION): rotate first, or use 'tenant rotate --reencrypt', which moves the envelopes before it " +
      'destroys. A version already destroyed is reported and left as it is (exit 0).',
  ],
  options: {
    tenant: TENANT,
    'key-version': { type: 'string', valueName: 'N', description: 'destroy only this old version of the key' },
    yes: { type: 'boolean', short: 'y', description: 'confirm: this cannot be undone' },
  },
  examples: ['keyfold tenant shred --tenant acme --yes', 'keyfold tenant shred --tenant acme --key-version 1 --yes'],
  load: tenantLoad,
};

export const migrate: CommandSpec = {
  name: 'migrate',
  summary: 'move the installation to another KEK provider (e.g. file -> KMS -> HSM)',
  usage: 'keyfold migrate --provider KIND [provider options as for init] [--dry-run] [--dir DIR] [--json]',
  description: [
    'Opens the new provider from the same options as init (env, aws-kms, vault-transit, gcp-kms, azure-kv, ' +
      'pkcs11), re-wraps every stored key from the current provider to it, then moves the store install lock and ' +
      'config.json to the new provider, atomically and audited. When any key fails nothing moves (exit 3); run it ' +
      'again after fixing the cause. Envelopes sealed directly under the old provider (without a tenant) still need it.',
  ],
  options: {
    provider: { type: 'string', valueName: 'KIND', description: 'the new provider: env, aws-kms, vault-transit, gcp-kms, azure-kv, pkcs11' },
    'dry-run': { type: 'boolean', description: 'check every key unwraps; change nothing' },
    'batch-size': BATCH,
    concurrency: CONCURRENCY,
  },
  examples: ['KEYFOLD_KEK_V1=$(openssl rand -hex 32) keyfold migrate --provider env', 'keyfold migrate --provider aws-kms --key-id alias/keyfold'],
  load: () => import('../commands/migrate.js'),
};

export const auditList: CommandSpec = {
  name: 'audit list',
  summary: 'show audit log entries (who did what, when; never key material)',
  usage: 'keyfold audit list [--after SEQ] [--limit N] [--event NAME] [--subject S] [--dir DIR] [--json]',
  options: {
    after: { type: 'string', valueName: 'SEQ', description: 'entries after this sequence number' },
    limit: { type: 'string', valueName: 'N', description: 'at most N entries (default 100)' },
    event: { type: 'string', valueName: 'NAME', description: 'only this event (tenant.shred, kek.rotate, ...)' },
    subject: { type: 'string', valueName: 'S', description: 'only this subject (tenant:acme, ...)' },
  },
  examples: ['keyfold audit list --event tenant.shred', 'keyfold audit list --after 100 --json'],
  load: () => import('../commands/audit.js'),
};

export const auditVerify: CommandSpec = {
  name: 'audit verify',
  summary: "verify the audit log: its MACs under the installation's audit key, and its hash chain",
  usage: 'keyfold audit verify [--unkeyed] [--dir DIR] [--json]',
  description: [
    "Opens the installation's KEK provider (passphrase, key service, HSM), unwraps the audit key and checks every " +
      "entry's MAC, the hash chain and the head record's MAC. Exit 3 (INTEGRITY_FAILED) naming the first edited, " +
      'deleted, reordered, inserted or unreadable entry, a truncated log whose head was moved, or a log re-chained by ' +
      'anyone without the KEK. A store written before the log was keyed is keyed now (an audit.keyed entry anchors ' +
      'its older entries).',
    '--unkeyed checks the hash chain only, without key access; it cannot catch a log re-chained or truncated together ' +
      'with its head. Neither check can tell a whole store put back to an older copy: keep the printed head MAC elsewhere.',
  ],
  options: { unkeyed: { type: 'boolean', description: 'check the hash chain only, without the KEK (weaker: see above)' } },
  examples: ['keyfold audit verify --json | jq .head', 'keyfold audit verify --unkeyed'],
  load: () => import('../commands/audit.js'),
};

export const rotate: CommandSpec = {
  name: 'rotate',
  summary: 'apply the rotation policy: add a KEK version or re-wrap when due (for cron)',
  usage: 'keyfold rotate --if-due [--max-age DAYS] [--grace-period HOURS] [--dir DIR] [--json]',
  description: [
    'Adds a new KEK version when the active one is older than --max-age (default 90 days; file and pkcs11 providers), ' +
      'and re-wraps the stored keys once a new version has been active for --grace-period (default 24 hours). ' +
      'Does nothing (exit 0) when nothing is due.',
  ],
  options: {
    'if-due': { type: 'boolean', description: 'required: act only when the policy says so' },
    'max-age': { type: 'string', valueName: 'DAYS', description: 'maximum age of the active KEK version (default 90)' },
    'grace-period': { type: 'string', valueName: 'HOURS', description: 'wait after a new version before re-wrapping (default 24)' },
  },
  examples: ['0 3 * * * keyfold rotate --if-due --json >> /var/log/keyfold-rotate.json'],
  load: () => import('../commands/rotate-if-due.js'),
};

export const backup: CommandSpec = {
  name: 'backup',
  summary: 'write a backup of the key store (wrapped keys only) to a file',
  usage: 'keyfold backup --out FILE [--dir DIR] [--json]',
  description: [
    'Install lock, KEK versions, every wrapped data key and the audit log, with a digest; never a plaintext key. ' +
      'Refused (exit 3) when the audit chain does not verify. FILE must not exist; it is written with mode 0600.',
  ],
  options: { out: { type: 'string', short: 'o', valueName: 'FILE', description: 'the backup file to create' } },
  examples: ['keyfold backup --out /backups/keyfold-$(date +%F).ndjson'],
  load: () => import('../commands/backup.js'),
};

export const restore: CommandSpec = {
  name: 'restore',
  summary: 'restore a backup into a new, empty key store',
  usage: 'keyfold restore --in FILE [--dir DIR] [--json]',
  description: [
    "Restores into the store config.json names, which must not exist yet (SQLite) or be empty (PostgreSQL). The file's " +
      'digest and audit chain are verified first: a truncated or tampered backup is refused with exit 3 and nothing ' +
      'is written. So is a backup of another installation (its install lock names another provider than ' +
      'config.json): exit 3, PROVIDER_MISMATCH.',
  ],
  options: { in: { type: 'string', short: 'i', valueName: 'FILE', description: 'the backup file' } },
  examples: ['keyfold restore --in /backups/keyfold-2025-01-31.ndjson'],
  load: () => import('../commands/backup.js'),
};

export const TENANT_OPTION = TENANT;
