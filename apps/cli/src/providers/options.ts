/**
 * Reading the provider options of `keyfold init` from the command line: required values, integers, endpoint URLs.
 * Every mistake is a {@link UsageError} (exit 2) raised before any service is contacted.
 * @module
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ConfigError, type SecurityMode } from '@keyfold/envelope-core';
import type { CommandContext } from '../command.js';
import { UsageError } from '../exit-codes.js';
import { isLoopbackHost } from '../provider-config.js';

/** The value of `--name`, required with `--provider kind`. */
export function required(ctx: CommandContext, name: string, kind: string, hint = ''): string {
  const v = ctx.args.string(name);
  if (v === undefined || v === '') throw new UsageError(`--provider ${kind} needs --${name}${hint === '' ? '' : ` ${hint}`}`, ctx.name);
  return v;
}

/** An optional value that must not be empty when given. */
export function optional(ctx: CommandContext, name: string): string | undefined {
  const v = ctx.args.string(name);
  if (v === '') throw new UsageError(`--${name} must not be empty`, ctx.name);
  return v;
}

/** One of `values` (or `fallback` when absent). */
export function choice<T extends string>(ctx: CommandContext, name: string, values: readonly T[], fallback: T): T {
  const v = ctx.args.string(name);
  if (v === undefined) return fallback;
  if (!(values as readonly string[]).includes(v)) {
    throw new UsageError(`--${name} must be ${values.map((x) => `"${x}"`).join(' or ')}; got ${JSON.stringify(v)}`, ctx.name);
  }
  return v as T;
}

/** An optional decimal integer in [min, max]. */
export function integer(ctx: CommandContext, name: string, min: number, max: number): number | undefined {
  const v = ctx.args.string(name);
  if (v === undefined) return undefined;
  const n = /^\d+$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`--${name} must be an integer from ${min} to ${max}; got ${JSON.stringify(v)}`, ctx.name);
  }
  return n;
}

/** An absolute path for a file option (relative paths are taken from the working directory). */
export function absolutePath(ctx: CommandContext, path: string): string {
  return resolve(ctx.cwd, path);
}

/**
 * Checks an `http(s)://` service URL. Plain `http://` is refused in production for any host but this machine: data
 * keys (and, for some services, credentials) would cross the network in clear.
 * @throws ConfigError CONFIG_INVALID.
 */
export function checkServiceUrl(url: string, what: string, securityMode: SecurityMode): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError(`${what} ${JSON.stringify(url)} is not a URL; use e.g. https://host:port`);
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
    throw new ConfigError(`${what} must be an http(s) URL; got ${parsed.protocol}`);
  }
  if (parsed.protocol === 'http:' && !isLoopbackHost(parsed.hostname) && securityMode === 'production') {
    throw new ConfigError(
      `${what} ${parsed.origin} is plain http to another host: data keys would cross the network in clear; use https ` +
        '(plain http is allowed for this machine, or with KEYFOLD_SECURITY_MODE=development)',
    );
  }
  return parsed;
}

/** Reads a PEM file of CA certificates. @throws ConfigError when it cannot be read or holds no certificate. */
export function readCaFile(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new ConfigError(`CA file ${path} cannot be read: ${(cause as NodeJS.ErrnoException).code ?? 'error'}`, { cause });
  }
  if (!text.includes('-----BEGIN CERTIFICATE-----')) throw new ConfigError(`CA file ${path} holds no PEM certificate`);
  return text;
}
