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
          // No retries anywhere: a test that fails sometimes is a bug in the code or in the test.
          retry: 0,
        },
      },
    ],
  },
});
