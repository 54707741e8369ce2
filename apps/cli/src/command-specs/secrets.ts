/**
 * Command table entries of `keyfold secrets ...` (encrypted config files: .env, JSON, YAML, TOML). Data only, like
 * `table.ts`: each command module is imported when the command runs, and `@keyfold/secrets` only inside
 * those modules.
 * @module
 */
import type { CommandSpec, GroupSpec, OptionSpec } from './table.js';

const FORMAT: OptionSpec = {
  type: 'string',
  valueName: 'dotenv|json|yaml|toml',
  description: 'file format (default: from the extension: .env*, .json, .yaml/.yml, .toml)',
};
const IN_PLACE: OptionSpec = { type: 'boolean', short: 'w', description: 'rewrite FILE (atomically: temporary file + rename) instead of printing' };
const ADD_PROVIDER_DIR: OptionSpec = {
  type: 'string',
  multiple: true,
  valueName: 'DIR',
  description: 'another keyfold configuration directory whose provider may open FILE (repeatable)',
};
const KEY_GROUP: OptionSpec = {
  type: 'string',
  multiple: true,
  valueName: 'DIR[,DIR...]',
  description:
    'one key group: the keyfold configuration directories whose providers each open that group\'s share of the data ' +
    'key; repeat once per group (overrides key_groups of .keyfold.yaml)',
};
const SHAMIR_THRESHOLD: OptionSpec = {
  type: 'string',
  valueName: 'K',
  description: 'how many key groups together open the file: 1 to the number of groups (default: all; overrides shamir_threshold)',
};
const KEY_GROUPS_NOTE =
  'Key groups (k of n): with --key-group (or key_groups in .keyfold.yaml) the data key is split into one Shamir ' +
  'share per group, and any K groups (--shamir-threshold, shamir_threshold; default all) open the file. Every ' +
  'provider of every group must open before anything is written.';
const OPEN_NOTE =
  'A key-group file is opened with every provider available here among the configured one, --add-provider-dir, ' +
  'and the key_groups of .keyfold.yaml; fewer groups than its threshold exits 3 (THRESHOLD_NOT_MET).';
const CREDENTIALS_NOTE =
  'Keyfold credential variables are removed from the environment it gets: KEYFOLD_PASSPHRASE, the env ' +
  "provider's KEK variables (KEYFOLD_KEK_V<N> and KEYFOLD_KEK_ACTIVE, and <PREFIX><N> / <KEYID>_ACTIVE of every " +
  'configured prefix), the PKCS#11 PIN variable (--pin-env of every configuration, and KEYFOLD_HSM_PIN), ' +
  'KEYFOLD_DATABASE_URL, PGPASSWORD, VAULT_TOKEN, KEYFOLD_VAULT_ROLE_ID, KEYFOLD_VAULT_SECRET_ID and ' +
  'KEYFOLD_AZURE_STATIC_TOKEN; "every configuration" is the configured directory, --add-provider-dir, and the key ' +
  "groups of the file and of .keyfold.yaml. The cloud SDKs' own credentials (AWS_*, AZURE_*, " +
  'GOOGLE_APPLICATION_CREDENTIALS) are the machine\'s, not keyfold\'s, and stay.';
const FILE_NOTE =
  'FILE is never modified when the command fails. A wrong key, a tampered value or MAC exit 3 (DECRYPT_FAILED, ' +
  'INTEGRITY_FAILED); a malformed file exits 3 (FORMAT_INVALID).';

const encrypt: CommandSpec = {
  name: 'secrets encrypt',
  summary: 'encrypt the values of a config file (keys and layout stay readable)',
  usage:
    'keyfold secrets encrypt FILE [--in-place] [--key-group DIR[,DIR...]]... [--shamir-threshold K] ' +
    '[--add-provider-dir DIR]... [--format F] [--dir DIR] [--json]',
  description: [
    'Encrypts every value (or those the .keyfold.yaml rules file, searched from the directory of FILE upwards, ' +
      'selects) under a new data key wrapped by the configured provider, and prints the encrypted file. With ' +
      '--in-place FILE is replaced. Re-encrypting an already encrypted FILE in place keeps the ciphertext of unchanged ' +
      'values, and its data key and key groups (change those with secrets rotate). Plaintext values that look ' +
      'secret are warned about on stderr.',
    KEY_GROUPS_NOTE,
    FILE_NOTE,
  ],
  options: {
    'in-place': IN_PLACE,
    'key-group': KEY_GROUP,
    'shamir-threshold': SHAMIR_THRESHOLD,
    'add-provider-dir': ADD_PROVIDER_DIR,
    format: FORMAT,
  },
  positionals: true,
  examples: [
    'keyfold secrets encrypt .env --in-place',
    'keyfold secrets encrypt config.yaml > config.enc.yaml',
    'keyfold secrets encrypt .env --in-place --key-group /etc/kf-kms --key-group /etc/kf-vault --key-group ~/kf-offline --shamir-threshold 2',
  ],
  load: () => import('../commands/secrets-encrypt.js'),
};

const decrypt: CommandSpec = {
  name: 'secrets decrypt',
  summary: 'print the decrypted file (or one value)',
  usage: 'keyfold secrets decrypt FILE [--in-place | --extract PATH] [--add-provider-dir DIR]... [--format F] [--dir DIR]',
  description: [
    'Verifies the file MAC, then prints the plaintext file (exactly what was encrypted) to stdout. --extract prints ' +
      'one value (a dotted path: db.password, 0.data.token for a YAML multi-document file). --in-place writes the ' +
      'plaintext back to FILE.',
    OPEN_NOTE,
    FILE_NOTE,
  ],
  options: {
    'in-place': IN_PLACE,
    extract: { type: 'string', valueName: 'PATH', description: 'print only this value (dotted path)' },
    'add-provider-dir': ADD_PROVIDER_DIR,
    format: FORMAT,
  },
  positionals: true,
  examples: ['keyfold secrets decrypt .env', 'keyfold secrets decrypt config.yaml --extract db.password'],
  load: () => import('../commands/secrets-decrypt.js'),
};

const edit: CommandSpec = {
  name: 'secrets edit',
  summary: 'edit an encrypted file in $EDITOR',
  usage: 'keyfold secrets edit FILE [--add-provider-dir DIR]... [--format F] [--dir DIR]',
  description: [
    'Decrypts FILE into a private temporary file (mode 0600, in a new 0700 directory under $TMPDIR), runs $EDITOR ' +
      '(else $VISUAL, else vi), then re-encrypts, keeping the ciphertext of unchanged values. The temporary file is ' +
      'overwritten with zeros and deleted in every case (editor failure, Ctrl-C, kill). An edited file that no ' +
      'longer parses, or an editor that exits non-zero, leaves FILE untouched (exit 1).',
    `The editor runs with keyfold's environment: ${CREDENTIALS_NOTE}`,
    OPEN_NOTE,
  ],
  options: { 'add-provider-dir': ADD_PROVIDER_DIR, format: FORMAT },
  positionals: true,
  examples: ['EDITOR=nano keyfold secrets edit .env'],
  load: () => import('../commands/secrets-edit.js'),
};

const set: CommandSpec = {
  name: 'secrets set',
  summary: 'set one value of an encrypted file',
  usage: 'keyfold secrets set FILE PATH [VALUE | --stdin | --from-file F] [--add-provider-dir DIR]... [--format F] [--dir DIR]',
  description: [
    'The value comes from the argument (visible in the process list and shell history), --stdin (one trailing ' +
      'newline removed) or --from-file. Strings only. PATH is dotted (a.b.c). JSON is re-indented; YAML keeps its ' +
      'comments (spacing inside a line may be normalised); TOML is edited in place, and a change it cannot make ' +
      'that way (inside an array or inline table) exits 1 (UNSUPPORTED): use edit.',
  ],
  options: {
    stdin: { type: 'boolean', description: 'read the value from stdin' },
    'from-file': { type: 'string', valueName: 'F', description: 'read the value from file F' },
    'add-provider-dir': ADD_PROVIDER_DIR,
    format: FORMAT,
  },
  positionals: true,
  examples: ['printf %s "$TOKEN" | keyfold secrets set .env API_TOKEN --stdin'],
  load: () => import('../commands/secrets-set.js'),
};

const unset: CommandSpec = {
  name: 'secrets unset',
  summary: 'remove one value from an encrypted file',
  usage: 'keyfold secrets unset FILE PATH [--add-provider-dir DIR]... [--format F] [--dir DIR]',
  description: ['Removes the value at the dotted PATH (.env, JSON, YAML, TOML); a missing PATH exits 1.'],
  options: { 'add-provider-dir': ADD_PROVIDER_DIR, format: FORMAT },
  positionals: true,
  examples: ['keyfold secrets unset .env OLD_TOKEN'],
  load: () => import('../commands/secrets-set.js'),
};

const exec: CommandSpec = {
  name: 'secrets exec',
  summary: "run a command with the decrypted values in its environment only",
  usage:
    'keyfold secrets exec FILE [--pristine] [--pass-env NAME]... [--add-provider-dir DIR]... [--format F] [--dir DIR] ' +
    '-- COMMAND [ARGS...]',
  description: [
    "The values are added to the child's environment (never to keyfold's own, never written to disk); the child " +
      "inherits stdin/stdout/stderr and keyfold exits with the child's status (128 + signal number when it was " +
      'killed). Names are the dotted paths with every character other than A-Z a-z 0-9 _ replaced by _ ' +
      '(db.password -> db_password); two paths that map to one name, an empty name, or a value with a NUL character ' +
      'exit 1 (UNSUPPORTED, naming the path, never the value) before COMMAND runs. --pristine gives the child only the secrets plus PATH (so the command can be ' +
      'found); nothing else of the environment.',
    `Without --pristine the child gets keyfold's environment plus the secrets, but no Keyfold credential: ${CREDENTIALS_NOTE} ` +
      'A child that is itself a Keyfold application (it opens the same key store or env KEKs) gets the variables it ' +
      'needs only when each is named with --pass-env NAME (also with --pristine).',
  ],
  options: {
    pristine: { type: 'boolean', description: 'the child gets only the secrets and PATH' },
    'pass-env': {
      type: 'string',
      multiple: true,
      valueName: 'NAME',
      description: "give the child keyfold's variable NAME even when it is a Keyfold credential (repeatable)",
    },
    'add-provider-dir': ADD_PROVIDER_DIR,
    format: FORMAT,
  },
  positionals: true,
  examples: [
    'keyfold secrets exec .env -- node server.js',
    'keyfold secrets exec .env --pristine -- env',
    'keyfold secrets exec .env --pass-env KEYFOLD_DATABASE_URL -- node worker.js',
  ],
  load: () => import('../commands/secrets-exec.js'),
};

const rotate: CommandSpec = {
  name: 'secrets rotate',
  summary: 'new data key: re-encrypt every value (FILE rewritten in place)',
  usage:
    'keyfold secrets rotate FILE [--key-group DIR[,DIR...]]... [--shamir-threshold K] [--add-provider-dir DIR]... ' +
    '[--format F] [--dir DIR] [--json]',
  description: [
    'Every value gets a new ciphertext under a new data key. The new key is split over the key groups of ' +
      '--key-group (else key_groups of .keyfold.yaml) when there are any; else it is wrapped by the configured ' +
      'provider plus those of --add-provider-dir. A key-group file needs groups to rotate to (the same or new ones).',
    KEY_GROUPS_NOTE,
    OPEN_NOTE,
  ],
  options: {
    'key-group': KEY_GROUP,
    'shamir-threshold': SHAMIR_THRESHOLD,
    'add-provider-dir': ADD_PROVIDER_DIR,
    format: FORMAT,
  },
  positionals: true,
  examples: ['keyfold secrets rotate .env', 'keyfold secrets rotate .env --key-group kf-a,kf-b --key-group kf-c --shamir-threshold 1'],
  load: () => import('../commands/secrets-keys.js'),
};

const updatekeys: CommandSpec = {
  name: 'secrets updatekeys',
  summary: "re-wrap the file's data key for the configured provider plus --add-provider-dir ones (in place)",
  usage: 'keyfold secrets updatekeys FILE [--add-provider-dir DIR]... [--format F] [--dir DIR] [--json]',
  description: [
    'The rules file does not list providers, so the set of providers is: the one configured in --dir (or ' +
      '$KEYFOLD_DIR, ./.keyfold) plus the provider of every other keyfold configuration directory given with ' +
      '--add-provider-dir. Any of them must open the file now; afterwards exactly these wrap its data key (others ' +
      'are removed). Values are untouched. A key-group file is refused (UNSUPPORTED): its data key is split into ' +
      'shares, so change its groups with secrets rotate --key-group.',
  ],
  options: {
    'add-provider-dir': {
      type: 'string',
      multiple: true,
      valueName: 'DIR',
      description: "another keyfold configuration directory whose provider should also open FILE (repeatable)",
    },
    format: FORMAT,
  },
  positionals: true,
  examples: ['keyfold secrets updatekeys .env --add-provider-dir /etc/keyfold-kms'],
  load: () => import('../commands/secrets-keys.js'),
};

const status: CommandSpec = {
  name: 'secrets status',
  summary: 'which values are encrypted and which providers (or key groups) open the file (no key access)',
  usage: 'keyfold secrets status FILE [--format F] [--json]',
  description: ['Reads the metadata only: no provider, passphrase or key is needed, nothing is decrypted.'],
  options: { format: FORMAT },
  positionals: true,
  examples: ['keyfold secrets status .env --json'],
  load: () => import('../commands/secrets-status.js'),
};

export const group: GroupSpec = {
  name: 'secrets',
  summary: 'encrypted config files (.env, JSON, YAML, TOML): encrypt, decrypt, edit, exec, ...',
  subcommands: { encrypt, decrypt, edit, set, unset, exec, rotate, updatekeys, status },
};
