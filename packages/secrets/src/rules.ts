/**
 * Which values to encrypt: every value by default; a path ending in the unencrypted suffix stays plaintext; else the
 * first matching rule decides. Rules come from options or from a `.keyfold.yaml` rules file.
 * @module
 */
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { ConfigError } from '@keyfold/envelope-core';
import { parse } from 'yaml';
import type { SecretPath } from './value-crypto.js';

/** One rule: a `**` glob over the dotted path, or a regular expression; `encrypt` says what to do on a match. */
export type EncryptionRule = { path: string; encrypt: boolean } | { regex: string | RegExp; encrypt: boolean };

/** How values are selected for encryption. */
export interface SelectionOptions {
  /** First matching rule wins. Default: no rules (everything is encrypted). */
  rules?: readonly EncryptionRule[];
  /** A key ending with this suffix is left in plaintext. Default `_unencrypted`; `''` turns it off. */
  unencryptedSuffix?: string;
}

/** A value that looks like a secret but was left in plaintext by the rules. */
export interface SecretWarning {
  path: string;
  message: string;
}

/** The dotted display form of a path (`services.db.environment.0`). */
export function pathToString(path: SecretPath): string {
  return path.map(String).join('.');
}

/**
 * Compiles a glob over dotted paths: `**` any number of segments, `*` within one segment, `?` one character.
 * @throws never; every character other than `*` and `?` matches itself
 * @example
 * ```ts
 * globToRegExp('services.*.environment.**').test('services.db.environment.PASSWORD'); // true
 * ```
 */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] as string;
    if (c === '*' && glob[i + 1] === '*') {
      re += '.*';
      i++;
    } else if (c === '*') re += '[^.]*';
    else if (c === '?') re += '[^.]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

interface Compiled {
  test: RegExp;
  encrypt: boolean;
}

/** Decides per path; build once per file. */
export class Selector {
  readonly #rules: Compiled[];
  readonly #suffix: string;

  constructor(options: SelectionOptions = {}) {
    this.#suffix = options.unencryptedSuffix ?? '_unencrypted';
    this.#rules = (options.rules ?? []).map((r, i) => {
      if (typeof r.encrypt !== 'boolean') throw new TypeError(`rules[${i}].encrypt must be a boolean`);
      if ('path' in r) {
        if (typeof r.path !== 'string') throw new TypeError(`rules[${i}].path must be a string`);
        return { test: globToRegExp(r.path), encrypt: r.encrypt };
      }
      return { test: typeof r.regex === 'string' ? new RegExp(r.regex) : r.regex, encrypt: r.encrypt };
    });
  }

  /** True when the value at `path` must be encrypted. */
  shouldEncrypt(path: SecretPath): boolean {
    const last = path[path.length - 1];
    if (this.#suffix !== '' && typeof last === 'string' && last.endsWith(this.#suffix)) return false;
    const p = pathToString(path);
    for (const r of this.#rules) if (r.test.test(p)) return r.encrypt;
    return true;
  }
}

const SECRET_NAME = /(pass(word|wd|phrase)?|secret|token|api[_-]?key|private[_-]?key|credential|auth|dsn|conn(ection)?[_-]?string)/i;
const SECRET_VALUE = /^(-----BEGIN [A-Z ]*PRIVATE KEY-----|AKIA[0-9A-Z]{16}|sk_(live|test)_|gh[pousr]_[A-Za-z0-9]{20,}|xox[baprs]-|[a-z][a-z0-9+.-]*:\/\/[^/\s:@]+:[^/\s@]+@)/;

/** A reason why a plaintext value looks like a secret, or undefined. Heuristic; never a guarantee. */
export function secretLooking(path: SecretPath, value: unknown): string | undefined {
  if (typeof value !== 'string' || value === '') return undefined;
  const last = path[path.length - 1];
  if (typeof last === 'string' && SECRET_NAME.test(last)) return `the name "${last}" suggests a secret`;
  if (SECRET_VALUE.test(value)) return 'the value looks like a credential (key, token or URL with a password)';
  return undefined;
}

/**
 * The k-of-n key groups a `.keyfold.yaml` rules file declares, as provider *references*: opaque, non-empty strings
 * that the caller resolves to `KeyProvider`s (the `keyfold` CLI: keyfold configuration directories, relative to the
 * rules file's directory) before passing `keyGroups` to `encryptSecrets` / `rotateDataKey`. The library never
 * resolves them itself; spreading a {@link RulesFile} that has them into `encryptSecrets` options is refused.
 */
export interface KeyGroupRefs {
  /** How many groups together open a file: 1 to `groups.length` (default in the file: every group). */
  threshold: number;
  /** One list of provider references per group (any one provider of a group opens that group's share). */
  groups: string[][];
}

/** The parsed `.keyfold.yaml` rules file. */
export interface RulesFile extends SelectionOptions {
  rules: EncryptionRule[];
  /** `key_groups` (+ `shamir_threshold`), when the file declares them. */
  keyGroupRefs?: KeyGroupRefs;
}

/** Most key groups a file can have: one Shamir share per group, x = 1..255 in GF(2^8). */
export const MAX_KEY_GROUPS = 255;

function parseKeyGroupRefs(d: Record<string, unknown>): KeyGroupRefs | undefined {
  const raw = d.key_groups;
  const t = d.shamir_threshold;
  if (raw === undefined || raw === null) {
    if (t !== undefined) throw new ConfigError('.keyfold.yaml: shamir_threshold needs key_groups (a list of provider lists)');
    return undefined;
  }
  if (!Array.isArray(raw) || raw.length === 0) {
    throw new ConfigError('.keyfold.yaml: key_groups must be a non-empty list of groups, each a list of providers');
  }
  if (raw.length > MAX_KEY_GROUPS) throw new ConfigError(`.keyfold.yaml: key_groups has ${raw.length} groups; at most ${MAX_KEY_GROUPS}`);
  const seen = new Map<string, number>();
  const groups = raw.map((g: unknown, i): string[] => {
    if (!Array.isArray(g)) throw new ConfigError(`.keyfold.yaml: key_groups[${i}] must be a list of providers`);
    if (g.length === 0) throw new ConfigError(`.keyfold.yaml: key_groups[${i}] is empty: every group needs at least one provider`);
    return g.map((ref: unknown, j): string => {
      if (typeof ref !== 'string' || ref.trim() === '') {
        throw new ConfigError(`.keyfold.yaml: key_groups[${i}][${j}] must be a non-empty string (a provider reference)`);
      }
      const other = seen.get(ref);
      if (other !== undefined) {
        // One provider in two groups would open two shares: the threshold would not mean what it says.
        throw new ConfigError(`.keyfold.yaml: ${JSON.stringify(ref)} appears in key_groups[${other}] and key_groups[${i}]; a provider belongs to one group only`);
      }
      seen.set(ref, i);
      return ref;
    });
  });
  const threshold = t ?? groups.length;
  if (typeof threshold !== 'number' || !Number.isInteger(threshold) || threshold < 1 || threshold > groups.length) {
    throw new ConfigError(
      `.keyfold.yaml: shamir_threshold must be a whole number from 1 to ${groups.length} (the number of key groups); got ${JSON.stringify(threshold)}`,
    );
  }
  return { threshold, groups };
}

/**
 * Parses a `.keyfold.yaml` rules file:
 * ```yaml
 * unencrypted_suffix: _unencrypted
 * rules:
 *   - path: "metadata.**"
 *     encrypt: false
 *   - regex: "^data\\."
 *     encrypt: true
 * key_groups:            # optional: k-of-n key groups, as provider references (see KeyGroupRefs)
 *   - [kms-eu]
 *   - [vault, hsm]
 *   - [offline]
 * shamir_threshold: 2    # default: every group
 * ```
 * @throws ConfigError when the file is not of that shape (also: an empty group, a reference in two groups, a
 *   threshold outside 1..number of groups, a threshold without groups)
 * @example
 * ```ts
 * const selection = parseRulesFile(await readFile('.keyfold.yaml', 'utf8'));
 * await encryptSecrets(text, { format: 'yaml', providers, ...selection });
 * ```
 */
export function parseRulesFile(text: string): RulesFile {
  let doc: unknown;
  try {
    doc = parse(text, { logLevel: 'error' });
  } catch (cause) {
    throw new ConfigError('.keyfold.yaml is not valid YAML', { cause });
  }
  if (doc === null || doc === undefined) return { rules: [] };
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new ConfigError('.keyfold.yaml must be a mapping with a "rules" list');
  const d = doc as Record<string, unknown>;
  const list = d.rules ?? [];
  if (!Array.isArray(list)) throw new ConfigError('.keyfold.yaml: "rules" must be a list');
  const rules = list.map((r: unknown, i): EncryptionRule => {
    const x = (r ?? {}) as Record<string, unknown>;
    const encrypt = x.encrypt ?? true;
    if (typeof encrypt !== 'boolean') throw new ConfigError(`.keyfold.yaml: rules[${i}].encrypt must be true or false`);
    if (typeof x.path === 'string') return { path: x.path, encrypt };
    if (typeof x.regex === 'string') {
      try {
        new RegExp(x.regex);
      } catch (cause) {
        throw new ConfigError(`.keyfold.yaml: rules[${i}].regex is not a valid regular expression`, { cause });
      }
      return { regex: x.regex, encrypt };
    }
    throw new ConfigError(`.keyfold.yaml: rules[${i}] needs a "path" glob or a "regex"`);
  });
  const suffix = d.unencrypted_suffix;
  if (suffix !== undefined && typeof suffix !== 'string') throw new ConfigError('.keyfold.yaml: unencrypted_suffix must be a string');
  const keyGroupRefs = parseKeyGroupRefs(d);
  return {
    rules,
    ...(suffix === undefined ? {} : { unencryptedSuffix: suffix }),
    ...(keyGroupRefs === undefined ? {} : { keyGroupRefs }),
  };
}

/** Name of the rules file {@link findRulesFile} looks for. */
export const RULES_FILE_NAME = '.keyfold.yaml';

/**
 * Looks for `.keyfold.yaml` in `startDir` and each parent directory; returns the nearest one, parsed.
 * @returns undefined when there is none up to the file system root
 * @throws ConfigError when the file found is malformed; other read errors than "not found" as they are
 * @example
 * ```ts
 * const found = await findRulesFile(dirname(secretsPath));
 * const { content } = await encryptSecrets(text, { format, providers, ...found?.rules });
 * ```
 */
export async function findRulesFile(startDir: string): Promise<{ path: string; rules: RulesFile } | undefined> {
  let dir = resolve(startDir);
  for (;;) {
    const path = join(dir, RULES_FILE_NAME);
    try {
      return { path, rules: parseRulesFile(await readFile(path, 'utf8')) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}
