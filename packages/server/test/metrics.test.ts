/**
 * `/metrics` scraped for real from the `creditlock` executable: its own listener, the Prometheus
 * text format, and values that move with the requests made.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { afterAll, describe, expect, it } from "vitest"

const root = fileURLToPath(new URL("../../..", import.meta.url))
const TOKEN = "metrics-test-admin-token-91c2"
const children: Array<ChildProcess> = []
afterAll(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
})

const start = (): Promise<{ api: string; metrics: string; child: ChildProcess; output: () => string }> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "packages/server/src/bin.ts", "serve"], {
      cwd: root,
      env: {
        ...process.env,
        HOST: "127.0.0.1",
        PORT: "0",
        CREDIT_STORE: "memory:",
        CREDIT_METRICS_PORT: "0",
        CREDIT_CREDENTIALS: JSON.stringify([{ token: TOKEN, customers: ["*"] }]),
      },
      stdio: ["ignore", "pipe", "pipe"],
    })
    children.push(child)
    let output = ""
    const timer = setTimeout(() => reject(new Error(`the server did not start:\n${output}`)), 60_000)
    const read = (chunk: Buffer) => {
      output += chunk.toString("utf8")
      const api = /"creditlock listening on (http:\/\/127\.0\.0\.1:\d+) /.exec(output)?.[1]
      const metrics = /"metrics":"(http:\/\/127\.0\.0\.1:\d+\/metrics)"/.exec(output)?.[1]
      if (api !== undefined && metrics !== undefined) {
        clearTimeout(timer)
        resolve({ api, metrics, child, output: () => output })
      }
    }
    child.stdout.on("data", read)
    child.stderr.on("data", read)
    child.once("exit", (code) => reject(new Error(`the server exited (${code}):\n${output}`)))
  })

/** The value of one sample (`name{labels}`), or 0 when the series does not exist yet. */
const sample = (text: string, series: string): number => {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `))
  return line === undefined ? 0 : Number(line.slice(series.length + 1))
}

describe("/metrics", () => {
  it("serves Prometheus text on its own listener, and the values move with requests", async () => {
    const server = await start()
    try {
      const auth = { authorization: `Bearer ${TOKEN}` }
      const holder = "/credit/v1/customers/m1/contracts/s1"
      expect((await fetch(`${server.api}${holder}`, { method: "PUT", headers: auth })).status).toBe(201)

      const scrape = async () => {
        const r = await fetch(server.metrics)
        expect(r.status).toBe(200)
        expect(r.headers.get("content-type")).toContain("text/plain; version=0.0.4")
        return r.text()
      }
      const before = await scrape()
      const lockRoute = "/credit/v1/customers/:customerId/:holderType/:holderId/_lock"
      const http201 = `creditlock_http_requests_total{method="PUT",route="${lockRoute}",status="201"}`
      const http423 = `creditlock_http_requests_total{method="PUT",route="${lockRoute}",status="423"}`
      const lockOk = 'creditlock_operations_total{operation="lock",outcome="ok"}'
      const lockRefused = 'creditlock_operations_total{operation="lock",outcome="CreditLocked"}'
      const refusals = 'creditlock_lock_refusals_total{operation="lock",reason="CreditLocked"}'
      const lockCount = 'creditlock_operation_duration_seconds_count{operation="lock"}'

      const locked = await fetch(`${server.api}${holder}/_lock`, { method: "PUT", headers: auth })
      expect(locked.status).toBe(201)
      const key = ((await locked.json()) as { data: { lock: { key: string } } }).data.lock.key
      expect((await fetch(`${server.api}${holder}/_lock`, { method: "PUT", headers: auth })).status).toBe(423)

      const after = await scrape()
      expect(sample(after, http201) - sample(before, http201)).toBe(1)
      expect(sample(after, http423) - sample(before, http423)).toBe(1)
      expect(sample(after, lockOk) - sample(before, lockOk)).toBe(1)
      expect(sample(after, lockRefused) - sample(before, lockRefused)).toBe(1)
      expect(sample(after, refusals) - sample(before, refusals)).toBe(1)
      expect(sample(after, lockCount) - sample(before, lockCount)).toBe(2)
      expect(after).toContain("# TYPE creditlock_http_request_duration_seconds histogram")
      expect(after).toContain('creditlock_operation_duration_seconds_bucket{operation="lock",le="+Inf"}')
      // Ids, tokens and keys stay out of the labels.
      expect(after).not.toContain("m1")
      expect(after).not.toContain(TOKEN)
      expect(after).not.toContain(key)
      // Not reachable through the API's port.
      expect((await fetch(`${server.api}/metrics`)).status).toBe(404)
    } finally {
      server.child.kill("SIGTERM")
    }
  }, 120_000)
})
