import { defineConfig } from 'vitest/config';

const shared = {
  // Integration tests start real processes and servers; the machine has two cores.
  pool: 'forks' as const,
  maxWorkers: 2,
  testTimeout: 30_000,
  hookTimeout: 30_000,
};

export default defineConfig({
  test: {
    reporters: ['default'],
    projects: [
      {
        test: { ...shared, name: 'main', include: ['src/**/*.test.ts', 'test/**/*.test.ts'], exclude: ['test/streaming.test.ts'], sequence: { groupOrder: 0 } },
      },
      {
        // Memory measurements run alone, after everything else: on a busy machine V8's background
        // GC is starved and garbage buffers inflate RSS, which is not what the test measures.
        test: { ...shared, name: 'memory', include: ['test/streaming.test.ts'], sequence: { groupOrder: 1 } },
      },
    ],
  },
});
