/**
 * @keyfold/provider-local: key providers that need no cloud service. `createEnvProvider` (versioned hex KEKs in
 * environment variables or a dotenv file), `createFileProvider` (a passphrase-sealed KEK file, with the
 * functions that administer it) and `createMemoryProvider` (random in-memory KEKs, development only).
 * @packageDocumentation
 */
export { createEnvProvider, EnvProvider } from './env-provider.js';
export type { EnvProviderOptions } from './env-provider.js';
export { createFileProvider, FileProvider } from './file-provider.js';
export type { FileProviderOptions } from './file-provider.js';
export { addFileKekVersion, changeFilePassphrase, initKekFile, setActiveFileKekVersion } from './kek-file-admin.js';
export type {
  AddFileKekVersionOptions,
  ChangeFilePassphraseOptions,
  InitKekFileOptions,
  KekFileInfo,
  SetActiveFileKekVersionOptions,
} from './kek-file-admin.js';
/** Deprecated aliases: the earlier "keyring" names of the KEK file functions, still exported. */
export { initFileKeyring } from './kek-file-admin.js';
export { KEYRING_FILE } from './kek-file-format.js';
export type { FileKeyringInfo, InitFileKeyringOptions } from './kek-file-admin.js';
export { createMemoryProvider, MemoryProvider } from './memory-provider.js';
export type { MemoryProviderOptions } from './memory-provider.js';
export { DEFAULT_PBKDF2_ITERATIONS, DEFAULT_SCRYPT, KEK_FILE_NAME } from './kek-file-format.js';
export { withKekFileLock } from './kek-file-io.js';
export type { KdfDescription, KdfOptions } from './kek-file-format.js';
export { PASSPHRASE_ENV } from './passphrase.js';
export type { PassphraseSource } from './passphrase.js';
