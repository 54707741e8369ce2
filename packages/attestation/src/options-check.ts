/**
 * Option checking shared by the public functions of this package: a misspelt option (`requird: false`,
 * `maxDocumentAg`) must not silently fall back to its default, so an unknown name is a TypeError naming it.
 * @module
 */

/**
 * Refuses an options object with a name `where` does not know.
 * @throws TypeError naming the option and the known ones.
 * @example
 * ```ts
 * assertKnownOptions(options, ['devicePath'], 'nsmSource');
 * ```
 */
export function assertKnownOptions(options: unknown, known: readonly string[], where: string): void {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) throw new TypeError(`${where} options must be an object`);
  for (const name of Object.keys(options)) {
    if (!known.includes(name)) throw new TypeError(`${where} has no option ${JSON.stringify(name)}; known options: ${known.join(', ')}`);
  }
}
