import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: [
      "packages/*/test/**/*.test.ts",
      "test/**/*.test.ts",
      "examples/**/*.test.ts",
      "bench/**/*.test.ts",
      "release/**/*.test.ts",
    ],
    exclude: ["**/node_modules/**", "**/dist/**"],
    // Bounds against a hang, not speed checks: tests that start processes (the server's bin, worker
    // processes) take several seconds each on a loaded 2-core machine.
    testTimeout: 60_000,
    hookTimeout: 90_000,
    // CI asks for a JSON report as well, to print one closing line with the counts.
    ...(process.env.VITEST_JSON === undefined
      ? {}
      : { reporters: ["default", "json"], outputFile: { json: process.env.VITEST_JSON } }),
  },
})
