import { vitestPreset } from '../vitest.preset.js';

export default vitestPreset({ testTimeout: 120_000 });
