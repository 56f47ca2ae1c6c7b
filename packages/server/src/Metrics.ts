/**
 * `/metrics`: every Effect `Metric` of the process (the engine's, @creditlock/core `Metrics`; the
 * HTTP API's, @creditlock/http `Metrics`) in the Prometheus text exposition format, served on a
 * listener of its own (`CREDIT_METRICS_HOST`, `CREDIT_METRICS_PORT`) so that it is reachable only
 * where the operator binds it — loopback by default — and never through the API's port.
 *
 * @module
 */
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { Effect, Layer, Metric, type MetricPair, MetricState } from "effect"

const escapeLabel = (value: string): string => value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")
const metricName = (name: string): string => name.replace(/[^a-zA-Z0-9_:]/g, "_")
const labelName = (name: string): string => name.replace(/[^a-zA-Z0-9_]/g, "_")
const number = (n: number | bigint): string =>
  typeof n === "bigint" ? n.toString() : Number.isFinite(n) ? String(n) : n > 0 ? "+Inf" : n < 0 ? "-Inf" : "NaN"

const labels = (pairs: ReadonlyArray<readonly [string, string]>): string =>
  pairs.length === 0 ? "" : `{${pairs.map(([k, v]) => `${labelName(k)}="${escapeLabel(v)}"`).join(",")}}`

/**
 * The metrics in the Prometheus text format (version 0.0.4): counters and gauges as one sample
 * per label set, histograms as cumulative `_bucket` samples (with `le="+Inf"`), `_sum` and
 * `_count`. Other kinds (frequency, summary) are left out.
 */
export const prometheusText = (pairs: ReadonlyArray<MetricPair.MetricPair.Untyped>): string => {
  const families = new Map<string, { type: string; help: string; lines: Array<string> }>()
  const family = (name: string, type: string, help: string) => {
    const existing = families.get(name)
    if (existing !== undefined) return existing
    const created = { type, help, lines: [] as Array<string> }
    families.set(name, created)
    return created
  }
  for (const pair of pairs) {
    const name = metricName(pair.metricKey.name)
    const help = pair.metricKey.description._tag === "Some" ? pair.metricKey.description.value : name
    const tags = pair.metricKey.tags.map((label) => [label.key, label.value] as const)
    const state = pair.metricState
    if (MetricState.isCounterState(state)) {
      family(name, "counter", help).lines.push(`${name}${labels(tags)} ${number(state.count)}`)
    } else if (MetricState.isGaugeState(state)) {
      family(name, "gauge", help).lines.push(`${name}${labels(tags)} ${number(state.value)}`)
    } else if (MetricState.isHistogramState(state)) {
      const lines = family(name, "histogram", help).lines
      for (const [boundary, count] of state.buckets) {
        lines.push(`${name}_bucket${labels([...tags, ["le", number(boundary)]])} ${count}`)
      }
      lines.push(`${name}_bucket${labels([...tags, ["le", "+Inf"]])} ${state.count}`)
      lines.push(`${name}_sum${labels(tags)} ${number(state.sum)}`)
      lines.push(`${name}_count${labels(tags)} ${state.count}`)
    }
  }
  const out: Array<string> = []
  for (const [name, f] of families) {
    out.push(`# HELP ${name} ${f.help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}`, `# TYPE ${name} ${f.type}`)
    out.push(...f.lines)
  }
  return out.length === 0 ? "" : `${out.join("\n")}\n`
}

/** Where the metrics listener binds. */
export interface MetricsListenOptions {
  readonly host: string
  /** 0 picks a free port. */
  readonly port: number
}

/**
 * A listener answering `GET /metrics` with {@link prometheusText} of the process's metrics (404
 * for anything else); logs its URL once it listens, and closes when the layer is released.
 */
export const layer = (options: MetricsListenOptions): Layer.Layer<never, Error> =>
  Layer.scopedDiscard(
    Effect.gen(function* () {
      const server = createServer((request, response) => {
        if (request.method !== "GET" || (request.url ?? "").split("?")[0] !== "/metrics") {
          response.writeHead(404, { "content-type": "text/plain" }).end("not found\n")
          return
        }
        const body = prometheusText(Effect.runSync(Metric.snapshot))
        response.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" }).end(body)
      })
      yield* Effect.acquireRelease(
        Effect.async<void, Error>((resume) => {
          server.once("error", (error) =>
            resume(
              Effect.fail(new Error(`cannot listen on ${options.host}:${options.port} for /metrics: ${error.message}`)),
            ),
          )
          server.listen(options.port, options.host, () => resume(Effect.void))
        }),
        () =>
          Effect.async<void>((resume) => {
            server.close(() => resume(Effect.void))
            server.closeAllConnections()
          }),
      )
      const address = server.address() as AddressInfo
      const host = address.address.includes(":") ? `[${address.address}]` : address.address
      const url = `http://${host}:${address.port}/metrics`
      yield* Effect.logInfo(`creditlock metrics on ${url} `.trimEnd()).pipe(Effect.annotateLogs({ metrics: url }))
    }),
  )
