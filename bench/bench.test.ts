import { describe, expect, it } from "vitest"
import { runSuite, smokePlan } from "./src/Bench.js"
import { memorySuite } from "./src/Suites.js"

/** `pnpm bench:smoke`: every scenario runs and loses nothing. No speed is asserted. */
describe("bench smoke", () => {
  it("memory: every scenario executes, on the library and the baseline, with no lost or duplicated update", async () => {
    const rows = await runSuite(memorySuite(), smokePlan)
    expect(rows).toHaveLength(smokePlan.hot.length + smokePlan.spread.length)
    for (const row of rows) {
      for (const side of [row.library, row.baseline]) {
        expect(side?.cycles).toBeGreaterThan(0)
        expect(side?.lost).toBe(0)
        expect(side?.duplicated).toBe(0)
        expect(side?.errors).toBe(0)
      }
    }
  })
})
