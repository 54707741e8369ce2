import { defineConfig } from 'tsup';

// ESM only: a private tool for tests, the bench and `keyfold-emulator`. bin.ts keeps its shebang line.
export default defineConfig({
  entry: ['src/index.ts', 'src/bin.ts'],
  format: ['esm'],
  dts: { entry: ['src/index.ts'] },
  sourcemap: true,
  clean: true,
  target: 'node20',
  platform: 'node',
  splitting: true,
  treeshake: true,
});
