/**
 * What the per-provider modules of `src/providers/` hand back to the commands. Types only.
 * @module
 */
import type { KeyProvider } from '@keyfold/envelope-core';
import type { ProviderConfig } from '../provider-config.js';

/** A provider opened by `keyfold init` from the command line, and what to record for it. */
export interface InitOpened<C extends ProviderConfig = ProviderConfig> {
  /** Open; the caller describes and closes it. */
  readonly provider: KeyProvider;
  /** The `provider` section to write to config.json: non-secret fields only. */
  readonly config: C;
  /** Lines for the text output: where credentials come from, what was created. Never a secret. */
  readonly notes: readonly string[];
  /** A KEK version init created inside the backend (PKCS#11), for the JSON output. */
  readonly createdVersion?: string;
}

/** Result of `keyfold kek add`. */
export interface KekAdded {
  readonly kind: string;
  readonly keyId: string;
  /** The version just created. */
  readonly version: string;
  readonly activeVersion: string;
  readonly versions: readonly string[];
  /** PKCS#11: the token object created (`<label>.v<N>`), its token and slot. */
  readonly objectLabel?: string;
  readonly tokenLabel?: string;
  readonly slot?: string;
}
