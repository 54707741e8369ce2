/** Picks a format adapter by name or file name. @module */
import { dotenvFormat } from './dotenv.js';
import { jsonFormat } from './json.js';
import { tomlFormat } from './toml.js';
import { yamlFormat } from './yaml.js';
import type { FormatAdapter, SecretsFormat } from './types.js';

const ADAPTERS: Record<SecretsFormat, FormatAdapter> = { dotenv: dotenvFormat, json: jsonFormat, yaml: yamlFormat, toml: tomlFormat };

/** The adapter for `format`. @throws TypeError for an unknown format name */
export function adapterFor(format: SecretsFormat): FormatAdapter {
  const a = (ADAPTERS as Partial<Record<string, FormatAdapter>>)[format];
  if (!a) throw new TypeError(`format must be one of ${Object.keys(ADAPTERS).join(', ')}; got ${JSON.stringify(format)}`);
  return a;
}

/**
 * The format of a file by its name: `.json`, `.yaml`/`.yml`, `.toml`, and `.env`, `.env.*`, `*.env` as dotenv.
 * @returns undefined when the name says nothing
 * @throws never
 * @example
 * ```ts
 * formatFromFileName('deploy/.env.production'); // 'dotenv'
 * ```
 */
export function formatFromFileName(fileName: string): SecretsFormat | undefined {
  const base = fileName.replace(/^.*[\\/]/, '').toLowerCase();
  if (base.endsWith('.json')) return 'json';
  if (base.endsWith('.toml')) return 'toml';
  if (base.endsWith('.yaml') || base.endsWith('.yml')) return 'yaml';
  if (base === '.env' || base.startsWith('.env.') || base.endsWith('.env')) return 'dotenv';
  return undefined;
}
