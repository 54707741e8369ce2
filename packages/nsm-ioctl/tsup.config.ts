import { defineConfig } from 'tsup';
import { libraryPreset } from '../../tooling/tsup.preset.js';

// shims: the CommonJS build needs import.meta.url to locate build/Release/nsm_ioctl.node.
export default defineConfig(libraryPreset({ shims: true }));
