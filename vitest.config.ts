import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 30_000,
    // The machine has 2 cores; tests start real servers on loopback.
    maxWorkers: 2,
  },
})
