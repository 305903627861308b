import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    restoreMocks: true,
    unstubEnvs: true,
    projects: [
      {
        extends: true,
        test: { name: 'unit', include: ['src/**/*.test.ts'], environment: 'node' },
      },
      {
        extends: true,
        test: {
          name: 'docker',
          include: ['test/integration/**/*.test.ts'],
          environment: 'node',
          globalSetup: ['test/helpers/docker-global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 180_000,
          // Files share one engine; run them one at a time so limits and timings do not interfere.
          fileParallelism: false,
          // CI machines are shared and noisy: one retry for the real-engine tests (never for unit tests).
          retry: process.env.CI === 'true' ? 1 : 0,
        },
      },
    ],
  },
});
