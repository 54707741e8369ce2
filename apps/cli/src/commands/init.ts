/**
 * `keyfold init`: a new installation in the configuration directory. Default: the file provider (a random KEK
 * sealed under a passphrase in DIR/keys); `--provider env`: KEKs in versioned environment variables; a key service
 * (`aws-kms`, `vault-transit`, `gcp-kms`, `azure-kv`) or an HSM (`pkcs11`): the KEK stays there and config.json
 * records how to reach it, never a credential.
 * @module
 */
import { resolveSecurityMode, type KeyProvider, type SecurityMode } from '@keyfold/envelope-core';
import type { CommandContext } from '../command.js';
import { UsageError } from '../exit-codes.js';
import { assertNotInitialised, assertParentExists, installOpened, Rollback, type Installation } from '../install.js';
import { formatCount, formatFields, printable } from '../output.js';
import { isProviderKind, PROVIDER_KINDS, type ProviderKind } from '../provider-config.js';
import type { InitOpened } from '../providers/types.js';
import { attachStore, storeChoice, type StoreCreated } from '../store-init.js';

/**
 * Refuses a provider option given for another provider (`--library` with `--provider aws-kms`): each adapter lists
 * the options that apply to its kind (`initOptions`).
 * @throws UsageError naming the option and the providers it applies to.
 */
async function assertOptionsFit(ctx: CommandContext, kind: ProviderKind): Promise<void> {
  const { providerAdapter } = await import('../providers/registry.js');
  const kindsOf = new Map<string, ProviderKind[]>();
  for (const k of PROVIDER_KINDS) {
    for (const option of (await providerAdapter(k)).initOptions) kindsOf.set(option, [...(kindsOf.get(option) ?? []), k]);
  }
  for (const [option, kinds] of kindsOf) {
    const given = ctx.args.string(option) !== undefined || ctx.args.flag(option);
    if (given && !kinds.includes(kind)) {
      const which = kinds.length === 1 ? `the ${kinds[0] ?? ''} provider` : `--provider ${kinds.join(' or ')}`;
      throw new UsageError(`--${option} applies to ${which} only`, ctx.name);
    }
  }
}

function describeKdf(kdf: NonNullable<Installation['provider']['kdf']>): string {
  return kdf.name === 'pbkdf2-sha256'
    ? `pbkdf2-sha256, ${formatCount(kdf.iterations)} iterations`
    : `scrypt, N=${formatCount(kdf.N)} r=${kdf.r} p=${kdf.p}`;
}

/** `caFile` -> `ca file`, `tokenLabel` -> `token label`. */
function label(field: string): string {
  return field.replace(/[A-Z]/g, (c) => ` ${c.toLowerCase()}`);
}

/** `reminder`: what the operator must keep safe (kinds the CLI sets up itself, see `CliInstalled`). */
function render(ctx: CommandContext, inst: Installation, reminder: string | undefined, notes: readonly string[]): string {
  const p = inst.provider;
  const rows: [string, string][] = [
    ['config', `${inst.configPath} (mode 0600)`],
    ['provider', p.protection === undefined ? p.kind : `${p.kind} (${p.protection})`],
    ['key id', printable(p.keyId)],
    ['active version', printable(p.activeVersion)],
  ];
  if (p.settings !== undefined) {
    rows.push(['versions', p.versions.map(printable).join(', ')]);
    for (const [k, v] of Object.entries(p.settings)) rows.push([label(k), printable(String(v))]);
  }
  if (p.keyring !== undefined) rows.push(['KEK file', `${p.keyring} (mode 0600)`]);
  if (p.kdf !== undefined) rows.push(['kdf', describeKdf(p.kdf)]);
  if (p.prefix !== undefined) rows.push(['variables', `${p.prefix}1, ${p.prefix}2, ...`]);
  rows.push(['security mode', inst.securityMode]);
  const lines = [`Initialised Keyfold in ${inst.dir}`, '', formatFields(rows, ctx.out.out), ''];
  if (reminder !== undefined) lines.push(reminder);
  lines.push(...notes);
  lines.push('Next: keyfold encrypt --in FILE --out FILE.kf   (keyfold status shows this installation)');
  return lines.join('\n');
}

function storeNotes(store: StoreCreated): string[] {
  const where = store.backend === 'sqlite' ? `${printable(store.location)} (SQLite, mode 0600)` : `${printable(store.location)} (PostgreSQL)`;
  return [
    `Key store: ${where}, schema ${store.schemaVersion}; install lock ${printable(store.installLock.kind)}:${printable(store.installLock.keyId)}.`,
  ];
}

/** What one init run set up: the installation, its provider (open: the caller closes it), and lines to print. */
interface Initialised {
  readonly installation: Installation;
  readonly provider: KeyProvider;
  readonly reminder?: string;
  readonly notes: readonly string[];
}

/**
 * Sets up the installation the way the kind's adapter says: the CLI itself (file, env), or from the command-line
 * options (key services, HSMs), importing the adapter's module (and vendor SDK) only now.
 */
async function initialise(ctx: CommandContext, kind: ProviderKind, securityMode: SecurityMode, rollback: Rollback): Promise<Initialised> {
  const { openFromOptions, providerAdapter } = await import('../providers/registry.js');
  const { init } = await providerAdapter(kind);
  if (init.by === 'cli') return { ...(await init.install(ctx, securityMode, rollback)), notes: [] };
  return initRemote(ctx, securityMode, rollback, () => openFromOptions(ctx, securityMode, init.open));
}

async function initRemote(
  ctx: CommandContext,
  securityMode: SecurityMode,
  rollback: Rollback,
  open: () => Promise<InitOpened>,
): Promise<Initialised> {
  // Refuse an existing installation and a missing parent before contacting the service or creating a key.
  await assertNotInitialised(ctx.dir);
  await assertParentExists(ctx.dir);
  const opened = await open();
  try {
    const installation = await installOpened({
      dir: ctx.dir,
      securityMode,
      provider: opened.provider,
      config: opened.config,
      ...(opened.createdVersion === undefined ? {} : { createdVersion: opened.createdVersion }),
      rollback,
    });
    // Left open: the key store's audit key is wrapped under it next (the caller closes it).
    return { installation, notes: opened.notes, provider: opened.provider };
  } catch (err) {
    await opened.provider.close();
    throw err;
  }
}

export async function run(ctx: CommandContext): Promise<number | undefined> {
  const providerKind = ctx.args.string('provider') ?? 'file';
  if (!isProviderKind(providerKind)) {
    throw new UsageError(`--provider must be one of ${PROVIDER_KINDS.join(', ')}; got ${JSON.stringify(providerKind)}`, ctx.name);
  }
  await assertOptionsFit(ctx, providerKind);
  const securityMode = resolveSecurityMode(undefined, ctx.env);
  const storeCfg = storeChoice(ctx);

  // All or nothing: whatever this run created in the directory (the directory itself, the key directory, the
  // KEK file, config.json, an SQLite store) is removed again when a later step fails; nothing that was there before.
  const rollback = new Rollback();
  let initialised: Initialised | undefined;
  let store: StoreCreated;
  try {
    initialised = await initialise(ctx, providerKind, securityMode, rollback);
    store = await attachStore(ctx, initialised.installation, storeCfg, securityMode, rollback, initialised.provider);
  } catch (err) {
    await rollback.run();
    throw err;
  } finally {
    await initialised?.provider.close();
  }
  const { installation, reminder, notes } = initialised;
  ctx.out.result({ ok: true, ...installation, store }, () => render(ctx, installation, reminder, [...storeNotes(store), ...notes]));
  return undefined;
}
