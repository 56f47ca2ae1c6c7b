import { describe, expect, it } from "vitest"
import { runSuite, smokePlan } from "./src/Bench.js"
import { runHttpBench } from "./src/Http.js"
import { memorySuite, postgresSuite, redisClusterSuite, redisSuite, type Suite, sqliteSuite } from "./src/Suites.js"

/**
 * `pnpm bench:smoke`: every scenario runs and loses nothing. No speed is asserted. Most of a
 * suite's time is spent starting worker processes (the multi-process and scale-out scenarios,
 * library and baseline), several seconds each on a loaded machine, so the bound is generous: it
 * only keeps a hang from lasting.
 */
const SUITE_TIMEOUT = 240_000
describe("bench smoke", () => {
  it("http: both servers answer every request of both routes with 2xx", async () => {
    const rows = await runHttpBench(1, 4)
    expect(rows.map((r) => r.route)).toEqual(["GET credit", "lock → modify → unlock"])
    for (const row of rows) {
      for (const side of [row.library, row.baseline]) {
        expect(side.requestsPerSecond).toBeGreaterThan(0)
        expect(side.non2xx).toBe(0)
        expect(side.errors).toBe(0)
      }
    }
  }, 60_000)

  it.each([
    ["memory", memorySuite],
    ["sqlite FULL", sqliteSuite("FULL")],
    ["sqlite NORMAL", sqliteSuite("NORMAL")],
    ["redis", redisSuite],
    ["redis cluster", redisClusterSuite],
    ["postgres", postgresSuite],
  ] as const)(
    "%s: every scenario executes, on the library and the baseline, with no lost or duplicated update",
    async (_, make: () => Suite) => {
      const suite = make()
      const rows = await runSuite(suite, smokePlan).finally(() => suite.close?.())
      expect(rows).toHaveLength(
        smokePlan.hot.length +
          smokePlan.spread.length +
          (suite.shared === undefined ? 0 : 1) +
          (suite.scaleOut === true ? smokePlan.scaleOut.processes.length : 0),
      )
      for (const row of rows) {
        for (const side of [row.library, row.baseline]) {
          expect(side?.cycles).toBeGreaterThan(0)
          expect(side?.lost).toBe(0)
          expect(side?.duplicated).toBe(0)
          expect(side?.errors).toBe(0)
          expect(side?.cpuMicrosPerCycle).toBeGreaterThan(0)
        }
        // A cycle is a lock, a modification and an unlock: at least one round trip each, on the
        // library's count (calls into its storage, or a server's commands) and on a Redis baseline's.
        expect(row.library.roundTripsPerCycle).toBeGreaterThanOrEqual(3)
        if (suite.adapter !== "memory" && !suite.adapter.startsWith("sqlite")) {
          expect(row.baseline?.roundTripsPerCycle).toBeGreaterThanOrEqual(3)
        }
      }
    },
    SUITE_TIMEOUT,
  )
})
