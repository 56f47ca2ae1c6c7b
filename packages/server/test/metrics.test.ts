/**
 * `/metrics` scraped for real from the `creditlock` executable: its own listener, the Prometheus
 * text format, and values that move with the requests made — commit conflicts and retries (two
 * processes on one SQLite file) and threshold events included.
 */
import type { ChildProcess } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { startBin } from "./harness.js"

const TOKEN = "metrics-test-admin-token-91c2"
const children: Array<ChildProcess> = []
const dirs: Array<string> = []
afterAll(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
})

const metricsUrl = (output: string) => /"metrics":"(http:\/\/127\.0\.0\.1:\d+\/metrics)"/.exec(output)?.[1]

/** The bin with a metrics listener on a free port (and `env` on top); resolves once both listen. */
const start = async (env: Record<string, string> = {}) => {
  const running = await startBin(
    TOKEN,
    { CREDIT_METRICS_PORT: "0", ...env },
    children,
    (output) => metricsUrl(output) !== undefined,
  )
  return { ...running, metrics: metricsUrl(running.output()) as string }
}

const scrape = async (url: string) => {
  const r = await fetch(url)
  expect(r.status).toBe(200)
  return r.text()
}

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
      // Released through the API: the engine's hold time is scraped too.
      const hold = "creditlock_lock_hold_seconds_count"
      const unlocked = await fetch(`${server.api}${holder}/_unlock`, {
        method: "PUT",
        headers: { ...auth, "content-type": "application/json" },
        body: JSON.stringify({ key }),
      })
      expect(unlocked.status).toBe(204)
      const released = await scrape()
      expect(sample(released, hold) - sample(after, hold)).toBe(1)
      expect(released).toContain("# TYPE creditlock_lock_hold_seconds histogram")
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

  it("counts commit conflicts and their retries (two processes on one SQLite file) and threshold events", async () => {
    const dir = mkdtempSync(join(tmpdir(), "creditlock-metrics-"))
    dirs.push(dir)
    const store = { CREDIT_STORE: `sqlite:${join(dir, "credit.sqlite")}` }
    const a = await start(store)
    const b = await start(store)
    try {
      const auth = { authorization: `Bearer ${TOKEN}` }
      const json = { ...auth, "content-type": "application/json" }
      const holder = "/credit/v1/customers/m2/contracts/s2"
      const opened = await fetch(`${a.api}${holder}`, {
        method: "PUT",
        headers: json,
        body: JSON.stringify({ balanceGroupId: "bg-metrics-2" }),
      })
      expect(opened.status).toBe(201)
      const lockAndRelease = async (api: string) => {
        const locked = await fetch(`${api}${holder}/_lock`, { method: "PUT", headers: auth })
        expect(locked.status).toBe(201)
        const key = ((await locked.json()) as { data: { lock: { key: string } } }).data.lock.key
        return {
          key,
          release: async () => {
            const r = await fetch(`${api}${holder}/_unlock`, {
              method: "PUT",
              headers: json,
              body: JSON.stringify({ key }),
            })
            expect(r.status).toBe(204)
          },
        }
      }
      const conflicts = 'creditlock_commit_conflicts_total{operation="lock"}'
      const stale = 'creditlock_commit_retries_total{operation="lock",reason="stale_snapshot"}'
      const before = await scrape(a.metrics)

      // b moves the holder on; a's lock is planned on the snapshot a kept from the opening,
      // which the store refuses (the revision moved), and is planned again on a fresh load.
      await (await lockAndRelease(b.api)).release()
      const held = await lockAndRelease(a.api)
      const after = await scrape(a.metrics)
      expect(sample(after, conflicts) - sample(before, conflicts)).toBe(1)
      expect(sample(after, stale) - sample(before, stale)).toBe(1)
      await held.release()

      // A debit past 50 % of the balance group's limit fires one percentage threshold.
      const limits = await fetch(`${a.api}/bcws/webresources/v1.0/billunits/balancegroups/creditlimit/bg-metrics-2`, {
        method: "POST",
        headers: json,
        body: JSON.stringify({ resourceId: 826, limit: "100.00", thresholds: "50" }),
      })
      expect(limits.status).toBe(201)
      const thresholds = 'creditlock_threshold_events_total{kind="percentage"}'
      const beforeDebit = await scrape(a.metrics)
      const debit = await lockAndRelease(a.api)
      const modified = await fetch(`${a.api}${holder}/_modify`, {
        method: "PUT",
        headers: { ...json, "x-lock-key": debit.key },
        body: JSON.stringify({
          reason: "usage",
          modifications: [{ type: "monetary", changeAmount: { currencyCode: "GBP", value: -6_000 } }],
        }),
      })
      expect(modified.status, await modified.clone().text()).toBe(200)
      await debit.release()
      const afterDebit = await scrape(a.metrics)
      expect(sample(afterDebit, thresholds) - sample(beforeDebit, thresholds)).toBe(1)
      expect(afterDebit).toContain("# TYPE creditlock_threshold_events_total counter")
    } finally {
      a.child.kill("SIGTERM")
      b.child.kill("SIGTERM")
    }
  }, 120_000)
})
