/**
 * `keyfold init`: a new installation in the configuration directory. Default: the file provider (a random KEK
 * sealed under a passphrase in DIR/keys); `--provider env`: KEKs in versioned environment variables; a key service
 * (`aws-kms`, `vault-transit`, `gcp-kms`, `azure-kv`) or an HSM (`pkcs11`): the KEK stays there and config.json
 * records how to reach it, never a credential.
 * @module
 */
import { dirname } from 'node:path';
import { KeyfoldError, resolveSecurityMode, type KeyProvider, type SecurityMode } from '@keyfold/envelope-core';
import type { KdfOptions } from '@keyfold/provider-local';
import type { CommandContext } from '../command.js';
import { UsageError } from '../exit-codes.js';
import { assertNotInitialised, assertParentExists, installEnv, installFile, installOpened, Rollback, type Installation } from '../install.js';
import { formatCount, formatFields, printable } from '../output.js';
import { readPassphrase } from '../prompt.js';
import { isProviderKind, PROVIDER_KINDS, type ProviderKind } from '../provider-config.js';
import type { InitOpened } from '../providers/types.js';
import { attachStore, storeChoice, type StoreCreated } from '../store-init.js';

/** The providers each provider option applies to (an option given for another provider is a usage error). */
const OPTION_PROVIDERS: Readonly<Record<string, readonly ProviderKind[]>> = {
  kdf: ['file'],
  prefix: ['env'],
  'key-id': ['aws-kms', 'azure-kv'],
  region: ['aws-kms'],
  endpoint: ['aws-kms', 'gcp-kms'],
  'key-name': ['vault-transit', 'gcp-kms'],
  'vault-addr': ['vault-transit'],
  mount: ['vault-transit'],
  namespace: ['vault-transit'],
  auth: ['vault-transit'],
  transport: ['gcp-kms'],
  insecure: ['gcp-kms'],
  algorithm: ['azure-kv'],
  'ca-file': ['azure-kv'],
  library: ['pkcs11'],
  slot: ['pkcs11'],
  'token-label': ['pkcs11'],
  'key-label': ['pkcs11'],
  mechanism: ['pkcs11'],
  sessions: ['pkcs11'],
  'pin-env': ['pkcs11'],
  'pin-file': ['pkcs11'],
};

function assertOptionsFit(ctx: CommandContext, kind: ProviderKind): void {
  for (const [option, kinds] of Object.entries(OPTION_PROVIDERS)) {
    const given = ctx.args.string(option) !== undefined || ctx.args.flag(option);
    if (given && !kinds.includes(kind)) {
      const which = kinds.length === 1 ? `the ${kinds[0] ?? ''} provider` : `--provider ${kinds.join(' or ')}`;
      throw new UsageError(`--${option} applies to ${which} only`, ctx.name);
    }
  }
}

function kdfOption(ctx: CommandContext): KdfOptions | undefined {
  const kdf = ctx.args.string('kdf');
  if (kdf === undefined) return undefined;
  if (kdf === 'pbkdf2') return { name: 'pbkdf2-sha256' };
  if (kdf === 'scrypt') return { name: 'scrypt' };
  throw new UsageError(`--kdf must be "scrypt" or "pbkdf2"; got ${JSON.stringify(kdf)}`, ctx.name);
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

function render(ctx: CommandContext, inst: Installation, notes: readonly string[]): string {
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
  if (p.keyring !== undefined) rows.push(['keyring', `${p.keyring} (mode 0600)`]);
  if (p.kdf !== undefined) rows.push(['kdf', describeKdf(p.kdf)]);
  if (p.prefix !== undefined) rows.push(['variables', `${p.prefix}1, ${p.prefix}2, ...`]);
  rows.push(['security mode', inst.securityMode]);
  const lines = [`Initialised Keyfold in ${inst.dir}`, '', formatFields(rows, ctx.out.out), ''];
  if (p.kind === 'file') {
    lines.push('Keep the passphrase safe: without it nothing sealed with this KEK file can be opened.');
  } else if (p.kind === 'env') {
    lines.push(`Every keyfold run needs the ${p.prefix ?? ''}<N> variables; keep them out of shell history and logs.`);
  }
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

/** Opens the provider named on the command line, importing its module (and vendor SDK) only now. */
async function openFromOptions(ctx: CommandContext, kind: ProviderKind, securityMode: SecurityMode): Promise<InitOpened> {
  const { openFromOptions, providerAdapter } = await import('../providers/registry.js');
  const { init } = await providerAdapter(kind);
  if (init.by === 'cli') throw new UsageError(`the ${kind} provider is initialised by the CLI itself`, ctx.name);
  return openFromOptions(ctx, securityMode, init.open);
}

async function initRemote(
  ctx: CommandContext,
  kind: ProviderKind,
  securityMode: SecurityMode,
  rollback: Rollback,
): Promise<{ installation: Installation; notes: readonly string[]; provider: KeyProvider }> {
  // Refuse an existing installation and a missing parent before contacting the service or creating a key.
  await assertNotInitialised(ctx.dir);
  await assertParentExists(ctx.dir);
  const opened = await openFromOptions(ctx, kind, securityMode);
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

/**
 * The new installation's provider, opened like every later command opens it, so the key store is locked by it and
 * its audit key created under its KEK (the file provider derives its KEK file key once more from the passphrase).
 */
async function openInstalled(ctx: CommandContext, inst: Installation, passphrase: string | undefined): Promise<KeyProvider> {
  const { createEnvProvider, createFileProvider } = await import('@keyfold/provider-local');
  const p = inst.provider;
  if (p.kind === 'file' && p.keyring !== undefined && passphrase !== undefined) {
    return createFileProvider({ dir: dirname(p.keyring), passphrase, securityMode: inst.securityMode });
  }
  if (p.kind === 'env') return createEnvProvider({ env: ctx.env, ...(p.prefix === undefined ? {} : { prefix: p.prefix }), securityMode: inst.securityMode });
  throw new KeyfoldError('INTERNAL', `the ${p.kind} provider of the new installation cannot be opened here`);
}

export async function run(ctx: CommandContext): Promise<number | undefined> {
  const providerKind = ctx.args.string('provider') ?? 'file';
  if (!isProviderKind(providerKind)) {
    throw new UsageError(`--provider must be one of ${PROVIDER_KINDS.join(', ')}; got ${JSON.stringify(providerKind)}`, ctx.name);
  }
  assertOptionsFit(ctx, providerKind);
  const kdf = kdfOption(ctx);
  const prefix = ctx.args.string('prefix');
  const securityMode = resolveSecurityMode(undefined, ctx.env);
  const storeCfg = storeChoice(ctx);

  // All or nothing: whatever this run created in the directory (the directory itself, the key directory, the
  // KEK file, config.json, an SQLite store) is removed again when a later step fails; nothing that was there before.
  const rollback = new Rollback();
  let installation: Installation;
  let notes: readonly string[] = [];
  let store: StoreCreated;
  let provider: KeyProvider | undefined;
  try {
    let passphrase: string | undefined;
    if (providerKind === 'file') {
      // Refuse an existing installation before asking for a passphrase.
      await assertNotInitialised(ctx.dir);
      passphrase = await readPassphrase({
        env: ctx.env,
        stdin: ctx.stdin,
        stderr: ctx.stderr,
        confirm: true,
        command: ctx.name,
      });
      installation = await installFile({ dir: ctx.dir, passphrase, securityMode, rollback, ...(kdf === undefined ? {} : { kdf }) });
    } else if (providerKind === 'env') {
      try {
        installation = await installEnv({ dir: ctx.dir, prefix, env: ctx.env, securityMode, rollback });
      } catch (err) {
        // A malformed --prefix is a caller mistake in the core's terms: a usage error here.
        if (err instanceof TypeError || err instanceof RangeError) throw new UsageError(err.message, ctx.name);
        throw err;
      }
    } else {
      ({ installation, notes, provider } = await initRemote(ctx, providerKind, securityMode, rollback));
    }
    provider ??= await openInstalled(ctx, installation, passphrase);
    store = await attachStore(ctx, installation, storeCfg, securityMode, rollback, provider);
  } catch (err) {
    await rollback.run();
    throw err;
  } finally {
    await provider?.close();
  }
  ctx.out.result({ ok: true, ...installation, store }, () => render(ctx, installation, [...storeNotes(store), ...notes]));
  return undefined;
}
