/**
 * The command table: names, help text and option specs of every command, and a lazy loader for each command's
 * module. This is all `keyfold --help` (and `keyfold <cmd> --help`) loads: the command modules, the core and the
 * provider packages are imported only when a command actually runs.
 * @module
 */
import * as attest from './attest.js';
import type { CommandModule } from '../command.js';
import { rewrap } from './rewrap.js';
import * as secrets from './secrets.js';
import * as store from './store.js';

/** One option, in the shape `node:util` `parseArgs` takes, plus its help text. */
export interface OptionSpec {
  readonly type: 'string' | 'boolean';
  readonly short?: string;
  readonly multiple?: boolean;
  /** Name shown for the value in help (`FILE`, `k=v`). */
  readonly valueName?: string;
  readonly description: string;
}

export type OptionSpecs = Readonly<Record<string, OptionSpec>>;

export interface CommandSpec {
  /** Full name as typed: `encrypt`, `provider probe`. */
  readonly name: string;
  readonly summary: string;
  readonly usage: string;
  /** Paragraphs shown after the usage line. */
  readonly description?: readonly string[];
  readonly options: OptionSpecs;
  /** The command takes positional arguments (and arguments after `--`), passed as `positionals` / `rest`. */
  readonly positionals?: boolean;
  readonly examples?: readonly string[];
  /** Imports the module that runs the command. Absent only for `help`, which the dispatcher answers itself. */
  readonly load?: () => Promise<CommandModule>;
}

export interface GroupSpec {
  readonly name: string;
  readonly summary: string;
  readonly subcommands: Readonly<Record<string, CommandSpec>>;
}

/** Options every command accepts. */
export const GLOBAL_OPTIONS: OptionSpecs = {
  dir: {
    type: 'string',
    valueName: 'DIR',
    description: 'configuration directory (default: $KEYFOLD_DIR, else ./.keyfold)',
  },
  json: { type: 'boolean', description: 'machine-readable output: one JSON document on stdout' },
  help: { type: 'boolean', short: 'h', description: 'show help for the command' },
  version: { type: 'boolean', short: 'V', description: 'print the keyfold version' },
};

const IN_OPTION: OptionSpec = {
  type: 'string',
  short: 'i',
  valueName: 'FILE',
  description: "read from FILE; '-' or absent: stdin",
};

const CONTEXT_OPTION: OptionSpec = {
  type: 'string',
  short: 'c',
  multiple: true,
  valueName: 'k=v',
  description: 'encryption context entry (repeatable); authenticated and stored in clear, never put secrets in it',
};

const init: CommandSpec = {
  name: 'init',
  summary: 'create or connect a key-encryption key and write the configuration in ./.keyfold',
  usage: 'keyfold init [--provider file|env|aws-kms|vault-transit|gcp-kms|azure-kv|pkcs11] [provider options] [--dir DIR]',
  description: [
    'The default (file provider) creates DIR (mode 0700), a passphrase-sealed KEK file in DIR/keys and DIR/config.json ' +
      '(mode 0600, no secrets). The passphrase comes from $KEYFOLD_PASSPHRASE or, on a terminal, from a hidden prompt ' +
      'asked twice. Keep the passphrase safe: without it nothing sealed with this KEK file can be opened.',
    'With --provider env the key-encryption keys are versioned hex variables (KEYFOLD_KEK_V1, KEYFOLD_KEK_V2, ...) ' +
      "that you create (e.g. with 'openssl rand -hex 32') and pass to every keyfold run; init checks they are usable " +
      'and records the prefix and key id.',
    'With a key service or an HSM the key stays there: init opens it once to check it works and records how to reach ' +
      'it (key id, address, labels), never a credential. aws-kms: --key-id, credentials from the AWS SDK default ' +
      'chain. vault-transit: --key-name, the token in VAULT_TOKEN or AppRole (--auth approle) with ' +
      'KEYFOLD_VAULT_ROLE_ID and KEYFOLD_VAULT_SECRET_ID. gcp-kms: --key-name, Application Default Credentials. ' +
      'azure-kv: --key-id, DefaultAzureCredential. pkcs11: --library, --slot or --token-label, --key-label, and the ' +
      'user PIN from --pin-env or --pin-file (there is no --pin); when the token holds no KEK with that label yet, ' +
      'init creates version 1 inside it.',
    'init also creates the key store (tenant keys, KEK version registry, audit log): SQLite in DIR/keystore.db ' +
      '(mode 0600) by default, or PostgreSQL with --store postgres://... (config.json records the URL without its ' +
      'password). The store records the provider (the install lock): opening it with another one exits 3.',
    'init refuses (exit 1, ALREADY_EXISTS) when DIR is already initialised, and then writes nothing. Credentials the ' +
      'service or token refuses exit 3 (ACCESS_DENIED).',
  ],
  options: {
    provider: {
      type: 'string',
      valueName: 'KIND',
      description: 'where the key-encryption key lives: file (default), env, aws-kms, vault-transit, gcp-kms, azure-kv, pkcs11',
    },
    kdf: {
      type: 'string',
      valueName: 'scrypt|pbkdf2',
      description: 'file: passphrase key derivation (default: the provider default)',
    },
    prefix: {
      type: 'string',
      valueName: 'NAME',
      description: 'env: variable prefix; versions are <prefix>1, <prefix>2, ... (default: KEYFOLD_KEK_V)',
    },
    'key-id': {
      type: 'string',
      valueName: 'KEY',
      description: 'aws-kms: key id, key ARN, alias/NAME or alias ARN; azure-kv: the key kid (versionless follows rotations)',
    },
    region: { type: 'string', valueName: 'REGION', description: "aws-kms: AWS region (default: the SDK's, e.g. AWS_REGION)" },
    endpoint: {
      type: 'string',
      valueName: 'URL|HOST:PORT',
      description: 'aws-kms: endpoint URL; gcp-kms: HOST:PORT (this machine: an emulator, plaintext, no credentials)',
    },
    'key-name': {
      type: 'string',
      valueName: 'NAME',
      description: 'vault-transit: transit key name; gcp-kms: projects/P/locations/L/keyRings/R/cryptoKeys/K',
    },
    'vault-addr': { type: 'string', valueName: 'URL', description: 'vault-transit: Vault address (default: $VAULT_ADDR)' },
    mount: { type: 'string', valueName: 'PATH', description: 'vault-transit: transit mount (default: transit)' },
    namespace: { type: 'string', valueName: 'NS', description: 'vault-transit: namespace (default: $VAULT_NAMESPACE)' },
    auth: {
      type: 'string',
      valueName: 'token|approle',
      description: 'vault-transit: VAULT_TOKEN, or AppRole (default: approle when KEYFOLD_VAULT_ROLE_ID is set)',
    },
    transport: { type: 'string', valueName: 'grpc|rest', description: 'gcp-kms: transport (default: grpc)' },
    insecure: {
      type: 'boolean',
      description: 'gcp-kms: plaintext without credentials to a non-local --endpoint (development mode only)',
    },
    algorithm: {
      type: 'string',
      valueName: 'RSA-OAEP-256|A256KW',
      description: 'azure-kv: wrap algorithm (default RSA-OAEP-256; A256KW for Managed HSM oct-HSM keys)',
    },
    'ca-file': { type: 'string', valueName: 'FILE', description: 'azure-kv: PEM CA certificates to trust for the vault' },
    library: { type: 'string', valueName: 'PATH', description: 'pkcs11: the PKCS#11 library (.so)' },
    slot: { type: 'string', valueName: 'N', description: 'pkcs11: slot id of the token' },
    'token-label': { type: 'string', valueName: 'LABEL', description: 'pkcs11: label of the token (instead of --slot)' },
    'key-label': { type: 'string', valueName: 'LABEL', description: 'pkcs11: KEK label; versions are LABEL.v1, LABEL.v2, ...' },
    mechanism: {
      type: 'string',
      valueName: 'AES_GCM|AES_KEY_WRAP_PAD',
      description: 'pkcs11: how data keys are wrapped inside the token (default: AES_GCM)',
    },
    sessions: { type: 'string', valueName: 'N', description: 'pkcs11: session pool size, 1-64 (default: 4)' },
    'pin-env': { type: 'string', valueName: 'NAME', description: 'pkcs11: environment variable holding the user PIN' },
    'pin-file': { type: 'string', valueName: 'FILE', description: 'pkcs11: file holding the user PIN (mode 0600)' },
    store: {
      type: 'string',
      valueName: 'URL|FILE',
      description: 'key store: postgres://user@host/db (password from $KEYFOLD_DATABASE_URL or $PGPASSWORD) or an SQLite file (default: DIR/keystore.db; $KEYFOLD_DATABASE_URL also selects PostgreSQL)',
    },
    'store-schema': { type: 'string', valueName: 'NAME', description: 'PostgreSQL schema of the keyfold_* tables (default: public)' },
  },
  examples: [
    'KEYFOLD_PASSPHRASE=... keyfold init',
    'keyfold init --dir /etc/myapp/keyfold --kdf scrypt',
    'keyfold init --provider aws-kms --key-id alias/keyfold --region eu-west-1',
    'VAULT_ADDR=https://vault:8200 VAULT_TOKEN=... keyfold init --provider vault-transit --key-name keyfold',
    'keyfold init --provider gcp-kms --key-name projects/p/locations/global/keyRings/app/cryptoKeys/kek',
    'keyfold init --provider azure-kv --key-id https://my-vault.vault.azure.net/keys/kek',
    'keyfold init --provider pkcs11 --library /usr/lib/softhsm/libsofthsm2.so --token-label keyfold \\',
    '    --key-label payments --pin-env KEYFOLD_HSM_PIN',
  ],
  load: () => import('../commands/init.js'),
};

const status: CommandSpec = {
  name: 'status',
  summary: 'show the configuration, the provider and its key versions',
  usage: 'keyfold status [--dir DIR] [--json]',
  description: [
    'Opens the provider and asks it to describe its key: kind, key id, protection, active and known versions, ' +
      'capabilities and the latency of that call.',
    'With a key store: its data key counts (in total, and active / retired per KEK version; destroyed keys have no ' +
      'version left), interrupted rotations, and the live processes registered in it (host, pid, start time, the ' +
      'KEK versions each loaded). Reads the store only.',
  ],
  options: {},
  examples: ['keyfold status', 'keyfold status --json | jq .provider.activeVersion', 'keyfold status --json | jq ".store.processes[] | {host, pid, versions}"'],
  load: () => import('../commands/status.js'),
};

const probe: CommandSpec = {
  name: 'provider probe',
  summary: 'check that the configured provider can wrap and unwrap a key',
  usage: 'keyfold provider probe [--dir DIR] [--json]',
  description: [
    'Prints ok, latency and capabilities. Exit 1 when the provider is not healthy, including when it cannot be ' +
      'reached or refuses the credentials. For pkcs11 it also lists the mechanisms the token offers (read without ' +
      'the PIN) and which wrapping modes they allow.',
  ],
  options: {},
  examples: ['keyfold provider probe --json'],
  load: () => import('../commands/provider-probe.js'),
};

const kekAdd: CommandSpec = {
  name: 'kek add',
  summary: 'add a new key-encryption key version and make it active',
  usage: 'keyfold kek add [--no-activate] [--dir DIR] [--json]',
  description: [
    'file: a new random version in the passphrase-sealed KEK file. pkcs11: the next version (LABEL.v<N+1>) generated ' +
      'inside the token, never extractable. The version is registered in the key store and becomes its active ' +
      'version: new envelopes use it; older versions keep opening.',
    "--no-activate registers it without moving the key store's active version: roll the version out to every host " +
      "first, then 'keyfold kek activate --kek-version V'.",
    'Key services (aws-kms, vault-transit, gcp-kms, azure-kv) rotate keys themselves: kek add says which command ' +
      'of the service to use instead (exit 1, UNSUPPORTED); env: add the next <prefix><N> variable yourself, then ' +
      "'keyfold kek activate'.",
  ],
  options: {
    'no-activate': { type: 'boolean', description: "add and register the version, but leave the key store's active version where it is" },
  },
  examples: ['keyfold kek add', 'keyfold kek add --no-activate --json | jq .version'],
  load: () => import('../commands/kek-add.js'),
};

const encrypt: CommandSpec = {
  name: 'encrypt',
  summary: 'seal data into an envelope',
  usage: 'keyfold encrypt [--in FILE|-] [--out FILE|-] [--context k=v]... [--armor]',
  description: [
    'Binary output is streamed in frames, so files of any size work. --armor writes one line of text ' +
      "('kf1.' + base64url) for databases and config files; it holds the whole envelope in memory.",
  ],
  options: {
    in: IN_OPTION,
    out: {
      type: 'string',
      short: 'o',
      valueName: 'FILE',
      description: "write to FILE (replaced only when sealing succeeds); '-' or absent: stdout",
    },
    context: CONTEXT_OPTION,
    tenant: { ...store.TENANT_OPTION, description: "seal under this tenant's key (keyfold tenant create) instead of the KEK" },
    armor: { type: 'boolean', short: 'a', description: "text output: 'kf1.' + base64url" },
  },
  examples: [
    'keyfold encrypt --in report.pdf --out report.pdf.kf --context tenant=acme',
    "echo -n 'db-password' | keyfold encrypt --armor --context app=billing",
  ],
  load: () => import('../commands/encrypt.js'),
};

const decrypt: CommandSpec = {
  name: 'decrypt',
  summary: 'open an envelope (binary or armored, detected automatically)',
  usage: 'keyfold decrypt [--in FILE|-] [--out FILE|-] [--context k=v]...',
  description: [
    'With --context the envelope must carry exactly that context, else exit 3 (CONTEXT_MISMATCH). ' +
      'Tampered or foreign data exits 3 (DECRYPT_FAILED).',
    '--out FILE is written to a temporary file (mode 0600) in the same directory and renamed only when the whole ' +
      'envelope verified, so a failure never leaves partial plaintext in FILE. On stdout, frames are written as each ' +
      'one verifies: a truncated or tampered stream stops with exit 3 after the frames before the damage.',
  ],
  options: {
    in: IN_OPTION,
    out: {
      type: 'string',
      short: 'o',
      valueName: 'FILE',
      description: "write plaintext to FILE (mode 0600, replaced only on success); '-' or absent: stdout",
    },
    context: CONTEXT_OPTION,
    tenant: { ...store.TENANT_OPTION, description: 'open an envelope sealed with --tenant ID (exit 3 once the tenant is shredded)' },
  },
  examples: [
    'keyfold decrypt --in report.pdf.kf --out report.pdf --context tenant=acme',
    "echo 'kf1.AAE...' | keyfold decrypt",
  ],
  load: () => import('../commands/decrypt.js'),
};

const inspect: CommandSpec = {
  name: 'inspect',
  summary: 'show an envelope header (no key access, no passphrase)',
  usage: 'keyfold inspect [--in FILE|-] [--json]',
  description: ['Prints format version, suite, framing, the stored context and the wrapped keys (kind, key id, version).'],
  options: { in: IN_OPTION },
  examples: ['keyfold inspect --in report.pdf.kf --json'],
  load: () => import('../commands/inspect.js'),
};

const demo: CommandSpec = {
  name: 'demo',
  summary: 'a self-contained tour: key store, tenants, 10,000 records, KEK rotation, shredding, audit',
  usage: 'keyfold demo [--records N] [--json]',
  description: [
    'In a temporary directory: init (file KEK + SQLite key store) -> 3 tenants -> seal N records (default 10,000) ' +
      'under tenant keys -> add a KEK version and rotate with progress -> verify every record opens -> rotate one ' +
      "tenant key -> shred one tenant (its records refuse to open) -> verify the audit log -> a summary table. Also " +
      'shows that a flipped byte and a wrong context are refused. The passphrase is random and the key derivation ' +
      'deliberately cheap (demo only). The directory is removed at the end.',
  ],
  options: { records: { type: 'string', valueName: 'N', description: 'records to seal, 30-1000000 (default 10000)' } },
  load: () => import('../commands/demo.js'),
};

const help: CommandSpec = {
  name: 'help',
  summary: 'show help for a command',
  usage: 'keyfold help [COMMAND [SUBCOMMAND]]',
  options: {},
};

/** Top-level commands, in help order. */
export const COMMANDS: Readonly<Record<string, CommandSpec | GroupSpec>> = {
  init,
  status,
  provider: {
    name: 'provider',
    summary: 'provider operations',
    subcommands: { probe },
  },
  kek: {
    name: 'kek',
    summary: 'key-encryption key versions',
    subcommands: {
      list: store.kekList,
      add: kekAdd,
      activate: store.kekActivate,
      verify: store.kekVerify,
      rotate: store.kekRotate,
      retire: store.kekRetire,
    },
  },
  tenant: {
    name: 'tenant',
    summary: 'per-tenant keys (create, list, rotate, shred)',
    subcommands: { create: store.tenantCreate, list: store.tenantList, rotate: store.tenantRotate, shred: store.tenantShred },
  },
  rotate: store.rotate,
  rewrap,
  migrate: {
    ...store.migrate,
    // The new provider is described by the same options as init's (except the KEK file's and the store's).
    options: {
      ...Object.fromEntries(Object.entries(init.options).filter(([k]) => !['provider', 'kdf', 'store', 'store-schema'].includes(k))),
      ...store.migrate.options,
    },
  },
  audit: {
    name: 'audit',
    summary: 'the hash-chained audit log',
    subcommands: { list: store.auditList, verify: store.auditVerify },
  },
  backup: store.backup,
  restore: store.restore,
  encrypt,
  decrypt,
  inspect,
  secrets: secrets.group,
  attest: attest.group,
  demo,
  help,
};

export function isGroup(spec: CommandSpec | GroupSpec): spec is GroupSpec {
  return 'subcommands' in spec;
}
