/**
 * The memory provider: random KEKs generated in this process, for tests and local development only.
 * @module
 */
import {
  PolicyError,
  ProviderError,
  randomOwnedBytes,
  resolveSecurityMode,
  type BaseProviderOptions,
  type SecurityMode,
} from '@keyfold/envelope-core';
import { FACTORY, LocalKekProvider, assertFactory, assertKeyId, localBaseOptions } from './local-provider.js';

/**
 * Options of {@link createMemoryProvider}.
 * @example
 * ```ts
 * const options: MemoryProviderOptions = { securityMode: 'development', keyId: 'test-kek', versions: 2 };
 * ```
 */
export interface MemoryProviderOptions extends BaseProviderOptions {
  /** Must resolve to `development` (option or `KEYFOLD_SECURITY_MODE=development`); production refuses this provider. */
  securityMode?: SecurityMode;
  /** Key id stored in wrapped keys. Default `memory`. */
  keyId?: string;
  /** How many versions to start with (the highest is active). Default 1. */
  versions?: number;
}

const MAX_VERSIONS = 1000;

/**
 * A development-only provider whose KEKs live in process memory. Create it with {@link createMemoryProvider}.
 * Methods throw as `BaseKeyProvider` documents: `UNWRAP_FAILED` for any bad wrapped key, `PROVIDER_CLOSED` after
 * `close()`, TypeError / RangeError for malformed arguments.
 * @example
 * ```ts
 * const provider: MemoryProvider = createMemoryProvider({ securityMode: 'development' });
 * await provider.rotate();
 * ```
 */
export class MemoryProvider extends LocalKekProvider {
  override readonly kind = 'memory';
  override readonly protection = 'memory' as const;
  override readonly keyId: string;
  protected override readonly canRotate = true;
  #next = 1;

  /** @internal Use {@link createMemoryProvider}. */
  constructor(token: typeof FACTORY, keyId: string, versions: number, options: BaseProviderOptions) {
    assertFactory(token, 'createMemoryProvider');
    super(options);
    this.keyId = keyId;
    for (let i = 0; i < versions; i++) this.#addVersion();
  }

  #addVersion(): string {
    const version = String(this.#next++);
    this.addKek(version, randomOwnedBytes(32), true);
    return version;
  }

  /**
   * Adds a new random KEK version and makes it active. Keys wrapped under earlier versions keep unwrapping.
   * @returns the new version.
   * @throws ProviderError (`PROVIDER_CLOSED`) after `close()`; RangeError past 1000 versions.
   * @example
   * ```ts
   * const v2 = await provider.rotate(); // '2'
   * ```
   */
  rotate(): Promise<string> {
    if (this.closed) {
      return Promise.reject(new ProviderError('PROVIDER_CLOSED', `the memory provider for ${this.keyId} is closed`));
    }
    if (this.#next > MAX_VERSIONS) {
      return Promise.reject(new RangeError(`the memory provider holds at most ${MAX_VERSIONS} versions`));
    }
    return Promise.resolve(this.#addVersion());
  }

  protected override missingVersionHint(version: string): string {
    return `version ${version} with rotate() (this memory provider holds versions 1 to ${this.#next - 1})`;
  }

  protected override describeDetails(): Readonly<Record<string, string | number | boolean>> {
    return { warning: 'development only: keys live in process memory and are lost at exit' };
  }
}

/**
 * Creates a provider with random in-memory KEKs, for tests and local development.
 *
 * Refused in production: its keys live only in this process's memory, are lost when it exits (everything sealed
 * with them becomes unreadable) and are never protected by a passphrase, KMS or HSM.
 *
 * @throws PolicyError (`POLICY_VIOLATION`) unless the security mode is `development`, with a message saying what
 *   to use instead. RangeError / TypeError for a malformed `keyId` or `versions`.
 * @example
 * ```ts
 * import { createMemoryProvider } from '@keyfold/provider-local';
 *
 * const provider = createMemoryProvider({ securityMode: 'development' });
 * const wrapped = await provider.wrapKey(dataKey, {});
 * await provider.rotate(); // new wraps use version 2; version 1 still unwraps
 * ```
 */
export function createMemoryProvider(options: MemoryProviderOptions = {}): MemoryProvider {
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  const keyId = options.keyId ?? 'memory';
  assertKeyId(keyId, 'keyId');
  const versions = options.versions ?? 1;
  if (!Number.isInteger(versions) || versions < 1 || versions > MAX_VERSIONS) {
    throw new RangeError(`versions must be an integer from 1 to ${MAX_VERSIONS}; got ${versions}`);
  }
  if (resolveSecurityMode(options.securityMode) !== 'development') {
    throw new PolicyError(
      'POLICY_VIOLATION',
      'the memory provider is refused in production mode: its keys live only in this process\'s memory, are lost ' +
        'when it exits (everything sealed with them becomes unreadable) and are never protected by a passphrase, KMS ' +
        'or HSM. Use createEnvProvider (KEYFOLD_KEK_V1=$(openssl rand -hex 32)) or createFileProvider (a ' +
        'passphrase-sealed KEK file) instead. For tests and local development, set KEYFOLD_SECURITY_MODE=development ' +
        "or pass securityMode: 'development'.",
    );
  }
  return new MemoryProvider(FACTORY, keyId, versions, localBaseOptions(options));
}
