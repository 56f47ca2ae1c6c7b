/**
 * Runs every scenario on every suite and collects comparisons.
 *
 * @module
 */
import { randomUUID } from "node:crypto"
import { runScenario, type ScenarioResult } from "./Harness.js"
import { runMultiProcess } from "./MultiProcess.js"
import type { Comparison } from "./Report.js"
import type { Suite } from "./Suites.js"

/** Contenders on one holder, and workers on their own holders. */
export interface BenchPlan {
  readonly durationMs: number
  readonly hot: ReadonlyArray<number>
  readonly spread: ReadonlyArray<number>
  /** Processes × contenders each, on `holders` shared holders (adapters with a shared store). */
  readonly multiProcess: { readonly processes: number; readonly contenders: number; readonly holders: number }
  /**
   * Scale-out (suites with `scaleOut`): K processes for each K of `processes`, each with
   * `contenders` workers on holders of their own, so throughput can grow with processes.
   */
  readonly scaleOut: { readonly processes: ReadonlyArray<number>; readonly contenders: number }
}

/** The full plan; `durationMs` per scenario and side. */
export const fullPlan = (durationMs: number): BenchPlan => ({
  durationMs,
  hot: [1, 4, 8, 16, 64, 256],
  spread: [1, 4, 16, 64],
  multiProcess: { processes: 4, contenders: 2, holders: 2 },
  scaleOut: { processes: [1, 2, 4], contenders: 16 },
})

/** A few short runs: every code path, correctness only. */
export const smokePlan: BenchPlan = {
  durationMs: 100,
  hot: [1, 8],
  spread: [4],
  multiProcess: { processes: 2, contenders: 2, holders: 2 },
  scaleOut: { processes: [2], contenders: 2 },
}

const measure = async (
  make: () => Promise<import("./Harness.js").Target>,
  contenders: number,
  holders: number,
  durationMs: number,
) => {
  const target = await make()
  try {
    const result: ScenarioResult = await runScenario(target, { contenders, holders, durationMs, runId: randomUUID() })
    return { ...result, target: target.name }
  } finally {
    await target.close()
  }
}

/** Measures the library and its baseline, one after the other, for each scenario of the plan. */
export const runSuite = async (
  suite: Suite,
  plan: BenchPlan,
  log: (line: string) => void = () => {},
): Promise<ReadonlyArray<Comparison>> => {
  const rows: Array<Comparison> = []
  const scenarios = [
    ...plan.hot.map((n) => ({ scenario: "hot holder" as const, contenders: n, holders: 1 })),
    ...plan.spread.map((n) => ({ scenario: "spread" as const, contenders: n, holders: n })),
  ]
  for (const s of scenarios) {
    const library = await measure(suite.library, s.contenders, s.holders, plan.durationMs)
    const baseline = await measure(suite.baseline, s.contenders, s.holders, plan.durationMs)
    log(
      `${suite.adapter} ${s.scenario} N=${s.contenders}: ${Math.round(library.cyclesPerSecond)} vs ${Math.round(baseline.cyclesPerSecond)} cycles/s`,
    )
    rows.push({ adapter: suite.adapter, scenario: s.scenario, library, baseline })
  }
  if (suite.shared !== undefined) {
    const library = await runMultiProcess(await suite.shared(), "library", {
      ...plan.multiProcess,
      durationMs: plan.durationMs,
    })
    const baseline = await runMultiProcess(await suite.shared(), "baseline", {
      ...plan.multiProcess,
      durationMs: plan.durationMs,
    })
    log(
      `${suite.adapter} multi-process: ${Math.round(library.cyclesPerSecond)} vs ${Math.round(baseline.cyclesPerSecond)} cycles/s`,
    )
    rows.push({ adapter: suite.adapter, scenario: "multi-process", library, baseline })
  }
  if (suite.shared !== undefined && suite.scaleOut === true) {
    for (const processes of plan.scaleOut.processes) {
      const options = {
        processes,
        contenders: plan.scaleOut.contenders,
        holders: processes * plan.scaleOut.contenders,
        disjoint: true,
        durationMs: plan.durationMs,
      }
      const library = await runMultiProcess(await suite.shared(), "library", options)
      const baseline = await runMultiProcess(await suite.shared(), "baseline", options)
      log(
        `${suite.adapter} scale-out K=${processes}: ${Math.round(library.cyclesPerSecond)} vs ${Math.round(baseline.cyclesPerSecond)} cycles/s`,
      )
      rows.push({ adapter: suite.adapter, scenario: "scale-out", library, baseline })
    }
  }
  return rows
}
