/**
 * @keyfold/secrets: encrypted config files (.env, JSON, YAML, TOML) whose keys and structure stay readable and whose
 * values are sealed under one data key per file, wrapped by any number of Keyfold providers; plus a runtime store
 * that keeps decrypted values sealed in memory until they are read.
 * @packageDocumentation
 */
export {
  encryptSecrets,
  decryptSecrets,
  updateKeys,
  rotateDataKey,
  inspectSecrets,
} from './file-api.js';
export type { EncryptOptions, EncryptResult, SecretsFileInfo, SecretsFileOptions, WrappedKeyInfo } from './file-crypto.js';
export type { KeyGroups, KeyOptions } from './data-key.js';
export { loadSecrets } from './store.js';
export type { LoadSecretsOptions, RefreshFailureInfo, SecretStore, SecretsAccessOptions, SecretsSource } from './store.js';
export { parseRulesFile, globToRegExp, findRulesFile, RULES_FILE_NAME, MAX_KEY_GROUPS } from './rules.js';
export type { EncryptionRule, KeyGroupRefs, RulesFile, SecretWarning, SelectionOptions } from './rules.js';
export { formatFromFileName } from './formats/index.js';
export type { SecretValue, SecretsFormat } from './formats/types.js';
export { DOTENV_META_PREFIX } from './formats/dotenv.js';
export { editYamlText } from './formats/yaml.js';
export { editTomlText } from './formats/toml.js';
export { IntegrityFailedError, KeyfoldError, DecryptFailedError, FormatError, isKeyfoldError } from './errors.js';
export type { KeyfoldErrorCode } from './errors.js';
