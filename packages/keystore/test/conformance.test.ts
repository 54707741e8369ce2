import { describe, it } from 'vitest';
import { runKeyStoreConformance } from '@keyfold/conformance';
import { createEnvProvider } from '@keyfold/provider-local';
import { auditHash } from '../src/index.js';
import { executeRaw, hexKey, pgStoreWithSchema, sqliteStore } from './helpers.js';

/** One KEK for every store of a run, as two installations sharing a KEK would have. */
const kek = hexKey();
const keyed = { makeProvider: () => createEnvProvider({ env: { KEYFOLD_KEK_V1: kek } }), auditHash };

runKeyStoreConformance({ name: 'SqliteKeyStore', makeStore: () => sqliteStore(), execute: executeRaw, keyed, describe, it });
runKeyStoreConformance({ name: 'PostgresKeyStore', makeStore: () => pgStoreWithSchema(), execute: executeRaw, keyed, describe, it });
