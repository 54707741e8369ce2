import { defineConfig } from 'tsup';

// ESM only, code-split: each command (and each provider package) is loaded on demand, so `keyfold --help`
// loads neither the provider packages nor any vendor SDK.
export default defineConfig({
  entry: ['src/bin.ts'],
  format: ['esm'],
  target: 'node20',
  platform: 'node',
  splitting: true,
  sourcemap: true,
  clean: true,
  dts: false,
  banner: { js: '#!/usr/bin/env node' },
  external: [/^@keyfold\//],
});
