/**
 * `pnpm bench`: contention benchmarks of every adapter against hand-written baselines in the
 * same run. Prints a markdown table; writes JSON and an SVG chart to bench/results/.
 *
 *   pnpm bench [--duration <ms per scenario and side, default 2000>] [--only memory,sqlite,…]
 *
 * @module
 */
import { mkdirSync, writeFileSync } from "node:fs"
import { cpus, totalmem } from "node:os"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { fullPlan, runSuite } from "./Bench.js"
import { type Comparison, markdownTable, throughputChart } from "./Report.js"
import { memorySuite, type Suite, sqliteSuite } from "./Suites.js"

const { values } = parseArgs({
  options: { duration: { type: "string", default: "2000" }, only: { type: "string" } },
})
const plan = fullPlan(Number(values.duration))
const wanted = values.only?.split(",")
const suites: Array<() => Suite> = [memorySuite, sqliteSuite("FULL"), sqliteSuite("NORMAL")]

const rows: Array<Comparison> = []
for (const make of suites) {
  const suite = make()
  if (wanted !== undefined && !wanted.includes(suite.adapter)) continue
  try {
    rows.push(...(await runSuite(suite, plan, (line) => console.error(line))))
  } finally {
    await suite.close?.()
  }
}

const machine = `${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`
const table = markdownTable(rows)
console.log(`\n## Contention (${plan.durationMs} ms per scenario and side; ${machine})\n\n${table}\n`)

const hot = rows.filter((r) => r.scenario === "hot holder")
const series = [...new Set(hot.map((r) => r.adapter))].flatMap((adapter) => {
  const mine = hot.filter((r) => r.adapter === adapter)
  const library = {
    name: `${adapter}: library`,
    points: mine.map((r) => [r.library.contenders, r.library.cyclesPerSecond] as const),
  }
  const baseline = {
    name: `${adapter}: baseline`,
    points: mine.flatMap((r) =>
      r.baseline === null ? [] : [[r.baseline.contenders, r.baseline.cyclesPerSecond] as const],
    ),
  }
  return [library, baseline]
})
const out = fileURLToPath(new URL("../results/", import.meta.url))
mkdirSync(out, { recursive: true })
writeFileSync(
  `${out}latest.json`,
  `${JSON.stringify({ at: new Date().toISOString(), machine, plan, rows }, null, 2)}\n`,
)
writeFileSync(`${out}hot-holder.svg`, throughputChart("Hot holder: lock → modify → unlock cycles/s", series))
writeFileSync(`${out}latest.md`, `${table}\n`)
console.log(`results: ${out}latest.json, ${out}hot-holder.svg`)
