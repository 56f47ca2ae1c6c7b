/**
 * `pnpm bench`: contention benchmarks of every adapter against hand-written baselines in the
 * same run. Prints a markdown table; writes JSON and an SVG chart to bench/results/.
 *
 *   pnpm bench [--duration <ms per scenario and side, default 2000>] [--only memory,sqlite,…]
 *
 * `--only` takes adapter names as the table prints them (`memory`, `sqlite FULL`, `redis`,
 * `redis cluster`, `postgres`) and `http`.
 *
 * @module
 */
import { execFileSync } from "node:child_process"
import { mkdirSync, writeFileSync } from "node:fs"
import { cpus, totalmem } from "node:os"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { fullPlan, runSuite } from "./Bench.js"
import { httpTable, runHttpBench } from "./Http.js"
import { type Comparison, markdownTable, throughputChart } from "./Report.js"
import { memorySuite, postgresSuite, redisClusterSuite, redisSuite, type Suite, sqliteSuite } from "./Suites.js"

const { values } = parseArgs({
  options: { duration: { type: "string", default: "2000" }, only: { type: "string" } },
})
const plan = fullPlan(Number(values.duration))
const wanted = values.only?.split(",")
const suites: Array<() => Suite> = [
  memorySuite,
  sqliteSuite("FULL"),
  sqliteSuite("NORMAL"),
  redisSuite,
  redisClusterSuite,
  postgresSuite,
]

const rows: Array<Comparison> = []
for (const make of suites) {
  const suite = make()
  if (wanted !== undefined && !wanted.includes(suite.adapter)) {
    await suite.close?.()
    continue
  }
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
const http =
  wanted === undefined || wanted.includes("http")
    ? await runHttpBench(Math.max(1, Math.round(plan.durationMs / 1000) * 2))
    : []
const httpMarkdown = httpTable(http)
console.log(`## HTTP layer (autocannon, 16 connections, memory store)\n\n${httpMarkdown}\n`)

/** Runs a footprint script in its own process (so its heap is its own) and reads its JSON line. */
const footprint = (script: string, args: ReadonlyArray<string>): Record<string, number> => {
  const path = fileURLToPath(new URL(script, import.meta.url))
  const out = execFileSync(process.execPath, ["--expose-gc", "--import", "tsx", path, ...args], { encoding: "utf8" })
  return JSON.parse(out.trim().split("\n").at(-1) ?? "{}") as Record<string, number>
}
const memory = footprint("./FootprintMemory.ts", ["100000"])
const disk = footprint("./FootprintSqlite.ts", ["10000", "10000"])
const footprintTable = [
  "| measure | value |",
  "| --- | ---: |",
  `| memory adapter: resident memory per 100k holders (each with one modification) | ${(memory.rssBytes ?? 0) / 2 ** 20 > 0 ? ((memory.rssBytes ?? 0) / 2 ** 20).toFixed(0) : "–"} MiB |`,
  `| memory adapter: heap per holder | ${memory.bytesPerHolder} B |`,
  `| SQLite file: bytes per holder (opened, one modification) | ${disk.bytesPerHolder} B |`,
  `| SQLite file: bytes per further journal entry | ${disk.bytesPerJournalEntry} B |`,
].join("\n")
console.log(`## Footprint\n\n${footprintTable}\n`)

const out = fileURLToPath(new URL("../results/", import.meta.url))
mkdirSync(out, { recursive: true })
writeFileSync(
  `${out}latest.json`,
  `${JSON.stringify({ at: new Date().toISOString(), machine, plan, rows, http, footprint: { memory, disk } }, null, 2)}\n`,
)
writeFileSync(`${out}hot-holder.svg`, throughputChart("Hot holder: lock → modify → unlock cycles/s", series))
writeFileSync(`${out}latest.md`, `${table}\n\n${httpMarkdown}\n\n${footprintTable}\n`)
console.log(`results: ${out}latest.json, ${out}hot-holder.svg`)
