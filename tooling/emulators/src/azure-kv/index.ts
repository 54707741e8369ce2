/**
 * Azure Key Vault / Managed HSM emulator: the key REST API `@azure/keyvault-keys` 4.x uses, over HTTP and (given a
 * certificate) HTTPS on 127.0.0.1, with the bearer challenge, versioned kids, RSA-OAEP-256 / RSA-OAEP and A256KW
 * wrapping with node:crypto, disabled versions, soft-deleted keys, Key Vault error bodies (400 BadParameter, 401,
 * 403, 404 KeyNotFound, 409, 429, 5xx) and fault injection. For tests, the bench and demos; never a security boundary.
 *
 * ```ts
 * const tls = createSelfSignedCertificate();
 * const emu = await startAzureKeyVaultEmulator({ tls, managedHsm: true });
 * const kid = emu.createKey('kek', { kty: 'RSA-HSM' }); // https://127.0.0.1:PORT/keys/kek/<version>
 * const client = new CryptographyClient(kid, { getToken: async () => ({ token: 't', expiresOnTimestamp: Date.now() + 3.6e6 }) },
 *   { disableChallengeResourceVerification: true, tlsOptions: { ca: tls.cert } });
 * ```
 * @module
 */
import type { FaultController } from '../faults.js';
import { KvState, type CreateKeyInput } from './kv-state.js';
import { KvService, startKvListener, type AccessPolicy, type AzureKvCounters, type KvListener } from './server.js';

export { KvError, KvState } from './kv-state.js';
export type { CreateKeyInput, KeyBundleView, KeyType, WrapAlgorithm } from './kv-state.js';
export type { AccessDecision, AccessPolicy, AzureKvCounters, KvOperation } from './server.js';
export { createSelfSignedCertificate } from './tls.js';
export type { SelfSignedCertificate } from './tls.js';

/** Options of {@link startAzureKeyVaultEmulator}. */
export interface AzureKeyVaultEmulatorOptions {
  /** HTTP port on 127.0.0.1; 0 (default) picks a free one. */
  readonly port?: number;
  /** With a certificate, an HTTPS listener is started too (same key store). */
  readonly tls?: { readonly key: string | Buffer; readonly cert: string | Buffer };
  /** HTTPS port on 127.0.0.1; 0 (default) picks a free one. */
  readonly httpsPort?: number;
  /** Behave as a Managed HSM: oct / oct-HSM keys (A256KW) are allowed. Default false (a vault: RSA keys only). */
  readonly managedHsm?: boolean;
  /**
   * With `managedHsm`, whether the software key types RSA and oct are still accepted. Real Managed HSM refuses them
   * (it supports HSM-protected keys only: RSA-HSM, EC-HSM, oct-HSM; Microsoft Learn "About keys"); set `false` to
   * be as strict. Default true, a convenience so one emulator serves RSA and oct-HSM tests.
   */
  readonly softwareKeysOnManagedHsm?: boolean;
  /** Tenant named in the bearer challenge. */
  readonly tenantId?: string;
}

/** A running Key Vault emulator. */
export interface AzureKeyVaultEmulator {
  /** `http://127.0.0.1:<port>`: use with `allowInsecureConnection: true`. */
  readonly httpUrl: string;
  /** `https://127.0.0.1:<port>` when started with `tls`. */
  readonly httpsUrl: string | undefined;
  readonly faults: FaultController;
  /** A snapshot of the counters (both listeners together). */
  readonly counters: AzureKvCounters;
  readonly state: KvState;
  resetCounters(): void;
  /** Which tokens may do what (default: any token, everything). */
  setAccessPolicy(policy: AccessPolicy | undefined): void;
  /**
   * Creates a key (or a new version of it) directly in the store, without a request. Returns the versioned kid on
   * `base` (default: the HTTPS URL when there is one, else the HTTP URL).
   * @throws KvError for a bad type / size, or a deleted name.
   */
  createKey(name: string, input?: CreateKeyInput, base?: string): string;
  /** Stops the listeners and drops every connection. Idempotent. */
  close(): Promise<void>;
}

/**
 * Starts the Key Vault emulator on 127.0.0.1.
 * @throws the listen error.
 */
export async function startAzureKeyVaultEmulator(options: AzureKeyVaultEmulatorOptions = {}): Promise<AzureKeyVaultEmulator> {
  const managedHsm = options.managedHsm ?? false;
  const state = new KvState(managedHsm, options.softwareKeysOnManagedHsm ?? true);
  const service = new KvService(state, {
    tenantId: options.tenantId ?? '00000000-0000-0000-0000-000000000000',
    resource: managedHsm ? 'https://managedhsm.azure.net' : 'https://vault.azure.net',
  });
  const listeners: KvListener[] = [];
  try {
    listeners.push(await startKvListener(service, options.port ?? 0));
    if (options.tls) listeners.push(await startKvListener(service, options.httpsPort ?? 0, options.tls));
  } catch (err) {
    await Promise.all(listeners.map((l) => l.close()));
    throw err;
  }
  const httpUrl = `http://127.0.0.1:${(listeners[0] as KvListener).port}`;
  const httpsUrl = listeners[1] ? `https://127.0.0.1:${listeners[1].port}` : undefined;
  let closing: Promise<void> | undefined;
  return {
    httpUrl,
    httpsUrl,
    faults: service.faults,
    get counters() {
      return service.counters;
    },
    state,
    resetCounters: () => service.resetCounters(),
    setAccessPolicy: (policy) => service.setAccessPolicy(policy),
    createKey(name, input = { kty: 'RSA' }, base = httpsUrl ?? httpUrl) {
      return base + state.createKey(name, input).key.kid;
    },
    close() {
      closing ??= Promise.all(listeners.map((l) => l.close())).then(() => undefined);
      return closing;
    },
  };
}
