/**
 * Security policy. `production` unless `development` is chosen by option or `KEYFOLD_SECURITY_MODE`.
 * Production refuses the memory provider, key and secret files readable by group or other, and (with a key store)
 * a provider that does not match the install lock.
 * @module
 */
import { statSync, type Stats } from 'node:fs';
import { ConfigError, PolicyError } from './errors.js';
import type { KeyProvider } from './types.js';

export type SecurityMode = 'production' | 'development';

/** Name of the environment variable that selects the mode. */
export const SECURITY_MODE_ENV = 'KEYFOLD_SECURITY_MODE';

/**
 * The mode in force: the explicit option, else `KEYFOLD_SECURITY_MODE`, else `production`.
 * @throws ConfigError when either is set to something other than `production` / `development` (fail closed:
 *   a typo must not silently relax the policy).
 */
export function resolveSecurityMode(option?: SecurityMode, env: NodeJS.ProcessEnv = process.env): SecurityMode {
  const raw = option ?? env[SECURITY_MODE_ENV];
  if (raw === undefined || raw === '') return 'production';
  if (raw === 'production' || raw === 'development') return raw;
  const where = option === undefined ? SECURITY_MODE_ENV : 'securityMode';
  throw new ConfigError(`${where} must be "production" or "development"; got ${JSON.stringify(raw)}`);
}

export interface PermissionCheck {
  /** What the path holds, for the message ("KEK file", "key directory", "secrets file"). */
  what: string;
  /** Expected type. */
  type: 'file' | 'directory';
  securityMode: SecurityMode;
}

/**
 * Refuses, in production, a key file or directory that group or other can access (any of mode bits 0o077),
 * and one that is not of the expected type. In development the permission check is skipped; the type check stays.
 * On Windows (no POSIX modes) only the type is checked.
 * @returns the stat of the path.
 * @throws PolicyError (INSECURE_PERMISSIONS) with the mode found and the `chmod` that fixes it;
 *   ConfigError when the path is missing or of the wrong type.
 */
export function assertPrivatePath(path: string, check: PermissionCheck): Stats {
  let st: Stats;
  try {
    st = statSync(path);
  } catch (cause) {
    throw new ConfigError(`${check.what} ${path} cannot be read: ${(cause as NodeJS.ErrnoException).code ?? 'error'}`, {
      cause,
    });
  }
  const isRightType = check.type === 'file' ? st.isFile() : st.isDirectory();
  if (!isRightType) throw new ConfigError(`${check.what} ${path} is not a ${check.type}`);
  if (check.securityMode === 'production' && process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
    const want = check.type === 'file' ? '600' : '700';
    throw new PolicyError(
      'INSECURE_PERMISSIONS',
      `${check.what} ${path} has mode ${(st.mode & 0o777).toString(8).padStart(3, '0')}, readable by group or other; ` +
        `production mode requires ${want} (run: chmod ${want} ${path})`,
    );
  }
  return st;
}

/**
 * Refuses development-only providers in production mode (DESIGN.md "Security policy"): a provider whose KEK lives
 * only in process memory is lost at exit and unprotected.
 * @throws PolicyError (POLICY_VIOLATION) naming the provider and what to use instead.
 * @example
 * ```ts
 * assertProvidersAllowed([createEnvProvider()], resolveSecurityMode());
 * ```
 */
export function assertProvidersAllowed(providers: readonly KeyProvider[], mode: SecurityMode): void {
  for (const p of providers) {
    if (mode === 'production' && (p.protection === 'memory' || p.kind === 'memory')) {
      throw new PolicyError(
        'POLICY_VIOLATION',
        `the ${p.kind} provider "${p.keyId}" keeps its KEK only in process memory (lost at exit, unprotected) and is ` +
          'refused in production mode; use the env or file provider (or a KMS/HSM provider), or set ' +
          'KEYFOLD_SECURITY_MODE=development for tests and local experiments',
      );
    }
  }
}
