/**
 * The shape every provider adapter of `src/providers/` has: one object per provider kind that says, for each thing
 * the CLI does with a provider, how that kind does it or that it does not. Every capability is a required field, so
 * a new kind cannot be added without deciding each one; `keyServiceAdapter` decides them alike for the key services.
 * @module
 */
import type { KeyProvider, SecurityMode } from '@keyfold/envelope-core';
import type { CommandContext } from '../command.js';
import type { LoadedConfig } from '../config.js';
import type { CredentialNames } from '../credential-env.js';
import type { Installation, Rollback } from '../install.js';
import type { ConfigFields, ProviderConfig, ProviderKind } from '../provider-config.js';
import type { InitOpened, KekAdded } from './types.js';

/** The `provider` section of config.json for kind `K`. */
export type ProviderConfigOf<K extends ProviderKind> = Extract<ProviderConfig, { kind: K }>;

/** Opens a provider from init-style command-line options (`init --provider`, `migrate --provider`). */
export type OpenFromOptions<C extends ProviderConfig> = (ctx: CommandContext, securityMode: SecurityMode) => Promise<InitOpened<C>>;

/** What `keyfold init` made for a kind the CLI sets up itself. */
export interface CliInstalled {
  readonly installation: Installation;
  /** The new installation's provider, opened as later commands open it (the caller closes it). */
  readonly provider: KeyProvider;
  /** The line on what the operator must keep safe (the passphrase, the variables), printed after the settings. */
  readonly reminder: string;
}

/**
 * Sets up an installation of a kind the CLI creates itself, reading its own options (`--kdf`, `--prefix`) and
 * secrets (the passphrase) now. What it creates is recorded in `rollback`, which the caller runs when a later step
 * fails.
 */
export type InstallByCli = (ctx: CommandContext, securityMode: SecurityMode, rollback: Rollback) => Promise<CliInstalled>;

/** How `keyfold init --provider K` sets the provider up. */
export type InitSupport<C extends ProviderConfig> =
  /** The CLI creates it itself (the passphrase-sealed KEK file, the env variables). */
  | { readonly by: 'cli'; readonly install: InstallByCli }
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

/**
 * How `keyfold rotate --if-due` adds the KEK version that is due, with the installation's provider open:
 * returns the version added. `undefined`: the rotation engine's own rule (the provider's `rotate()`, or a refusal
 * for a provider that cannot add versions).
 */
export type AddDueVersion<C extends ProviderConfig> =
  | ((loaded: LoadedConfig, cfg: C, provider: KeyProvider) => Promise<string>)
  | undefined;

/** A section `keyfold provider probe` adds for this kind, read without the provider open (no credentials needed). */
export interface ProbeSection {
  /** For `--json`. */
  readonly json: unknown;
  /** For the text output. */
  readonly render: (ctx: CommandContext) => string;
}

/**
 * What `keyfold provider probe` reports besides the probe itself (PKCS#11: the token and its mechanisms), under
 * `field`. `read` throws the coded errors a probe reports (see `commands/provider-probe.ts`). `undefined`: nothing.
 */
export type ProbeExtra<C extends ProviderConfig> =
  | { readonly field: string; readonly read: (cfg: C) => Promise<ProbeSection> }
  | undefined;

/** One provider kind, as the CLI commands use it. */
export interface ProviderAdapter<K extends ProviderKind> {
  readonly kind: K;
  /**
   * Validates the rest of config.json's `provider` section for this kind (`kind` and `keyId` are read already).
   * @throws ConfigError naming the field that is wrong.
   */
  readonly parseConfig: (fields: ConfigFields, keyId: string) => ProviderConfigOf<K>;
  /** `keyfold init`. */
  readonly init: InitSupport<ProviderConfigOf<K>>;
  /** The options of `keyfold init` that apply to this kind (another kind's option is a usage error there). */
  readonly initOptions: readonly string[];
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
  /** `keyfold rotate --if-due`. */
  readonly addDueVersion: AddDueVersion<ProviderConfigOf<K>>;
  /** `keyfold provider probe`. */
  readonly probeExtra: ProbeExtra<ProviderConfigOf<K>>;
}

/** No credential variables beyond the fixed ones (or the vendor SDK's own chain). */
export const NO_CREDENTIAL_VARIABLES: CredentialNames = { names: [], patterns: [] };

/** What differs between the key-service kinds (see {@link keyServiceAdapter}). */
export interface KeyServiceParts<K extends ProviderKind> {
  readonly kind: K;
  readonly parseConfig: (fields: ConfigFields, keyId: string) => ProviderConfigOf<K>;
  readonly initOptions: readonly string[];
  /** Opens (and checks) the key named on the command line, for `init` and as a `migrate` target. */
  readonly init: OpenFromOptions<ProviderConfigOf<K>>;
  /** Reopens the key config.json records. */
  readonly open: (ctx: CommandContext, securityMode: SecurityMode, cfg: ProviderConfigOf<K>) => Promise<KeyProvider>;
  /** Why `kek add` does not apply and what to run instead: the service makes new key versions itself. */
  readonly rotationHint: (cfg: ProviderConfigOf<K>) => string;
}

/**
 * The adapter of a key service (AWS KMS, Vault transit, Cloud KMS, Key Vault): set up from options by `init` and
 * `migrate`; the service rotates its own key, so `kek add` says how and `rotate --if-due` gets the rotation
 * engine's refusal; credentials come from the vendor SDK's own sources (no variables to strip beyond the fixed
 * ones); `provider probe` adds nothing.
 */
export function keyServiceAdapter<K extends ProviderKind>(parts: KeyServiceParts<K>): ProviderAdapter<K> {
  return {
    kind: parts.kind,
    parseConfig: parts.parseConfig,
    init: { by: 'options', open: parts.init },
    initOptions: parts.initOptions,
    migrate: { supported: true, openTarget: parts.init },
    open: (ctx, loaded, cfg) => parts.open(ctx, loaded.securityMode, cfg),
    kekAdd: { by: 'elsewhere', hint: parts.rotationHint },
    credentialVariables: () => NO_CREDENTIAL_VARIABLES,
    addDueVersion: undefined,
    probeExtra: undefined,
  };
}
