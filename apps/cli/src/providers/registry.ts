/**
 * The one registry of provider adapters: the commands (init, migrate, kek add, the configured provider's opening,
 * the credential stripping of `secrets exec` / `secrets edit`) look a provider kind up here instead of switching on it.
 *
 * Each adapter module is imported only when its kind is looked up (reading config.json looks up the recorded kind, to
 * validate its section), so `keyfold --help` loads none (test/startup.test.ts checks this). An adapter imports its
 * provider package and vendor SDK only when it opens or sets up a provider, so commands that read config.json but
 * open no provider (`kek list`, `audit list`, ...) load no SDK.
 * Adding a kind: one adapter file in this directory and one line below; the mapped type makes the line required.
 * @module
 */
import type { SecurityMode } from '@keyfold/envelope-core';
import type { CommandContext } from '../command.js';
import type { CredentialNames } from '../credential-env.js';
import { UsageError } from '../exit-codes.js';
import type { ProviderConfig, ProviderKind } from '../provider-config.js';
import type { ProviderAdapter } from './adapter.js';
import type { InitOpened } from './types.js';

const ADAPTERS: { readonly [K in ProviderKind]: () => Promise<ProviderAdapter<K>> } = {
  file: async () => (await import('./file.js')).fileAdapter,
  env: async () => (await import('./env.js')).envAdapter,
  'aws-kms': async () => (await import('./aws-kms.js')).awsKmsAdapter,
  'vault-transit': async () => (await import('./vault-transit.js')).vaultTransitAdapter,
  'gcp-kms': async () => (await import('./gcp-kms.js')).gcpKmsAdapter,
  'azure-kv': async () => (await import('./azure-kv.js')).azureKvAdapter,
  pkcs11: async () => (await import('./pkcs11.js')).pkcs11Adapter,
};

/** The adapter of `kind`, importing its module now. */
export function providerAdapter<K extends ProviderKind>(kind: K): Promise<ProviderAdapter<K>> {
  return ADAPTERS[kind]();
}

/**
 * Calls `fn` with the adapter of `cfg`'s kind and `cfg`. The one place a looked-up adapter is widened: the kind of
 * the adapter and of `cfg` are the same by construction.
 */
export async function withAdapter<T>(
  cfg: ProviderConfig,
  fn: (adapter: ProviderAdapter<ProviderKind>, cfg: ProviderConfig) => T | Promise<T>,
): Promise<T> {
  const adapter = await providerAdapter(cfg.kind);
  return await fn(adapter, cfg);
}

/**
 * Runs an adapter's open-from-options, turning a caller mistake the provider package reports (TypeError /
 * RangeError: a bad key name, kid or label) into a usage error.
 * @throws UsageError for a malformed value; provider errors (KEY_NOT_FOUND, ACCESS_DENIED, UNAVAILABLE, ...) as they are.
 */
export async function openFromOptions(
  ctx: CommandContext,
  securityMode: SecurityMode,
  open: (ctx: CommandContext, securityMode: SecurityMode) => Promise<InitOpened>,
): Promise<InitOpened> {
  try {
    return await open(ctx, securityMode);
  } catch (err) {
    if (err instanceof TypeError || err instanceof RangeError) throw new UsageError(err.message, ctx.name);
    throw err;
  }
}

/** The credential variables every configuration in `configs` names (see `ProviderAdapter.credentialVariables`). */
export async function credentialVariablesOf(configs: Iterable<ProviderConfig>): Promise<CredentialNames[]> {
  const out: CredentialNames[] = [];
  for (const cfg of configs) out.push(await withAdapter(cfg, (adapter, c) => adapter.credentialVariables(c)));
  return out;
}
