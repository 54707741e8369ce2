/**
 * k-of-n key groups for `keyfold secrets`: which groups a command should seal a new data key under (`--key-group`
 * / `--shamir-threshold`, else `key_groups` / `shamir_threshold` of `.keyfold.yaml`), opening their providers, and
 * opening an existing key-group file with the providers available on this machine.
 *
 * A provider is named the way every `secrets` command names one: by a keyfold configuration directory (`--dir`,
 * `--add-provider-dir`); in `.keyfold.yaml` relative to the rules file's directory, on the command line relative to
 * the working directory.
 *
 * Security rules: every provider of every group must open before anything is sealed (a group whose provider is
 * missing would leave a share nobody can open); one key may not sit in two groups (it would open two shares, so
 * the threshold would not mean what it says); and the "not enough key groups" error is decided from the file's
 * public metadata and from which providers opened here, never from a cryptographic check, so it tells an attacker
 * nothing the file does not already show. Every other failure to open stays the one `DECRYPT_FAILED`.
 * @module
 */
import { dirname, resolve } from 'node:path';
import { ConfigError, KeyfoldError, isKeyfoldError, type KeyProvider } from '@keyfold/envelope-core';
import { findRulesFile, MAX_KEY_GROUPS, type KeyGroups, type SecretsFileInfo } from '@keyfold/secrets';
import type { CommandContext } from '../command.js';
import { loadConfig, openProvider, type LoadedConfig, type ProviderConfig } from '../config.js';
import { CliError, errorCodeFor, UsageError } from '../exit-codes.js';
import { printable } from '../output.js';

/** Key groups to seal a new data key under, as configuration directories (absolute). */
export interface KeyGroupSpec {
  readonly threshold: number;
  readonly groups: readonly (readonly string[])[];
  /** Where they come from, for messages: `the command line` or the rules file's path. */
  readonly source: string;
  readonly fromCommandLine: boolean;
}

/** The configuration directories `--key-group` names (resolved against the cwd); [] when not given. */
function keyGroupFlags(ctx: CommandContext): string[][] {
  return ctx.args.list('key-group').map((value, i) => {
    const refs = value.split(',');
    if (refs.some((r) => r.trim() === '')) {
      throw new UsageError(
        `--key-group #${i + 1} (${JSON.stringify(value)}) has an empty entry: give each group as DIR[,DIR...], the keyfold ` +
          'configuration directories whose providers open that group',
        ctx.name,
      );
    }
    return refs.map((r) => resolve(ctx.cwd, r));
  });
}

function thresholdFlag(ctx: CommandContext): number | undefined {
  const raw = ctx.args.string('shamir-threshold');
  if (raw === undefined) return undefined;
  if (!/^[0-9]{1,3}$/.test(raw)) {
    throw new UsageError(`--shamir-threshold must be a whole number (how many key groups open the file); got ${JSON.stringify(raw)}`, ctx.name);
  }
  return Number(raw);
}

/** True when the command line names key groups or a threshold. */
export function keyGroupFlagsGiven(ctx: CommandContext): boolean {
  return ctx.args.list('key-group').length > 0 || ctx.args.string('shamir-threshold') !== undefined;
}

function checkShape(spec: KeyGroupSpec, ctx: CommandContext): KeyGroupSpec {
  const fail = (message: string): Error =>
    spec.fromCommandLine ? new UsageError(message, ctx.name) : new ConfigError(`${spec.source}: ${message}`);
  const n = spec.groups.length;
  if (n > MAX_KEY_GROUPS) throw fail(`${n} key groups; at most ${MAX_KEY_GROUPS}`);
  if (!Number.isInteger(spec.threshold) || spec.threshold < 1 || spec.threshold > n) {
    const what = spec.fromCommandLine ? '--shamir-threshold' : 'the threshold';
    throw fail(`${what} must be from 1 to ${n} (the number of key groups); got ${spec.threshold}`);
  }
  const seen = new Map<string, number>();
  spec.groups.forEach((group, i) => {
    for (const dir of group) {
      const other = seen.get(dir);
      if (other !== undefined) {
        throw fail(`${dir} is named in key group ${other + 1} and in key group ${i + 1}; a provider belongs to one group only`);
      }
      seen.set(dir, i);
    }
  });
  return spec;
}

/**
 * The key groups a new data key of FILE should be sealed under: `--key-group` (with `--shamir-threshold`, default
 * every group), else the rules file's `key_groups` (with `--shamir-threshold` overriding its `shamir_threshold`),
 * else undefined (the file is sealed under the configured provider as before).
 * @throws UsageError for bad flags; ConfigError for a bad rules file.
 */
export async function requestedKeyGroups(ctx: CommandContext, file: string): Promise<KeyGroupSpec | undefined> {
  const flagGroups = keyGroupFlags(ctx);
  const threshold = thresholdFlag(ctx);
  if (flagGroups.length > 0) {
    return checkShape({ threshold: threshold ?? flagGroups.length, groups: flagGroups, source: 'the command line', fromCommandLine: true }, ctx);
  }
  const found = await findRulesFile(dirname(file));
  const refs = found?.rules.keyGroupRefs;
  if (found === undefined || refs === undefined) {
    if (threshold !== undefined) {
      throw new UsageError(
        '--shamir-threshold needs key groups: give --key-group DIR[,DIR...] once per group, or key_groups in .keyfold.yaml',
        ctx.name,
      );
    }
    return undefined;
  }
  const base = dirname(found.path);
  const groups = refs.groups.map((g) => g.map((r) => resolve(base, r)));
  if (threshold !== undefined) {
    return checkShape({ threshold, groups, source: found.path, fromCommandLine: true }, ctx);
  }
  return checkShape({ threshold: refs.threshold, groups, source: found.path, fromCommandLine: false }, ctx);
}

/** The directories of the rules file's key groups (no checks), as candidates that may open a key-group file. */
export async function rulesFileDirs(file: string): Promise<string[]> {
  const found = await findRulesFile(dirname(file));
  const refs = found?.rules.keyGroupRefs;
  if (found === undefined || refs === undefined) return [];
  return refs.groups.flat().map((r) => resolve(dirname(found.path), r));
}

/** Same code, the message prefixed (so the operator sees which group and directory failed). */
function withPrefix(err: unknown, prefix: string): unknown {
  if (err instanceof CliError && !(err instanceof UsageError)) return new CliError(err.code, `${prefix}${err.message}`, { cause: err });
  if (err instanceof UsageError) return new UsageError(`${prefix}${err.message}`, err.command);
  if (isKeyfoldError(err)) return new KeyfoldError(err.code, `${prefix}${err.message}`, { cause: err });
  return err;
}

/**
 * The providers of the configuration directories one command uses, each opened once (the configured one and
 * another group may name the same directory) and all closed together.
 */
export class ProviderPool {
  readonly #ctx: CommandContext;
  readonly #loaded = new Map<string, Promise<LoadedConfig>>();
  readonly #configs = new Map<string, ProviderConfig>();
  readonly #opened = new Map<string, Promise<KeyProvider>>();

  constructor(ctx: CommandContext) {
    this.#ctx = ctx;
  }

  #contextFor(key: string): CommandContext {
    return key === this.#ctx.dir ? this.#ctx : (Object.create(this.#ctx, { dir: { value: key } }) as CommandContext);
  }

  /**
   * The configuration of `dir` (resolved against the cwd), loaded once; its provider is not opened.
   * @throws CliError NOT_INITIALIZED when `dir` holds no configuration; ConfigError / PolicyError from loading it.
   */
  config(dir: string): Promise<LoadedConfig> {
    const key = resolve(this.#ctx.cwd, dir);
    let p = this.#loaded.get(key);
    if (p === undefined) {
      p = loadConfig(this.#contextFor(key)).then((loaded) => {
        this.#configs.set(key, loaded.config.provider);
        return loaded;
      });
      p.catch(() => undefined); // awaited by the caller; a failure is reported there
      this.#loaded.set(key, p);
    }
    return p;
  }

  /**
   * The provider configurations loaded so far, also of directories whose provider then failed to open: what names
   * the credential variables of every provider this command may have used (see `credential-env.ts`).
   */
  configs(): ProviderConfig[] {
    return [...this.#configs.values()];
  }

  /**
   * The provider configured in `dir` (resolved against the cwd), opened on first use with its install lock checked.
   * @throws CliError NOT_INITIALIZED when `dir` holds no configuration; the provider's own errors.
   */
  open(dir: string): Promise<KeyProvider> {
    const key = resolve(this.#ctx.cwd, dir);
    let p = this.#opened.get(key);
    if (p === undefined) {
      const ctx = this.#contextFor(key);
      p = this.config(key).then((loaded) => openProvider(ctx, loaded));
      p.catch(() => undefined); // awaited by the caller; a failure is reported there
      this.#opened.set(key, p);
    }
    return p;
  }

  /** Closes every provider that opened. */
  async close(): Promise<void> {
    for (const p of this.#opened.values()) {
      const provider = await p.catch(() => undefined);
      await provider?.close().catch(() => undefined);
    }
    this.#opened.clear();
  }
}

const identity = (p: { kind: string; keyId: string }): string => `${p.kind}:${p.keyId}`;

/**
 * Opens every provider of every group (all must open: nothing is sealed otherwise) and checks that no key sits in
 * two groups.
 * @throws the first failure, its message prefixed with the group and directory; UsageError / ConfigError for a key
 *   in two groups.
 */
export async function openKeyGroups(ctx: CommandContext, pool: ProviderPool, spec: KeyGroupSpec): Promise<KeyGroups> {
  const owner = new Map<string, { group: number; dir: string }>();
  const groups: KeyProvider[][] = [];
  for (const [i, dirs] of spec.groups.entries()) {
    const group: KeyProvider[] = [];
    for (const dir of dirs) {
      let provider: KeyProvider;
      try {
        provider = await pool.open(dir);
      } catch (err) {
        throw withPrefix(err, `key group ${i + 1} (${dir}): `);
      }
      const id = identity(provider);
      const other = owner.get(id);
      if (other !== undefined && other.group !== i) {
        const message =
          `${other.dir} (key group ${other.group + 1}) and ${dir} (key group ${i + 1}) are the same key (${id}); ` +
          'a key in two groups would open two shares: give each group its own keys';
        throw spec.fromCommandLine ? new UsageError(message, ctx.name) : new ConfigError(`${spec.source}: ${message}`);
      }
      owner.set(id, { group: i, dir });
      if (!group.some((p) => identity(p) === id)) group.push(provider);
    }
    groups.push(group);
  }
  return { threshold: spec.threshold, groups };
}

/** The groups (0-based) of a key-group file that one of `providers` opens, judged by kind and key id. */
function groupsCovered(info: NonNullable<SecretsFileInfo['keyGroups']>, providers: readonly KeyProvider[]): number[] {
  const ids = new Set(providers.map(identity));
  return info.groups.flatMap((wrapped, i) => (wrapped.some((w) => ids.has(identity(w))) ? [i] : []));
}

interface Unavailable {
  dir: string;
  code: string;
  message: string;
}

function thresholdNotMet(
  file: string,
  info: NonNullable<SecretsFileInfo['keyGroups']>,
  covered: readonly number[],
  unavailable: readonly Unavailable[],
): CliError {
  const opened = covered.length === 0 ? 'none' : covered.map((i) => `group ${i + 1}`).join(', ');
  const missing = unavailable.map((u) => `${u.dir}: ${u.message} [${u.code}]`);
  return new CliError(
    'THRESHOLD_NOT_MET',
    `${file} needs ${info.threshold} of its ${info.groups.length} key groups, but the providers available here open ` +
      `${covered.length} (${opened})` +
      (missing.length === 0 ? '' : `; not available: ${missing.join('; ')}`) +
      '. Make the provider of another group available (its KEK, passphrase or credentials), or name its keyfold ' +
      'configuration with --add-provider-dir DIR',
  );
}

/**
 * Runs `fn` with the providers that may open a key-group file: those of the configured directory, of
 * `--add-provider-dir`, of `--key-group`, and of the rules file's `key_groups`; a directory whose provider cannot
 * be opened here is skipped. When the file does not open and the available providers cover fewer groups than the
 * threshold, the failure is `THRESHOLD_NOT_MET` (exit 3), naming what was not available.
 */
export async function withKeyGroupProviders<T>(
  ctx: CommandContext,
  pool: ProviderPool,
  file: string,
  info: NonNullable<SecretsFileInfo['keyGroups']>,
  fn: (providers: KeyProvider[]) => Promise<T>,
): Promise<T> {
  const candidates = [
    ctx.dir,
    ...ctx.args.list('add-provider-dir').map((d) => resolve(ctx.cwd, d)),
    ...keyGroupFlags(ctx).flat(),
    ...(await rulesFileDirs(file)),
  ];
  const providers: KeyProvider[] = [];
  const unavailable: Unavailable[] = [];
  for (const dir of new Set(candidates)) {
    try {
      const provider = await pool.open(dir);
      if (!providers.some((p) => identity(p) === identity(provider))) providers.push(provider);
    } catch (err) {
      const code = errorCodeFor(err);
      if (code === 'INTERRUPTED') throw err;
      unavailable.push({ dir: printable(dir), code, message: printable(err instanceof Error ? err.message : String(err)) });
    }
  }
  const covered = groupsCovered(info, providers);
  if (providers.length === 0) throw thresholdNotMet(file, info, covered, unavailable);
  try {
    return await fn(providers);
  } catch (err) {
    if (errorCodeFor(err) === 'DECRYPT_FAILED' && covered.length < info.threshold) throw thresholdNotMet(file, info, covered, unavailable);
    throw err;
  }
}

/** One line per way of opening a file, for `status` and `rotate`: `2 of 3 key groups: [env:A#1] [env:B#1] ...`. */
export function describeOpeners(info: SecretsFileInfo): string {
  const key = (w: { kind: string; keyId: string; keyVersion: string }): string => printable(`${w.kind}:${w.keyId}#${w.keyVersion}`);
  if (info.keyGroups === undefined) return info.wrappedKeys.length === 0 ? '-' : info.wrappedKeys.map(key).join(', ');
  const groups = info.keyGroups.groups.map((g, i) => `group ${i + 1}: ${g.map(key).join(', ')}`);
  return `${info.keyGroups.threshold} of ${info.keyGroups.groups.length} key groups (${groups.join('; ')})`;
}
