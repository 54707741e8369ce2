/**
 * The shape every provider adapter of `src/providers/` has: one object per provider kind that says, for each thing
 * the CLI does with a provider, how that kind does it or that it does not. Every capability is a required field, so
 * a new kind cannot be added without deciding each one. Types only.
 * @module
 */
import type { KeyProvider, SecurityMode } from '@keyfold/envelope-core';
import type { CommandContext } from '../command.js';
import type { LoadedConfig } from '../config.js';
import type { CredentialNames } from '../credential-env.js';
import type { ProviderConfig, ProviderKind } from '../provider-config.js';
import type { InitOpened, KekAdded } from './types.js';

/** The `provider` section of config.json for kind `K`. */
export type ProviderConfigOf<K extends ProviderKind> = Extract<ProviderConfig, { kind: K }>;

/** Opens a provider from init-style command-line options (`init --provider`, `migrate --provider`). */
export type OpenFromOptions<C extends ProviderConfig> = (ctx: CommandContext, securityMode: SecurityMode) => Promise<InitOpened<C>>;

/** How `keyfold init --provider K` sets the provider up. */
export type InitSupport<C extends ProviderConfig> =
  /** The CLI creates it itself (the passphrase-sealed KEK file, the env variables): see `commands/init.ts`. */
  | { readonly by: 'cli' }
  /** A key service or HSM: opened (or, for an HSM, created) from the command-line options. */
  | { readonly by: 'options'; readonly open: OpenFromOptions<C> };

/** Whether `keyfold migrate --provider K` can move an installation to this kind. */
export type MigrateSupport<C extends ProviderConfig> =
  | { readonly supported: true; readonly openTarget: OpenFromOptions<C> }
  /** `reason`: the usage message (what to choose instead). */
  | { readonly supported: false; readonly reason: string };

/** A KEK version added by `keyfold kek add`; `undo` removes it again when the key store then refuses to record it. */
export interface KekVersionAdded {
  readonly added: KekAdded;
  readonly undo?: () => Promise<void>;
}

/** How `keyfold kek add` works for this kind. */
export type KekAddSupport<C extends ProviderConfig> =
  /**
   * Keyfold adds the version itself. `beforeAdding`, when given, runs with the opened provider before anything
   * changes (kek add opens the key store's audit key with it); its failure adds nothing.
   */
  | {
      readonly by: 'keyfold';
      readonly add: (
        ctx: CommandContext,
        loaded: LoadedConfig,
        cfg: C,
        beforeAdding: ((provider: KeyProvider) => Promise<void>) | undefined,
      ) => Promise<KekVersionAdded>;
    }
  /** The backend or the operator makes new versions: `hint` says what to run instead (one clause, no trailing dot). */
  | { readonly by: 'elsewhere'; readonly hint: (cfg: C) => string };

/** One provider kind, as the CLI commands use it. */
export interface ProviderAdapter<K extends ProviderKind> {
  readonly kind: K;
  /** `keyfold init`. */
  readonly init: InitSupport<ProviderConfigOf<K>>;
  /** `keyfold migrate`. */
  readonly migrate: MigrateSupport<ProviderConfigOf<K>>;
  /**
   * Opens the provider `cfg` records, reading its secrets from the environment (or asking) only now. No install-lock
   * check: `openProvider` in config.ts does that.
   */
  readonly open: (ctx: CommandContext, loaded: LoadedConfig, cfg: ProviderConfigOf<K>) => Promise<KeyProvider>;
  /** `keyfold kek add`. */
  readonly kekAdd: KekAddSupport<ProviderConfigOf<K>>;
  /**
   * The credential variables `cfg` names besides the fixed ones of `credential-env.ts` (the env provider's
   * `<prefix><N>`, the PKCS#11 `pinEnv`): what `secrets exec` and `secrets edit` keep from child processes.
   */
  readonly credentialVariables: (cfg: ProviderConfigOf<K>) => CredentialNames;
}

/** No credential variables beyond the fixed ones (or the vendor SDK's own chain). */
export const NO_CREDENTIAL_VARIABLES: CredentialNames = { names: [], patterns: [] };
