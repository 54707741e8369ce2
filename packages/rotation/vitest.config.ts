import { mergeConfig } from 'vitest/config';
import { vitestPreset } from '../../tooling/vitest.preset.js';

// One throwaway PostgreSQL server per run (tooling/postgres-global-setup.ts); tests use schemas of their own.
// SoftHSM2 for the PKCS#11 migration test: installed when missing and running as root (test/softhsm-global-setup.ts).
export default mergeConfig(vitestPreset({ testTimeout: 60_000 }), {
  test: { globalSetup: ['../../tooling/postgres-global-setup.ts', './test/softhsm-global-setup.ts'] },
});
