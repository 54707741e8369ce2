/**
 * Option checking for the public functions of this package: an option object with a name the function does not know
 * is refused with a TypeError naming it (a misspelt `populateEnv` or `throwOnMissingKey` must not silently turn a
 * safety switch off), and values of the wrong type are refused the same way.
 * @module
 */

/**
 * Refuses `options` unless it is a plain object whose every own key is in `known`.
 * @throws TypeError naming `where` and the first unknown option, with the known ones.
 * @example
 * ```ts
 * assertKnownOptions(options, ['ttl', 'autoRefresh'], 'loadSecrets access');
 * ```
 */
export function assertKnownOptions(options: unknown, known: readonly string[], where: string): asserts options is Record<string, unknown> {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) throw new TypeError(`${where} options must be an object`);
  for (const name of Object.keys(options)) {
    if (!known.includes(name)) {
      throw new TypeError(`${where} has no option ${JSON.stringify(name)}; known options: ${known.join(', ')}`);
    }
  }
}

/**
 * Refuses a present option that is not a boolean.
 * @throws TypeError naming the option.
 */
export function assertOptionalBoolean(value: unknown, name: string): void {
  if (value !== undefined && typeof value !== 'boolean') throw new TypeError(`${name} must be a boolean; got ${typeof value}`);
}

/**
 * Refuses a present option that is not a function.
 * @throws TypeError naming the option.
 */
export function assertOptionalFunction(value: unknown, name: string): void {
  if (value !== undefined && typeof value !== 'function') throw new TypeError(`${name} must be a function; got ${typeof value}`);
}

/**
 * A duration in milliseconds: a whole number from `min` to `max`.
 * @throws TypeError for a non-number, RangeError outside the range; both name the option.
 */
export function durationOption(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number') throw new TypeError(`${name} must be a number of milliseconds; got ${typeof value}`);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${name} must be a whole number of milliseconds from ${min} to ${max}; got ${String(value)}`);
  }
  return value;
}
