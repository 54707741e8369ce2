/**
 * PKCS#11 HSMs (`@keyfold/provider-pkcs11`, graphene-pk11): loaded only when an installation uses it.
 * The configuration records the library, the token (slot or label), the KEK label and mechanism, and where the
 * user PIN is: the *name* of a variable (`--pin-env`) or the path of a mode-0600 file (`--pin-file`). The PIN
 * itself is never on the command line (shell history, `ps`) nor in the configuration.
 * @module
 */
import { ConfigError, type SecurityMode } from '@keyfold/envelope-core';
import type * as Pkcs11Package from '@keyfold/provider-pkcs11';
import type { Pkcs11Provider, Pkcs11TokenListing } from '@keyfold/provider-pkcs11';
import type { CommandContext } from '../command.js';
import { openProvider } from '../config.js';
import { UsageError } from '../exit-codes.js';
import { formatFields, formatTable, printable } from '../output.js';
import { opt, type ConfigFields, type Pkcs11Mechanism, type Pkcs11ProviderConfig } from '../provider-config.js';
import { absolutePath, choice, integer, optional, required } from './options.js';
import type { ProbeSection, ProviderAdapter } from './adapter.js';
import type { InitOpened, KekAdded } from './types.js';

type Token = Pick<Pkcs11ProviderConfig, 'library' | 'slot' | 'tokenLabel' | 'pinEnv' | 'pinFile'>;

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The provider package (and graphene's native binding), imported when a token is used, not when config.json is read. */
function pkcs11(): Promise<typeof Pkcs11Package> {
  return import('@keyfold/provider-pkcs11');
}

function tokenOptions(cfg: Token, securityMode: SecurityMode) {
  return {
    library: cfg.library,
    ...(cfg.slot === undefined ? {} : { slot: cfg.slot }),
    ...(cfg.tokenLabel === undefined ? {} : { tokenLabel: cfg.tokenLabel }),
    ...(cfg.pinEnv === undefined ? {} : { pinEnv: cfg.pinEnv }),
    ...(cfg.pinFile === undefined ? {} : { pinFile: cfg.pinFile }),
    securityMode,
  };
}

function describeToken(cfg: Token): string {
  return cfg.tokenLabel === undefined ? `slot ${cfg.slot ?? ''}` : `the token labelled ${JSON.stringify(cfg.tokenLabel)}`;
}

/**
 * The configured token as `listPkcs11Tokens` reports it (no PIN needed).
 * @throws KeyfoldError CONFIG_INVALID when the library does not load or has no such token.
 */
async function findToken(cfg: Token): Promise<Pkcs11TokenListing> {
  const { tokens } = await (await pkcs11()).listPkcs11Tokens({ library: cfg.library });
  const matching = tokens.filter((t) => (cfg.tokenLabel === undefined ? t.slot === String(cfg.slot) : t.label === cfg.tokenLabel));
  if (matching.length === 1) return matching[0] as Pkcs11TokenListing;
  const available = tokens.map((t) => `slot ${t.slot} ${JSON.stringify(t.label)}`).join(', ') || 'none';
  throw new ConfigError(
    matching.length === 0
      ? `${cfg.library} has no initialised token in ${describeToken(cfg)}; tokens: ${available}`
      : `${matching.length} tokens are labelled ${JSON.stringify(cfg.tokenLabel)}; select one with --slot (tokens: ${available})`,
  );
}

/** Reopens the KEK on the recorded token, reading the PIN from the recorded variable or file. */
async function open(_ctx: CommandContext, securityMode: SecurityMode, cfg: Pkcs11ProviderConfig): Promise<Pkcs11Provider> {
  return (await pkcs11()).createPkcs11Provider({
    ...tokenOptions(cfg, securityMode),
    keyLabel: cfg.keyId,
    mechanism: cfg.mechanism,
    ...(cfg.sessions === undefined ? {} : { sessions: cfg.sessions }),
  });
}

function codeOf(err: unknown): unknown {
  return err instanceof Error ? (err as { code?: unknown }).code : undefined;
}

/**
 * `keyfold init --provider pkcs11 --library PATH --slot N|--token-label L --key-label L [--mechanism M]
 * [--sessions N] --pin-env NAME|--pin-file FILE`: checks the token and its mechanisms before the PIN is read,
 * then opens the KEK, creating version 1 inside the token when there is none yet.
 */
async function init(ctx: CommandContext, securityMode: SecurityMode): Promise<InitOpened<Pkcs11ProviderConfig>> {
  const library = absolutePath(ctx, required(ctx, 'library', 'pkcs11', 'PATH (the PKCS#11 library)'));
  const slot = integer(ctx, 'slot', 0, Number.MAX_SAFE_INTEGER);
  const tokenLabel = optional(ctx, 'token-label');
  if ((slot === undefined) === (tokenLabel === undefined)) {
    throw new UsageError('--provider pkcs11 needs exactly one of --slot N and --token-label LABEL', ctx.name);
  }
  const keyLabel = required(ctx, 'key-label', 'pkcs11', 'LABEL (the KEK; versions are LABEL.v1, LABEL.v2, ...)');
  const mechanism = choice<Pkcs11Mechanism>(ctx, 'mechanism', ['AES_GCM', 'AES_KEY_WRAP_PAD'], 'AES_GCM');
  const sessions = integer(ctx, 'sessions', 1, 64);
  const pinEnv = optional(ctx, 'pin-env');
  const pinFileOption = optional(ctx, 'pin-file');
  if ((pinEnv === undefined) === (pinFileOption === undefined)) {
    throw new UsageError(
      'give the user PIN with exactly one of --pin-env NAME (a variable holding it) and --pin-file FILE (mode 0600); ' +
        'there is no --pin: it would land in shell history and in ps',
      ctx.name,
    );
  }
  if (pinEnv !== undefined && !ENV_NAME.test(pinEnv)) {
    throw new UsageError(`--pin-env takes the name of an environment variable; got ${JSON.stringify(pinEnv)}`, ctx.name);
  }
  const cfg: Pkcs11ProviderConfig = {
    kind: 'pkcs11',
    keyId: keyLabel,
    library,
    ...(slot === undefined ? {} : { slot }),
    ...(tokenLabel === undefined ? {} : { tokenLabel }),
    mechanism,
    ...(sessions === undefined ? {} : { sessions }),
    ...(pinEnv === undefined ? {} : { pinEnv }),
    ...(pinFileOption === undefined ? {} : { pinFile: absolutePath(ctx, pinFileOption) }),
  };

  // The token and its mechanisms first: a wrong slot or a token that cannot do the mode fails before any login.
  const token = await findToken(cfg);
  const missing = token.modes[mechanism];
  if (missing.length > 0) {
    throw new ConfigError(`${describeToken(cfg)} (slot ${token.slot}) cannot do ${mechanism}: it lacks ${missing.join(', ')}`);
  }

  let createdVersion: string | undefined;
  let provider: Pkcs11Provider;
  try {
    provider = await open(ctx, securityMode, cfg);
  } catch (err) {
    if (codeOf(err) !== 'KEY_NOT_FOUND') throw err;
    // No KEK with this label yet: make version 1 inside the token (sensitive, never extractable).
    const made = await (await pkcs11()).generatePkcs11KekVersion({ ...tokenOptions(cfg, securityMode), keyLabel });
    createdVersion = made.version;
    provider = await open(ctx, securityMode, cfg);
  }
  const { pkcs11KekObjectLabel } = await pkcs11();
  const pinSource = pinEnv === undefined ? `the file ${cfg.pinFile ?? ''}` : `the variable ${pinEnv}`;
  return {
    provider,
    config: cfg,
    notes: [
      createdVersion === undefined
        ? `Uses the KEK objects labelled ${keyLabel}.v<N> already on the token.`
        : `Created KEK version ${createdVersion} inside the token (object ${pkcs11KekObjectLabel(keyLabel, createdVersion)}, sensitive, not extractable).`,
      `PIN: read from ${pinSource} on every run; never recorded.`,
    ],
    ...(createdVersion === undefined ? {} : { createdVersion }),
  };
}

/**
 * `keyfold kek add`: the next KEK version, generated inside the token. New wraps use it from the next run on (the
 * highest version is active); every earlier version still unwraps.
 */
async function addKekVersion(securityMode: SecurityMode, cfg: Pkcs11ProviderConfig): Promise<KekAdded> {
  const r = await (await pkcs11()).generatePkcs11KekVersion({ ...tokenOptions(cfg, securityMode), keyLabel: cfg.keyId });
  return {
    kind: cfg.kind,
    keyId: cfg.keyId,
    version: r.version,
    activeVersion: r.version,
    versions: [...r.versions],
    objectLabel: r.objectLabel,
    tokenLabel: r.tokenLabel,
    slot: r.slot,
  };
}

/** What `keyfold provider probe` reports of the configured token, read without logging in (no PIN needed). */
interface TokenReport {
  readonly slot: string;
  readonly label: string;
  readonly flags: readonly string[];
  readonly mechanisms: Pkcs11TokenListing['mechanisms'];
  /** Per wrapping mode: what is missing (empty: supported). */
  readonly modes: Pkcs11TokenListing['modes'];
  /** What is missing for `kek add` (empty: supported). */
  readonly keyGeneration: readonly string[];
}

function renderToken(ctx: CommandContext, token: TokenReport): string {
  const s = ctx.out.out;
  const support = (missing: readonly string[]): string => (missing.length === 0 ? 'yes' : `no (lacks ${missing.map(printable).join(', ')})`);
  const fields = formatFields(
    [
      ['token', `${printable(token.label)} (slot ${printable(token.slot)})`],
      ['token flags', token.flags.map(printable).join(', ') || '(none)'],
      ['AES_GCM', support(token.modes.AES_GCM)],
      ['AES_KEY_WRAP_PAD', support(token.modes.AES_KEY_WRAP_PAD)],
      ['kek add', support(token.keyGeneration)],
    ],
    s,
  );
  const table = formatTable(
    [['mechanism', 'flags'], ...token.mechanisms.map((m) => [printable(m.name), m.flags.map(printable).join(', ')])],
    s,
  );
  return `${fields}\n\n${token.mechanisms.length} mechanisms found:\n${table}`;
}

/**
 * The `token` section of `keyfold provider probe`: the token's flags, mechanisms and which wrapping modes and key
 * generation it can do, so they show even when the PIN is wrong.
 * @throws KeyfoldError CONFIG_INVALID when the library does not load or has no such token (reported by the probe).
 */
async function probeToken(cfg: Pkcs11ProviderConfig): Promise<ProbeSection> {
  const t = await findToken(cfg);
  const token: TokenReport = { slot: t.slot, label: t.label, flags: t.flags, mechanisms: t.mechanisms, modes: t.modes, keyGeneration: t.keyGeneration };
  return { json: token, render: (ctx) => renderToken(ctx, token) };
}

/** config.json: library, exactly one of slot / token label, mechanism, sessions, exactly one of PIN variable / file. */
function parseConfig(f: ConfigFields, keyId: string): Pkcs11ProviderConfig {
  f.exactlyOne('slot', 'tokenLabel');
  f.exactlyOne('pinEnv', 'pinFile');
  return {
    kind: 'pkcs11',
    keyId,
    library: f.string('library'),
    ...opt('slot', f.optionalInteger('slot', 0, Number.MAX_SAFE_INTEGER)),
    ...opt('tokenLabel', f.optionalString('tokenLabel')),
    mechanism: f.oneOf<Pkcs11Mechanism>('mechanism', ['AES_GCM', 'AES_KEY_WRAP_PAD']),
    ...opt('sessions', f.optionalInteger('sessions', 1, 64)),
    ...opt('pinEnv', f.optionalString('pinEnv')),
    ...opt('pinFile', f.optionalString('pinFile')),
  };
}

/**
 * The `pkcs11` provider: set up from options by init and migrate (init creates version 1 on the token when there is
 * none); `kek add` generates the next version inside the token. Its PIN variable (`pinEnv`) is a credential.
 */
export const pkcs11Adapter: ProviderAdapter<'pkcs11'> = {
  kind: 'pkcs11',
  parseConfig,
  init: { by: 'options', open: init },
  initOptions: ['library', 'slot', 'token-label', 'key-label', 'mechanism', 'sessions', 'pin-env', 'pin-file'],
  migrate: { supported: true, openTarget: init },
  open: (ctx, loaded, cfg) => open(ctx, loaded.securityMode, cfg),
  kekAdd: {
    by: 'keyfold',
    add: async (ctx, loaded, cfg, beforeAdding) => {
      if (beforeAdding !== undefined) {
        const provider = await openProvider(ctx, loaded);
        try {
          await beforeAdding(provider);
        } finally {
          await provider.close();
        }
      }
      return { added: await addKekVersion(loaded.securityMode, cfg) };
    },
  },
  credentialVariables: (cfg) => ({ names: cfg.pinEnv === undefined ? [] : [cfg.pinEnv], patterns: [] }),
  // The next version is generated inside the token, as kek add does.
  addDueVersion: async (loaded, cfg) => (await addKekVersion(loaded.securityMode, cfg)).version,
  probeExtra: { field: 'token', read: probeToken },
};
