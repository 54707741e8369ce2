import { defineConfig } from 'tsup';
import { libraryPreset } from '../../tooling/tsup.preset.js';

// @keyfold/nsm-ioctl is an optional dependency, loaded with import() only when nsmSource() is used.
export default defineConfig(libraryPreset({ entry: ['src/index.ts', 'src/errors.ts'], splitting: true, external: ['@keyfold/nsm-ioctl'] }));
