import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import Database from "better-sqlite3"
import { Effect } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import { freshRefs, inspect, readReport, startWorker } from "./Workers.js"

const dir = mkdtempSync(join(tmpdir(), "creditlock-sqlite-processes-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const WORKERS = 4
const HOLDERS = 3
const LOAD_MILLIS = 3_000

describe("sqlite: several processes on one file", () => {
  it(`${WORKERS} processes creating one file, then looping lock → modify → unlock over ${HOLDERS} shared holders, lose nothing`, async () => {
    const filename = join(dir, "shared.sqlite")
    // The workers create the file, migrate it and open the holders themselves, all at once.
    const refs = freshRefs(HOLDERS)
    const reportFiles = Array.from({ length: WORKERS }, (_, w) => join(dir, `worker-${w}.log`))
    const workers = reportFiles.map((reportFile, worker) =>
      startWorker({ worker, filename, refs, millis: LOAD_MILLIS, reportFile }),
    )
    const exits = await Promise.all(workers.map((w) => w.exited))

    const reports = reportFiles.map(readReport)
    reports.forEach((report, w) => {
      const context = `worker ${w} (exit ${JSON.stringify(exits[w])}); stderr:\n${workers[w]?.stderr()}`
      expect(report.errors, context).toEqual([])
      expect(report.unknown, context).toEqual([])
      expect(exits[w], context).toEqual({ code: 0, signal: null })
      expect(report.done, context).not.toBeNull()
      expect(report.done?.acks, context).toBe(report.acks.length)
      expect(report.acks.length, `worker ${w} acknowledged nothing`).toBeGreaterThan(0)
    })
    // The holders really were contended across processes.
    expect(reports.reduce((n, r) => n + (r.done?.lockedRetries ?? 0), 0)).toBeGreaterThan(0)

    const raw = new Database(filename, { readonly: true })
    try {
      expect(raw.pragma("integrity_check", { simple: true })).toBe("ok")
      // Four processes migrated the new file at once; the schema was applied exactly once.
      expect(raw.prepare("SELECT version FROM creditlock_schema_version").pluck().all()).toEqual([1])
    } finally {
      raw.close()
    }

    const acks = reports.flatMap((r) => r.acks)
    const states = await Effect.runPromise(inspect(filename, refs))
    states.forEach((state, h) => {
      const mine = acks.filter((a) => a.holder === h)
      expect(state.verified).toBe(true)
      expect(state.opened).toBe(1)
      expect(state.value).toBe(mine.reduce((sum, a) => sum + a.delta, 0))
      expect(state.modifications.size).toBe(mine.length)
      for (const ack of mine) expect(state.modifications.get(ack.entryId)).toBe(ack.delta)
    })
  }, 60_000)
})
