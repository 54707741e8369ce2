import { defineConfig } from 'tsup';
import { libraryPreset } from '../../tooling/tsup.preset.js';

export default defineConfig(libraryPreset({ entry: ['src/index.ts', 'src/errors.ts'], splitting: true }));
