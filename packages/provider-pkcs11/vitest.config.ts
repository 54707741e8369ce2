import { mergeConfig } from 'vitest/config';
import { vitestPreset } from '../../tooling/vitest.preset.js';

// The global setup installs SoftHSM2, OpenSC and openCryptoki when they are missing and we are root (see README).
export default mergeConfig(vitestPreset({ testTimeout: 120_000 }), { test: { globalSetup: ['./test/global-setup.ts'] } });
