import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/run.ts', 'src/stream-child.ts'],
  format: ['esm'],
  target: 'node20',
  platform: 'node',
  sourcemap: true,
  clean: true,
  dts: false,
  external: [/^@keyfold\//, /^@aws-crypto\//],
});
