import { defineConfig } from 'vitest/config';

/** Shared vitest options. Tests run against `src` of the package itself; dependencies resolve to their builds. */
export function vitestPreset(overrides: { testTimeout?: number; include?: string[] } = {}) {
  return defineConfig({
    test: {
      include: overrides.include ?? ['test/**/*.test.ts', 'src/**/*.test.ts'],
      testTimeout: overrides.testTimeout ?? 30_000,
      hookTimeout: 60_000,
      pool: 'forks',
      reporters: ['default'],
    },
  });
}
