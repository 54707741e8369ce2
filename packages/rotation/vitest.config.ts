import { mergeConfig } from 'vitest/config';
import { vitestPreset } from '../../tooling/vitest.preset.js';

// One throwaway PostgreSQL server per run (tooling/postgres-global-setup.ts); tests use schemas of their own.
export default mergeConfig(vitestPreset({ testTimeout: 60_000 }), {
  test: { globalSetup: ['../../tooling/postgres-global-setup.ts'] },
});
