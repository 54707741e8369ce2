/**
 * node-postgres errors as coded key store errors, for the open path and the dialect alike.
 *
 * Security rule: no message is built from the connection string or the driver's message, so no password can leak
 * into it; the store is named by its location (the URL without the password) and the driver's error stays available
 * as `cause` (its messages do not contain passwords either).
 * @module
 */
import { ConfigError, KeyfoldError, ProviderError } from '@keyfold/envelope-core';
import { IntegrityError, StoreAccessError } from '../errors.js';

/** The SQLSTATE (or socket error code) of a driver error, if it has one. */
export function pgCode(err: unknown): string | undefined {
  return err instanceof Error && typeof (err as { code?: unknown }).code === 'string' ? (err as unknown as { code: string }).code : undefined;
}

/** Socket errors meaning the server cannot be reached (Node's happy eyeballs may wrap several in an AggregateError). */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'ETIMEDOUT', 'ENOENT']);

function unreachableCode(err: unknown): string | undefined {
  const code = pgCode(err);
  if (code !== undefined && UNREACHABLE.has(code)) return code;
  if (err instanceof AggregateError) {
    for (const e of err.errors) {
      const inner = pgCode(e);
      if (inner !== undefined && UNREACHABLE.has(inner)) return inner;
    }
  }
  return undefined;
}

/** The coded error for a server that asks for a password when the client has none. */
export function passwordMissingError(location: string, cause: unknown): StoreAccessError {
  return new StoreAccessError(
    'password-missing',
    `the key store ${location} asks for a password and none was given: put it in the connection string, or set PGPASSWORD`,
    { cause },
  );
}

/**
 * The driver's own complaint when the server asks for a password and the client has none (SCRAM: "client password
 * must be a string"; a password callback returning a non-string: "Password must be a string"). It carries no code.
 */
function isPasswordMissing(err: unknown): boolean {
  return err instanceof Error && pgCode(err) === undefined && /\b(client )?password must be a (non-empty )?string\b/i.test(err.message);
}

/**
 * A node-postgres error as a coded key store error naming the store by `location` (its URL without the password).
 * Keyfold errors and caller mistakes pass through unchanged.
 */
export function mapPgError(err: unknown, location: string): unknown {
  if (err instanceof KeyfoldError || err instanceof TypeError || err instanceof RangeError) return err;
  const code = pgCode(err);
  if (code === 'XX001' || code === 'XX002') {
    return new IntegrityError(`the key store ${location} reports damaged data (${code}); restore it from a backup`, { cause: err });
  }
  if (code === '3D000') {
    return new ConfigError(
      `the key store ${location} names a database that does not exist (${databaseOf(location)}, 3D000); create it, or give the URL of an existing one`,
      { cause: err },
    );
  }
  if (code === '40001' || code === '40P01' || code === '55P03' || code === '57014') {
    return new ProviderError('UNAVAILABLE', `the key store ${location} is busy (${code}); try again`, { cause: err });
  }
  if (code !== undefined && /^(08|53|57P)/.test(code)) {
    return new ProviderError('UNAVAILABLE', `the key store ${location} is unavailable (${code})`, { cause: err });
  }
  const unreachable = unreachableCode(err);
  if (unreachable !== undefined) {
    return new ProviderError('UNAVAILABLE', `the key store ${location} cannot be reached (${unreachable})`, { cause: err });
  }
  if (isPasswordMissing(err)) return passwordMissingError(location, err);
  if (code === '28P01' || code === '28000') {
    const what = code === '28P01' ? 'the password was wrong or the user is unknown' : 'the server has no rule letting this user in from here';
    return new StoreAccessError('login-refused', `the key store ${location} refused the login (${code}: ${what})`, { cause: err });
  }
  if (code === '42501') {
    return new StoreAccessError('permission-denied', `the key store ${location} refused access (${code}: insufficient privilege)`, { cause: err });
  }
  if (err instanceof Error && /Connection terminated|connection/i.test(err.message) && code === undefined) {
    return new ProviderError('UNAVAILABLE', `the key store ${location} connection failed`, { cause: err });
  }
  return new ProviderError('INTERNAL', `the key store ${location} failed${code ? ` (${code})` : ''}`, { cause: err });
}

/** `database "name"` from a redacted location URL, or `its database` when the location is not a URL. */
function databaseOf(location: string): string {
  try {
    const name = decodeURIComponent(new URL(location).pathname.replace(/^\//, ''));
    return name === '' ? 'the default database' : `database ${JSON.stringify(name)}`;
  } catch {
    return 'its database';
  }
}

/** True when the connection itself is broken (the pool must discard it rather than reuse it). */
export function isConnectionError(err: unknown): boolean {
  if (!(err instanceof Error) || err instanceof KeyfoldError) return false;
  const code = pgCode(err);
  if (code !== undefined) return /^(08|57P)/.test(code) || code === 'ECONNRESET' || code === 'EPIPE';
  return /connection terminated|not queryable|connection error/i.test(err.message);
}
