/**
 * Opens a key-service or HSM provider from init-style command-line options (`init --provider`, `migrate --provider`),
 * importing that provider's module, and so its vendor SDK, only now.
 * @module
 */
import type { SecurityMode } from '@keyfold/envelope-core';
import type { CommandContext } from '../command.js';
import { UsageError } from '../exit-codes.js';
import type { InitOpened } from './types.js';

/** The provider kinds a service or HSM backs (everything but the local `file` and `env`). */
export type ServiceProviderKind = 'aws-kms' | 'vault-transit' | 'gcp-kms' | 'azure-kv' | 'pkcs11';

/**
 * @throws UsageError for a malformed value the provider rejects (a bad key name, kid or label); provider errors
 *   (KEY_NOT_FOUND, ACCESS_DENIED, UNAVAILABLE, ...) as they are.
 */
export async function initServiceProvider(ctx: CommandContext, kind: ServiceProviderKind, securityMode: SecurityMode): Promise<InitOpened> {
  try {
    switch (kind) {
      case 'aws-kms':
        return await (await import('./aws-kms.js')).init(ctx, securityMode);
      case 'vault-transit':
        return await (await import('./vault-transit.js')).init(ctx, securityMode);
      case 'gcp-kms':
        return await (await import('./gcp-kms.js')).init(ctx, securityMode);
      case 'azure-kv':
        return await (await import('./azure-kv.js')).init(ctx, securityMode);
      case 'pkcs11':
        return await (await import('./pkcs11.js')).init(ctx, securityMode);
    }
  } catch (err) {
    if (err instanceof TypeError || err instanceof RangeError) throw new UsageError(err.message, ctx.name);
    throw err;
  }
}
