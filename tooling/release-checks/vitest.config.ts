import { vitestPreset } from '../../tooling/vitest.preset.js';

export default vitestPreset({ testTimeout: 120_000 });
