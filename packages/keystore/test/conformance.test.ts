import { describe, it } from 'vitest';
import { runKeyStoreConformance } from '@keyfold/conformance';
import { executeRaw, pgStoreWithSchema, sqliteStore } from './helpers.js';

runKeyStoreConformance({ name: 'SqliteKeyStore', makeStore: () => sqliteStore(), execute: executeRaw, describe, it });
runKeyStoreConformance({ name: 'PostgresKeyStore', makeStore: () => pgStoreWithSchema(), execute: executeRaw, describe, it });
