/**
 * How KEK versions are named on the token. Version `N` (N >= 1) of the KEK `payments` is the secret key object
 * labelled `payments.vN`; an object labelled exactly `payments` (a key made before Keyfold, e.g. with
 * `pkcs11-tool --keygen --label payments`) is adopted as version `0`. Version strings are canonical decimals, so
 * `01`, ` 1` or `v1` never name a version.
 * @module
 */

/** Key labels: 1-56 characters of `A-Z a-z 0-9 . _ : -`, starting with a letter or digit, not ending in `.v<N>`. */
const KEY_LABEL = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,55}$/;
const VERSION_SUFFIX = /\.v[0-9]+$/;
/** Canonical version strings: `0`, or 1-9 digits without a leading zero. */
const CANONICAL_VERSION = /^(0|[1-9][0-9]{0,8})$/;

/**
 * Asserts `label` can name a KEK.
 * @throws TypeError / RangeError naming `name`.
 */
export function assertKeyLabel(label: unknown, name = 'keyLabel'): asserts label is string {
  if (typeof label !== 'string') throw new TypeError(`${name} must be a string; got ${typeof label}`);
  if (!KEY_LABEL.test(label)) {
    throw new RangeError(
      `${name} must be 1-56 characters of A-Z a-z 0-9 . _ : - starting with a letter or digit; got ${JSON.stringify(label)}`,
    );
  }
  if (VERSION_SUFFIX.test(label)) {
    throw new RangeError(`${name} must not end in .v<N> (that suffix names a version); got ${JSON.stringify(label)}: use ${JSON.stringify(label.replace(VERSION_SUFFIX, ''))}`);
  }
}

/** True for a canonical version string. */
export function isCanonicalVersion(version: string): boolean {
  return CANONICAL_VERSION.test(version);
}

/**
 * The object label of one version: `label` for version 0, `label.vN` otherwise.
 * @example
 * ```ts
 * objectLabel('payments', '3'); // 'payments.v3'
 * ```
 */
export function objectLabel(keyLabel: string, version: string): string {
  return version === '0' ? keyLabel : `${keyLabel}.v${version}`;
}

/** The version an object label names for `keyLabel`, or `undefined` when it names none. */
export function versionOfLabel(keyLabel: string, label: string): string | undefined {
  if (label === keyLabel) return '0';
  if (!label.startsWith(`${keyLabel}.v`)) return undefined;
  const v = label.slice(keyLabel.length + 2);
  return v !== '0' && CANONICAL_VERSION.test(v) ? v : undefined;
}

/** Numeric order of canonical version strings. */
export function compareVersions(a: string, b: string): number {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}

/** The version after `highest` (`1` when there is none or only the adopted version 0). */
export function nextVersion(highest: string | undefined): string {
  if (highest === undefined) return '1';
  const n = Number(highest) + 1;
  if (!Number.isSafeInteger(n) || n > 999_999_999) throw new RangeError(`no version after ${highest} fits in 9 digits`);
  return String(n);
}
