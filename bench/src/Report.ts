/**
 * Benchmark output: a markdown table for stdout and the README, and an SVG chart of throughput
 * against contenders.
 *
 * @module
 */
import type { ScenarioResult } from "./Harness.js"

/** One scenario measured on the library and on its baseline in the same run. */
export interface Comparison {
  readonly adapter: string
  readonly scenario: "hot holder" | "spread" | "multi-process" | "scale-out"
  readonly library: ScenarioResult & { readonly target: string }
  readonly baseline: (ScenarioResult & { readonly target: string }) | null
}

const f = (n: number, digits = 2) => (Number.isFinite(n) ? n.toFixed(digits) : "–")
const int = (n: number) => Math.round(n).toLocaleString("en-GB")

/** The contention table: one row per scenario, library beside baseline with their ratio. */
export const markdownTable = (rows: ReadonlyArray<Comparison>): string => {
  const header =
    "| adapter | scenario | N | library cycles/s | baseline cycles/s | ratio | CPU µs/cycle library / baseline | round trips/cycle library / baseline | p50 ms | p99 ms | max ms | 423 retries/cycle | max wait ms | lost | dup | errors |\n" +
    "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  const trips = (n: number | null | undefined) => (n === null || n === undefined ? "–" : f(n, 1))
  const lines = rows.map((r) => {
    const l = r.library
    const b = r.baseline
    const ratio = b === null ? "–" : `${f(l.cyclesPerSecond / b.cyclesPerSecond)}×`
    const lost = l.lost + (b?.lost ?? 0)
    const dup = l.duplicated + (b?.duplicated ?? 0)
    const cpu = `${int(l.cpuMicrosPerCycle)} / ${b === null ? "–" : int(b.cpuMicrosPerCycle)}`
    return `| ${r.adapter} | ${r.scenario} | ${l.contenders} | ${int(l.cyclesPerSecond)} | ${b === null ? "–" : int(b.cyclesPerSecond)} | ${ratio} | ${cpu} | ${trips(l.roundTripsPerCycle)} / ${trips(b?.roundTripsPerCycle)} | ${f(l.p50)} | ${f(l.p99)} | ${f(l.max)} | ${f(l.retriesPerCycle)} | ${f(l.maxWait)} | ${lost} | ${dup} | ${l.errors + (b?.errors ?? 0)} |`
  })
  return [header, ...lines].join("\n")
}

const palette = ["#1b6ac9", "#d9480f", "#2b8a3e", "#862e9c", "#e67700", "#0b7285", "#c2255c", "#5c940d", "#495057"]

/** An SVG line chart: cycles/s (log scale) against contenders (log scale), one line per series. */
export const throughputChart = (
  title: string,
  series: ReadonlyArray<{ readonly name: string; readonly points: ReadonlyArray<readonly [number, number]> }>,
): string => {
  const width = 760
  const height = 420
  const left = 70
  const right = 230
  const top = 40
  const bottom = 50
  const xs = series.flatMap((s) => s.points.map((p) => p[0]))
  const ys = series.flatMap((s) => s.points.map((p) => p[1])).filter((y) => y > 0)
  const [xMin, xMax] = [Math.min(...xs, 1), Math.max(...xs, 2)]
  const yMin = 10 ** Math.floor(Math.log10(Math.min(...ys, 10)))
  const yMax = 10 ** Math.ceil(Math.log10(Math.max(...ys, 100)))
  const x = (v: number) =>
    left + ((Math.log(v) - Math.log(xMin)) / (Math.log(xMax) - Math.log(xMin))) * (width - left - right)
  const y = (v: number) =>
    height -
    bottom -
    ((Math.log10(Math.max(v, yMin)) - Math.log10(yMin)) / (Math.log10(yMax) - Math.log10(yMin))) *
      (height - top - bottom)
  const parts: Array<string> = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${left}" y="22" font-size="15" font-weight="bold">${title}</text>`,
  ]
  for (let d = yMin; d <= yMax; d *= 10) {
    parts.push(`<line x1="${left}" x2="${width - right}" y1="${y(d)}" y2="${y(d)}" stroke="#ddd"/>`)
    parts.push(`<text x="${left - 8}" y="${y(d) + 4}" text-anchor="end">${d.toLocaleString("en-GB")}</text>`)
  }
  for (const v of [...new Set(xs)].sort((a, b) => a - b)) {
    parts.push(`<line x1="${x(v)}" x2="${x(v)}" y1="${top}" y2="${height - bottom}" stroke="#eee"/>`)
    parts.push(`<text x="${x(v)}" y="${height - bottom + 18}" text-anchor="middle">${v}</text>`)
  }
  parts.push(
    `<text x="${(left + width - right) / 2}" y="${height - 10}" text-anchor="middle">contenders on one holder</text>`,
  )
  parts.push(
    `<text x="16" y="${(top + height - bottom) / 2}" transform="rotate(-90 16 ${(top + height - bottom) / 2})" text-anchor="middle">cycles/s (log)</text>`,
  )
  series.forEach((s, i) => {
    const color = palette[i % palette.length] as string
    const dash = s.name.includes("baseline") ? ' stroke-dasharray="6 4"' : ""
    const path = s.points.map((p, j) => `${j === 0 ? "M" : "L"}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(" ")
    parts.push(`<path d="${path}" fill="none" stroke="${color}" stroke-width="2"${dash}/>`)
    for (const p of s.points)
      parts.push(`<circle cx="${x(p[0]).toFixed(1)}" cy="${y(p[1]).toFixed(1)}" r="3" fill="${color}"/>`)
    const ly = top + 10 + i * 20
    parts.push(
      `<line x1="${width - right + 15}" x2="${width - right + 40}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="2"${dash}/>`,
    )
    parts.push(
      `<text x="${width - right + 46}" y="${ly + 4}">${s.name.replace(/&/g, "&amp;").replace(/</g, "&lt;")}</text>`,
    )
  })
  parts.push("</svg>")
  return parts.join("\n")
}
